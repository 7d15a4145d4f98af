#!/usr/bin/env bash
# The quick-start demo: the main job on the bundled fixtures, in a scratch copy (out/demo), with
# the embedded SQLite store. Times are fixed with --now so the run is the same every time:
# the demo time is 2026-11-22T12:00:00Z and the follow-up sync runs 2.5 hours later.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product audience-sync
bin="$PWD/.build/debug/audience-sync"
now="2026-11-22T12:00:00Z"
later="2026-11-22T14:30:00Z"

rm -rf out/demo
mkdir -p out/demo
cp -R fixtures/demo/. out/demo/
cd out/demo

step() { printf '\n\033[1m$ audience-sync %s\033[0m\n' "$*"; }

step validate
"$bin" validate

step ingest events.ndjson --now $now --rejects rejects.ndjson
# The demo file holds five bad lines on purpose: they are reported and the rest is stored (exit 1).
"$bin" ingest events.ndjson --now "$now" --rejects rejects.ndjson || [ $? -eq 1 ]

step ingest events.ndjson --now $now --quiet "   # again: nothing new is stored"
"$bin" ingest events.ndjson --now "$now" --quiet || [ $? -eq 1 ]

step members nps_detractors --now $now
"$bin" members nps_detractors --now "$now"

step explain u_hana --definition engaged_non_buyers --now $now
"$bin" explain u_hana --definition engaged_non_buyers --now "$now"

# The demo's Segment and Sprig destinations need network access and keys; the demo syncs the
# NDJSON file destination 'outbox' (out/demo/out/identify.ndjson).
step diff --destination outbox --now $now "   # the dry run: changes nothing"
"$bin" diff --destination outbox --now "$now"

"$bin" diff --destination outbox --now "$now" --format html > report.html
printf '(the same dry run as a page: out/demo/report.html)\n'

step sync --destination outbox --now $now "   # first sync: the full audiences"
"$bin" sync --destination outbox --now "$now"

step ingest events-later.ndjson --now $later --quiet
"$bin" ingest events-later.ndjson --now "$later" --quiet

step sync --destination outbox --now $later "   # 2.5 hours later: only the changes"
"$bin" sync --destination outbox --now "$later"

step status
"$bin" status 2>/dev/null | grep outbox

printf '\nSent: %s identify calls in out/demo/out/identify.ndjson (the last ones are the changes).\n' \
    "$(wc -l < out/identify.ndjson | tr -d ' ')"
tail -n 7 out/identify.ndjson | cut -c1-110
