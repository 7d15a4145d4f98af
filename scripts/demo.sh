#!/usr/bin/env bash
# The quick-start demo: runs audience-sync on the bundled fixtures in a scratch copy (out/demo),
# with the embedded SQLite store, at the fixed demo time 2026-11-22T12:00:00Z.
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --product audience-sync
bin="$PWD/.build/debug/audience-sync"
now="2026-11-22T12:00:00Z"

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

step ingest events.ndjson --now $now "   # again: nothing new is stored"
"$bin" ingest events.ndjson --now "$now" --quiet || [ $? -eq 1 ]

for key in nps_detractors order_completed_last_30days engaged_non_buyers signup_to_order_7d total_spent_90_days; do
    step members $key --now $now
    "$bin" members "$key" --now "$now"
done

step explain u_hana --now $now
"$bin" explain u_hana --now "$now"

printf '\nThe store is out/demo/audiences.db; rejected lines are in out/demo/rejects.ndjson.\n'
