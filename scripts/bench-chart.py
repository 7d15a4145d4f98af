#!/usr/bin/env python3
"""Draw benchmarks/chart.svg from the harness's JSON results (benchmarks/results-*.json).

One line per stage — seconds against events, both axes logarithmic — so that linear growth
shows as a line of slope 1. Standard library only; run it from the repository root:
    python3 scripts/bench-chart.py
"""
import glob
import json
import math
import os

STAGES = [
    ("ingest_s", "ingest", "#1f77b4"),
    ("compute_s.total", "compute (engine)", "#d62728"),
    ("baseline_sql_s.total", "compute (hand-written SQL)", "#ff9896"),
    ("diff_s", "diff", "#2ca02c"),
]


def value(result, path):
    for part in path.split("."):
        if not isinstance(result, dict) or result.get(part) is None:
            return None
        result = result[part]
    return result


def main():
    results = []
    for path in sorted(glob.glob("benchmarks/results-*.json")):
        with open(path) as handle:
            results.append(json.load(handle))
    results.sort(key=lambda r: r["events"])
    if not results:
        raise SystemExit("no benchmarks/results-*.json: run audience-sync-bench and save its output there")

    width, height, margin = 720, 440, 70
    xs = [r["events"] for r in results]
    ys = [value(r, key) for r in results for key, _, _ in STAGES if value(r, key)]
    x_lo, x_hi = math.log10(min(xs) / 2), math.log10(max(xs) * 2)
    y_lo, y_hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))

    def px(x):
        return margin + (math.log10(x) - x_lo) / (x_hi - x_lo) * (width - 2 * margin)

    def py(y):
        return height - margin - (math.log10(y) - y_lo) / max(y_hi - y_lo, 1) * (height - 2 * margin)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">audience-sync: seconds per stage against events (log-log)</text>',
    ]
    for exponent in range(int(y_lo), int(y_hi) + 1):
        y = py(10**exponent)
        out.append(f'<line x1="{margin}" y1="{y:.1f}" x2="{width - margin}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{margin - 8}" y="{y + 4:.1f}" text-anchor="end">{10**exponent:g} s</text>')
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{margin}" x2="{px(x):.1f}" y2="{height - margin}" stroke="#eee"/>')
        label = f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k"
        out.append(f'<text x="{px(x):.1f}" y="{height - margin + 18}" text-anchor="middle">{label} events</text>')
    legend_y = margin
    for key, name, colour in STAGES:
        points = [(px(r["events"]), py(value(r, key))) for r in results if value(r, key)]
        if not points:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
        out.append(f'<rect x="{width - margin - 190}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{width - margin - 172}" y="{legend_y + 1}">{name}</text>')
        legend_y += 18
    out.append("</svg>")
    os.makedirs("benchmarks", exist_ok=True)
    with open("benchmarks/chart.svg", "w") as handle:
        handle.write("\n".join(out) + "\n")
    print(f"benchmarks/chart.svg: {len(results)} sizes")


if __name__ == "__main__":
    main()
