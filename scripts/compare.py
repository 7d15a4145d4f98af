#!/usr/bin/env python3
"""Time audience-sync against the sqlite3 shell and DuckDB on the same NDJSON.

For one input (generated with the benchmark's seed and --now, or --input FILE) it measures:

- ours: `audience-sync generate`, then `audience-sync-bench --input FILE --stages ingest` (the real
  Ingester: validation, dedupe by messageId, identity and user upserts, durable commits) into a
  fresh store, then `audience-sync-bench --db STORE --stages compute` (the engine on the five
  demo definitions, fastest of 3 runs after a warm-up, checked against the hand-written SQL);
- the sqlite3 shell: `.import` of the raw lines into a one-column table, one INSERT … SELECT
  with json_extract into our `events` columns, `identity_links` and `users` from those rows,
  our two indexes; then the hand-written SQL of each definition (Baseline.swift), fastest of 3
  runs after a warm-up, with `.timer on`;
- DuckDB: `read_ndjson_objects` into a table with the same columns, the same derived tables,
  then the same five queries in DuckDB SQL, fastest of 3 after a warm-up.

With --rounds R the queries of the three systems run R times, interleaved, and each query keeps
its fastest figure. Then it checks that the three give the same members (counts and a checksum
of the sorted user ids) and, for the computed trait, the same values, prints a table, and writes
benchmarks/comparison-<events>.json. Python 3.11 standard library plus the `duckdb` module.

Run from anywhere; paths default to the repository this script is in:
    python3 scripts/compare.py --events 200000 --bin-dir /tmp/as-release
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_NOW = "2026-11-22T12:00:00Z"
KEYS = [
    "engaged_non_buyers",
    "nps_detractors",
    "order_completed_last_30days",
    "signup_to_order_7d",
    "total_spent_90_days",
]
VALUE_KEYS = {"total_spent_90_days"}  # computed traits: rows are (user, value)
TIMED_RUNS = 3
DAY_MS = 86_400_000


def require_duckdb():
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit(
            "compare.py: the Python module 'duckdb' is missing; install it with\n"
            "    python3 -m pip install duckdb\n"
            "and run again (it is the script's only dependency beyond the standard library).")
    return duckdb


# ---------------------------------------------------------------------------------------------
# The hand-written SQL for SQLite: Sources/audience-sync-bench/Baseline.swift with ?1 written as
# the literal `now` (epoch milliseconds). An event counts for its user_id, else for the user its
# anonymous_id is linked to at now (earliest link with ts <= now, ties by message id, then user id).

SQLITE_USER = """coalesce(e.user_id, (SELECT l.user_id FROM identity_links l
                     WHERE l.anonymous_id = e.anonymous_id AND l.ts <= {now}
                     ORDER BY l.ts, l.message_id, l.user_id LIMIT 1))"""

# The funnel's last part, the same SQL in both systems: from `steps` (uid, ts, step 0 or 1), the
# users with a step 1 at most 7 days after an earlier step 0.
FUNNEL_STEPS_TO_MEMBERS = """SELECT DISTINCT uid FROM (
    SELECT uid, ts, step,
           max(CASE step WHEN 0 THEN ts END) OVER (
               PARTITION BY uid ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS signed_up
    FROM steps WHERE uid IS NOT NULL
)
WHERE step = 1 AND ts - signed_up <= 604800000
ORDER BY uid"""


SQLITE_QUERIES = {
    "engaged_non_buyers": """
SELECT {user} AS uid FROM events e
WHERE e.event = 'Pricing' AND e.type = 'page' AND e.ts > {now} - 1209600000 AND e.ts <= {now}
  AND uid IS NOT NULL
EXCEPT
SELECT {user} FROM events e
WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > {now} - 2592000000 AND e.ts <= {now}
ORDER BY 1""",
    "nps_detractors": """
SELECT DISTINCT {user} AS uid FROM events e
WHERE e.event = 'SDK - Submitted - Survey Response' AND e.type = 'track'
  AND e.ts > {now} - 7776000000 AND e.ts <= {now}
  AND e.message ->> '$.properties.question' = 'How likely are you to recommend us?'
  AND json_type(e.message, '$.properties.response') IN ('integer', 'real')
  AND e.message ->> '$.properties.response' <= 6
  AND uid IS NOT NULL
ORDER BY uid""",
    "order_completed_last_30days": """
SELECT DISTINCT {user} AS uid FROM events e
WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > {now} - 2592000000 AND e.ts <= {now}
  AND uid IS NOT NULL
ORDER BY uid""",
    "signup_to_order_7d": """
WITH steps AS (
    SELECT {user} AS uid, e.ts AS ts, 0 AS step FROM events e
    WHERE e.event = 'Signed Up' AND e.type = 'track' AND e.ts > {now} - 2592000000 AND e.ts <= {now}
    UNION ALL
    SELECT {user}, e.ts, 1 FROM events e
    WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > {now} - 2592000000 AND e.ts <= {now}
)
{funnel}""",
    "total_spent_90_days": """
SELECT {user} AS uid, sum(e.message ->> '$.properties.total') AS value FROM events e
WHERE e.event = 'Order Completed' AND e.type = 'track' AND e.ts > {now} - 7776000000 AND e.ts <= {now}
  AND e.message ->> '$.properties.currency' = 'USD'
  AND json_type(e.message, '$.properties.total') IN ('integer', 'real')
  AND uid IS NOT NULL
GROUP BY uid
ORDER BY uid""",
}


def sqlite_query(key, now_ms):
    user = SQLITE_USER.format(now=now_ms)
    return SQLITE_QUERIES[key].format(user=user, now=now_ms, funnel=FUNNEL_STEPS_TO_MEMBERS).strip()


# The load in the sqlite3 shell. Our schema and storage settings (16 KiB pages, WAL,
# synchronous FULL, 64 MiB cache); the lines go verbatim into a temporary one-column table
# (ASCII mode with the unit separator as column separator: no CSV quoting), then one
# INSERT … SELECT extracts our columns. Event time: timestamp, else originalTimestamp, else
# receivedAt, else sentAt, else the ingest time; julianday() reads ISO-8601 with a zone and
# keeps milliseconds. A message without messageId gets `line-<line number>` (ours derives
# `derived-<sha-256>`). The indexes are built after the load, which is cheaper than
# maintaining them row by row; the unique one fails the load if a messageId repeats (the
# shell does not deduplicate).
SHELL_LOAD = r"""
.bail on
PRAGMA page_size = 16384;
{pragmas}
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    user_id TEXT,
    anonymous_id TEXT,
    event TEXT,
    ts INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE identity_links (
    anonymous_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (anonymous_id, user_id)
) WITHOUT ROWID;
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TEMP TABLE raw (line TEXT);
.timer on
.print step import
.mode ascii
.separator "\037" "\n"
.import --schema temp '{input}' raw
.mode list
.print step insert_events
BEGIN;
INSERT INTO events (message_id, type, user_id, anonymous_id, event, ts, received_at, message)
SELECT coalesce(nullif(line ->> '$.messageId', ''), 'line-' || r.rowid),
       line ->> '$.type',
       nullif(line ->> '$.userId', ''),
       nullif(line ->> '$.anonymousId', ''),
       CASE line ->> '$.type'
           WHEN 'track' THEN nullif(line ->> '$.event', '')
           WHEN 'page' THEN nullif(line ->> '$.name', '')
           WHEN 'screen' THEN nullif(line ->> '$.name', '')
       END,
       coalesce(CAST(round((julianday(coalesce(line ->> '$.timestamp', line ->> '$.originalTimestamp',
                                                 line ->> '$.receivedAt', line ->> '$.sentAt'))
                            - 2440587.5) * 86400000.0) AS INTEGER), {now}),
       {now},
       line
FROM temp.raw r
WHERE trim(line) <> '';
.print step links_users
INSERT INTO identity_links (anonymous_id, user_id, ts, message_id)
SELECT anonymous_id, user_id, ts, message_id FROM (
    SELECT linked AS anonymous_id, user_id, ts, message_id,
           row_number() OVER (PARTITION BY linked, user_id ORDER BY ts, message_id) AS rank
    FROM (
        SELECT anonymous_id AS linked, user_id, ts, message_id FROM events
        WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id <> user_id
        UNION ALL
        SELECT nullif(message ->> '$.previousId', ''), user_id, ts, message_id FROM events
        WHERE type = 'alias' AND user_id IS NOT NULL
    )
    WHERE linked IS NOT NULL AND linked <> user_id
)
WHERE rank = 1;
INSERT INTO users (user_id, first_seen)
SELECT user_id, min(ts) FROM events WHERE user_id IS NOT NULL GROUP BY user_id;
.print step indexes
CREATE UNIQUE INDEX events_message_id ON events (message_id);
CREATE INDEX events_by_name ON events (event, ts);
COMMIT;
.print step checkpoint
PRAGMA wal_checkpoint(TRUNCATE);
.print step done
"""

# Our storage settings (what the queries then run on), and the bulk variant: no journal, no
# fsync, a 1 GiB page cache (sorts for the derived tables and the index builds stay in memory).
SHELL_PRAGMAS = {
    "ours": "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = FULL;\nPRAGMA cache_size = -65536;",
    "bulk": "PRAGMA journal_mode = OFF;\nPRAGMA synchronous = OFF;\nPRAGMA cache_size = -1048576;",
}


# ---------------------------------------------------------------------------------------------
# DuckDB: the same columns and derived tables, and the same five queries in DuckDB SQL. The
# identity lookup is a join on each anonymous id's owner at now instead of a correlated subquery
# (the idiomatic form there; the same rule: earliest link with ts <= now, ties by message id,
# then user id). Strict typing as in the SQLite queries: numbers only where a number is compared.

DUCK_LOAD = [
    ("read_events", """
CREATE TABLE events AS
SELECT coalesce(nullif(json ->> '$.messageId', ''), 'md5-' || md5(json::VARCHAR)) AS message_id,
       json ->> '$.type' AS type,
       nullif(json ->> '$.userId', '') AS user_id,
       nullif(json ->> '$.anonymousId', '') AS anonymous_id,
       CASE json ->> '$.type'
           WHEN 'track' THEN nullif(json ->> '$.event', '')
           WHEN 'page' THEN nullif(json ->> '$.name', '')
           WHEN 'screen' THEN nullif(json ->> '$.name', '')
       END AS event,
       coalesce(epoch_us(CAST(coalesce(json ->> '$.timestamp', json ->> '$.originalTimestamp',
                                       json ->> '$.receivedAt', json ->> '$.sentAt') AS TIMESTAMPTZ)) // 1000,
                {now}) AS ts,
       CAST({now} AS BIGINT) AS received_at,
       json AS message
FROM read_ndjson_objects('{input}')"""),
    ("links_users", """
CREATE TABLE identity_links AS
SELECT linked AS anonymous_id, user_id, ts, message_id FROM (
    SELECT anonymous_id AS linked, user_id, ts, message_id FROM events
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id <> user_id
    UNION ALL
    SELECT nullif(message ->> '$.previousId', ''), user_id, ts, message_id FROM events
    WHERE type = 'alias' AND user_id IS NOT NULL
)
WHERE linked IS NOT NULL AND linked <> user_id
QUALIFY row_number() OVER (PARTITION BY linked, user_id ORDER BY ts, message_id) = 1"""),
    ("users", """
CREATE TABLE users AS
SELECT user_id, min(ts) AS first_seen FROM events WHERE user_id IS NOT NULL GROUP BY user_id"""),
    ("checkpoint", "CHECKPOINT"),
]

DUCK_OWNER = """owner AS (
    SELECT anonymous_id, first(user_id ORDER BY ts, message_id, user_id) AS owner
    FROM identity_links WHERE ts <= {now} GROUP BY anonymous_id
)"""


def duck_resolved(columns, where):
    """Events matching `where`, with the user each counts for as `uid`."""
    return f"""SELECT coalesce(e.user_id, o.owner) AS uid{columns} FROM events e
    LEFT JOIN owner o ON e.user_id IS NULL AND o.anonymous_id = e.anonymous_id
    WHERE {where}"""


def window(event, type_, days, now):
    return f"e.event = '{event}' AND e.type = '{type_}' AND e.ts > {now} - {days * DAY_MS} AND e.ts <= {now}"


NUMBER = "('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE')"


def duck_query(key, now):
    owner = DUCK_OWNER.format(now=now)
    if key == "engaged_non_buyers":
        return f"""WITH {owner}
SELECT uid FROM ({duck_resolved('', window('Pricing', 'page', 14, now))}) WHERE uid IS NOT NULL
EXCEPT
SELECT uid FROM ({duck_resolved('', window('Order Completed', 'track', 30, now))})
ORDER BY 1"""
    if key == "nps_detractors":
        where = (window("SDK - Submitted - Survey Response", "track", 90, now)
                 + " AND e.message ->> '$.properties.question' = 'How likely are you to recommend us?'"
                 + f" AND json_type(e.message, '$.properties.response') IN {NUMBER}"
                 + " AND TRY_CAST(e.message ->> '$.properties.response' AS DOUBLE) <= 6")
        return f"""WITH {owner}
SELECT DISTINCT uid FROM ({duck_resolved('', where)}) WHERE uid IS NOT NULL ORDER BY uid"""
    if key == "order_completed_last_30days":
        return f"""WITH {owner}
SELECT DISTINCT uid FROM ({duck_resolved('', window('Order Completed', 'track', 30, now))})
WHERE uid IS NOT NULL ORDER BY uid"""
    if key == "signup_to_order_7d":
        return f"""WITH {owner},
steps AS (
    SELECT uid, ts, 0 AS step FROM ({duck_resolved(', e.ts', window('Signed Up', 'track', 30, now))})
    UNION ALL
    SELECT uid, ts, 1 FROM ({duck_resolved(', e.ts', window('Order Completed', 'track', 30, now))})
)
{FUNNEL_STEPS_TO_MEMBERS}"""
    if key == "total_spent_90_days":
        where = (window("Order Completed", "track", 90, now)
                 + " AND e.message ->> '$.properties.currency' = 'USD'"
                 + f" AND json_type(e.message, '$.properties.total') IN {NUMBER}")
        return f"""WITH {owner}
SELECT uid, sum(TRY_CAST(message ->> '$.properties.total' AS DOUBLE)) AS value
FROM ({duck_resolved(', e.message', where)})
WHERE uid IS NOT NULL GROUP BY uid ORDER BY uid"""
    raise KeyError(key)


# ---------------------------------------------------------------------------------------------
# Measuring

def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(part) for part in handle.read().split()[:3]]


def machine():
    cpu = "unknown"
    memory = None
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal"):
                    memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_mb": memory, "kernel": platform.release()}


def run(argv, stdin=None, cwd=None, check=True):
    """Runs a process; returns (stdout, stderr, figures) with wall, CPU seconds and peak RSS."""
    load_before = loadavg()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, text=True)
    # communicate() reaps the child, so take its rusage from a wait4 first: read the pipes on
    # threads and wait here.
    import threading
    output = {}

    def pump(name, stream):
        output[name] = stream.read()

    threads = [threading.Thread(target=pump, args=(n, s)) for n, s in (("out", process.stdout), ("err", process.stderr))]
    for thread in threads:
        thread.start()
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    for thread in threads:
        thread.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    figures = {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }
    if check and process.returncode != 0:
        sys.stderr.write(output.get("err", "")[-4000:])
        raise SystemExit(f"compare.py: {argv[0]} exited with status {process.returncode}")
    return output.get("out", ""), output.get("err", ""), figures, process.returncode


# What each load stored, in a few figures every system computes the same way: a cheap check that
# the three loads agree (ids, event names and event times), before any query runs. A sum of 10M
# event times overflows 64 bits, so times are summed as whole days and milliseconds within a day.
FINGERPRINT_SQL = {
    "events": "SELECT count(*), count(user_id), count(anonymous_id), count(event), {days}, {ms}, "
              "count(DISTINCT event), count(DISTINCT type) FROM events",
    "identity_links": "SELECT count(*), count(DISTINCT anonymous_id), count(DISTINCT user_id), {days}, {ms} "
                      "FROM identity_links",
    "users": "SELECT count(*), {days_first_seen}, {ms_first_seen} FROM users",
}


def time_sums(column):
    return {"days": f"sum(({column} - {column} % 86400000) / 86400000)", "ms": f"sum({column} % 86400000)"}


FINGERPRINT = {
    table: sql.format(**{k + suffix: v for suffix, column in (("", "ts"), ("_first_seen", "first_seen"))
                         for k, v in time_sums(column).items()})
    for table, sql in FINGERPRINT_SQL.items()
}


def sqlite_fingerprint(db):
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    result = {table: [int(v or 0) for v in connection.execute(sql).fetchone()] for table, sql in FINGERPRINT.items()}
    connection.close()
    return result


def file_bytes(path):
    total = 0
    for suffix in ("", "-wal"):
        if os.path.exists(path + suffix):
            total += os.path.getsize(path + suffix)
    return total


def note(message):
    print(f"compare.py: {message}", file=sys.stderr, flush=True)


def totals(per_key):
    out = {key: round(per_key[key], 4) for key in KEYS}
    out["total"] = round(sum(per_key[key] for key in KEYS), 4)
    return out


# --- ours ---

def load_ours(args, work):
    """Generates (unless --input) and ingests into a fresh store; returns (ndjson, store, figures)."""
    bench = os.path.join(args.bin_dir, "audience-sync-bench")
    ours_dir = os.path.join(work, "ours")
    os.makedirs(ours_dir, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # always a fresh store
        if os.path.exists(os.path.join(ours_dir, "bench.sqlite3" + suffix)):
            os.remove(os.path.join(ours_dir, "bench.sqlite3" + suffix))
    generate = None
    if args.input:
        ndjson = os.path.abspath(args.input)
    else:
        # Generated on its own, so that the ingest process's CPU seconds and memory are ingest's.
        ndjson = os.path.join(ours_dir, "events.ndjson")
        note(f"ours: generating {args.events} events")
        _, _, generate, _ = run(
            [os.path.join(args.bin_dir, "audience-sync"), "generate", "--users", str(args.users),
             "--events", str(args.events), "--seed", str(args.seed), "--now", args.now, "-o", ndjson, "--quiet"])
    note("ours: ingesting " + ndjson)
    out, _, ingest_proc, _ = run(
        [bench, "--stages", "ingest", "--work-dir", ours_dir, "--now", args.now, "--input", ndjson], cwd=REPO)
    ingest = json.loads(out)
    db = os.path.join(ours_dir, "bench.sqlite3")
    return ndjson, db, {
        "generate_s": generate["wall_s"] if generate else None,
        "generate_process": generate,
        "ingest_s": ingest["ingest_s"],
        "ingest_events_per_s": ingest["ingest_events_per_s"],
        "ingest_summary": ingest["ingest"],
        "ingest_process": ingest_proc,
        "db_bytes": ingest["db_bytes"],
        "loaded": sqlite_fingerprint(db),
    }


def compute_ours(args, db):
    """One round of the bench's compute stage on our store."""
    bench = os.path.join(args.bin_dir, "audience-sync-bench")
    note("ours: computing the five definitions (engine, then the hand-written SQL in the same process)")
    definitions = os.path.join(REPO, "fixtures/demo/audiences")
    out, err, compute_proc, status = run(
        [bench, "--db", db, "--stages", "compute", "--now", args.now, "--definitions", definitions],
        cwd=REPO, check=False)
    if status != 0:
        sys.stderr.write(err[-4000:])
        print(f"!!! audience-sync-bench compute stopped (status {status}): when the engine and the hand-written "
              "SQL disagree on our store it says so above", file=sys.stderr)
        raise SystemExit(1)
    compute = json.loads(out)
    return {
        "compute_s": compute["compute_s"],
        "baseline_sql_in_process_s": compute["baseline_sql_s"],
        "compute_rows": compute["compute_rows"],
        "baseline_matches": compute["baseline_matches"],
        "compute_process": compute_proc,
    }


def ours_rows(args, db, now_ms):
    """The engine's rows per key: `audience-sync members` when that binary can read the store;
    otherwise the hand-written SQL on our store, which the compute stage has just checked to
    give exactly the engine's result (it stops with status 1 otherwise)."""
    cli = os.path.join(args.bin_dir, "audience-sync")
    config = os.path.join(REPO, "fixtures/demo/audience-sync.yml")
    rows, seconds = {}, {}
    for key in KEYS:
        if not os.path.exists(cli):
            break
        out, err, figures, status = run(
            [cli, "members", key, "--config", config, "--db", db, "--now", args.now, "--format", "json", "--quiet"],
            check=False)
        if status != 0:
            note(f"ours: 'audience-sync members' cannot read this store ({err.strip()[:200]}); "
                 "reading the engine's rows through the hand-written SQL the compute stage matched instead")
            break
        document = json.loads(out)
        rows[key] = document["values"] if key in VALUE_KEYS else document["members"]
        seconds[key] = figures["wall_s"]
    else:
        return rows, "audience-sync members", seconds
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    for key in KEYS:
        result = connection.execute(sqlite_query(key, now_ms)).fetchall()
        rows[key] = {r[0]: r[1] for r in result} if key in VALUE_KEYS else [r[0] for r in result]
    connection.close()
    return rows, "hand-written SQL on our store (engine-checked by the compute stage)", None


# --- the sqlite3 shell ---

RUN_TIME = re.compile(r"^Run Time: real ([0-9.]+) user ([0-9.]+) sys ([0-9.]+)")


def parse_steps(stdout):
    """Seconds of SQL per `.print step NAME` section of the shell's output (its `.timer` lines)."""
    steps, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("step "):
            current = line[5:].strip()
            steps.setdefault(current, 0.0)
        else:
            match = RUN_TIME.match(line)
            if match and current is not None:
                steps[current] += float(match.group(1))
    return steps


def shell_load(args, db, ndjson, now_ms, pragmas):
    """Loads `ndjson` into a fresh `db` with the shell; returns (process figures, seconds per step)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    if "'" in ndjson:
        raise SystemExit("compare.py: the input path must not contain a single quote")
    script = SHELL_LOAD.format(input=ndjson, now=now_ms, pragmas=SHELL_PRAGMAS[pragmas])
    stdout, _, load_proc, _ = run([args.sqlite3, "-batch", db], stdin=script)
    steps = parse_steps(stdout)
    sql_seconds = sum(v for k, v in steps.items() if k != "import")
    # .import is a dot-command, which .timer does not time: it is the rest of the process's time.
    steps["import"] = max(0.0, load_proc["wall_s"] - sql_seconds)
    return load_proc, {k: round(v, 3) for k, v in steps.items() if k != "done"}


def load_shell(args, work, ndjson, now_ms):
    shell_dir = os.path.join(work, "sqlite3-shell")
    os.makedirs(shell_dir, exist_ok=True)
    db = os.path.join(shell_dir, "shell.sqlite3")
    bulk = None
    if args.shell_bulk:
        note("sqlite3 shell: loading with bulk settings (no journal, no fsync, 1 GiB cache)")
        bulk_db = os.path.join(shell_dir, "bulk.sqlite3")
        bulk_proc, bulk_steps = shell_load(args, bulk_db, ndjson, now_ms, "bulk")
        bulk = {"load_s": bulk_proc["wall_s"], "load_steps_s": bulk_steps, "load_process": bulk_proc,
                "loaded": sqlite_fingerprint(bulk_db)}
        os.remove(bulk_db)
    note("sqlite3 shell: loading")
    load_proc, steps = shell_load(args, db, ndjson, now_ms, "ours")
    version = subprocess.run([args.sqlite3, "--version"], capture_output=True, text=True).stdout.split()[0]
    return db, {
        "version": version,
        "load_s": load_proc["wall_s"],
        "load_steps_s": steps,
        "load_process": load_proc,
        "bulk_load": bulk,
        "loaded": sqlite_fingerprint(db),
        "db_bytes": file_bytes(db),
    }


def query_shell(args, db, now_ms):
    """One round of the five queries in the shell; returns (figures, rows)."""
    note("sqlite3 shell: running the five queries (warm-up + best of 3)")
    shell_dir = os.path.dirname(db)
    parts = [".bail on", "PRAGMA cache_size = -65536;", ".mode list", '.separator "\\t" "\\n"', ".timer on"]
    outputs = {}
    for key in KEYS:
        sql = sqlite_query(key, now_ms) + ";"
        outputs[key] = os.path.join(shell_dir, f"{key}.tsv")
        parts.append(f".print query {key}")
        parts.append(f".once '{outputs[key]}'")
        parts.append(sql)
        parts.append(".output /dev/null")
        parts.extend([sql] * TIMED_RUNS)
        parts.append(".output stdout")
    stdout, _, query_proc, _ = run([args.sqlite3, "-batch", "-readonly", db], stdin="\n".join(parts) + "\n")
    runs, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("query "):
            current = line[6:].strip()
            runs[current] = []
        else:
            match = RUN_TIME.match(line)
            if match and current:
                runs[current].append((float(match.group(1)), float(match.group(2)) + float(match.group(3))))
    seconds, cpu = {}, {}
    for key in KEYS:
        if len(runs.get(key, [])) != TIMED_RUNS + 1:
            raise SystemExit(f"compare.py: expected {TIMED_RUNS + 1} timings of {key} from the shell, got {runs.get(key)}")
        seconds[key], cpu[key] = min(runs[key][1:])
    rows = {}
    for key in KEYS:
        with open(outputs[key]) as handle:
            lines = [line.rstrip("\n") for line in handle if line.strip()]
        if key in VALUE_KEYS:
            rows[key] = {uid: float(value) for uid, value in (line.split("\t") for line in lines)}
        else:
            rows[key] = lines
    return {"query_s": totals(seconds), "query_cpu_s": totals(cpu), "query_process": query_proc}, rows


# --- DuckDB (in a child process of its own, so that its memory and CPU are its own) ---

def duck_worker(argv):
    duckdb = require_duckdb()
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["load", "query"])
    parser.add_argument("--db")
    parser.add_argument("--input")
    parser.add_argument("--now-ms", type=int)
    parser.add_argument("--rows-out")
    options = parser.parse_args(argv)
    result = {}
    started = time.perf_counter()
    connection = duckdb.connect(options.db, read_only=options.mode == "query")
    result["threads"] = int(connection.execute("SELECT current_setting('threads')").fetchone()[0])
    result["version"] = duckdb.__version__
    if options.mode == "load":
        steps = {}
        for name, sql in DUCK_LOAD:
            t0 = time.perf_counter()
            connection.execute(sql.format(now=options.now_ms, input=options.input.replace("'", "''")))
            steps[name] = round(time.perf_counter() - t0, 3)
        result["steps_s"] = steps
        result["loaded"] = {
            table: [int(v or 0) for v in connection.execute(sql).fetchone()] for table, sql in FINGERPRINT.items()}
        connection.close()
        result["seconds"] = round(time.perf_counter() - started, 3)
    else:
        import resource

        def cpu_now():
            usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
            return usage.ru_utime + usage.ru_stime

        seconds, cpu, rows = {}, {}, {}
        for key in KEYS:
            sql = duck_query(key, options.now_ms)
            runs = []
            for index in range(TIMED_RUNS + 1):
                t0, c0 = time.perf_counter(), cpu_now()
                fetched = connection.execute(sql).fetchall()
                runs.append((time.perf_counter() - t0, cpu_now() - c0))
                if index == 0:
                    rows[key] = {r[0]: r[1] for r in fetched} if key in VALUE_KEYS else [r[0] for r in fetched]
            seconds[key], cpu[key] = min(runs[1:])
        connection.close()
        result["seconds"] = seconds
        result["cpu_seconds"] = cpu
        with open(options.rows_out, "w") as handle:
            json.dump(rows, handle)
    print(json.dumps(result))


DUCK_WORKER = [sys.executable, os.path.abspath(__file__), "--duckdb-worker"]


def load_duckdb(args, work, ndjson, now_ms):
    duck_dir = os.path.join(work, "duckdb")
    os.makedirs(duck_dir, exist_ok=True)
    db = os.path.join(duck_dir, "events.duckdb")
    for suffix in ("", ".wal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    note("DuckDB: loading")
    out, _, load_proc, _ = run(DUCK_WORKER + ["--mode", "load", "--db", db, "--input", ndjson, "--now-ms", str(now_ms)])
    load = json.loads(out)
    return db, {
        "version": load["version"],
        "threads": load["threads"],
        "load_s": load["seconds"],
        "load_steps_s": load["steps_s"],
        "load_process": load_proc,
        "loaded": load["loaded"],
        "db_bytes": file_bytes(db) + (os.path.getsize(db + ".wal") if os.path.exists(db + ".wal") else 0),
    }


def query_duckdb(args, db, now_ms):
    """One round of the five queries in DuckDB (a child process); returns (figures, rows)."""
    note("DuckDB: running the five queries (warm-up + best of 3)")
    rows_path = os.path.join(os.path.dirname(db), "rows.json")
    out, _, query_proc, _ = run(DUCK_WORKER + ["--mode", "query", "--db", db, "--now-ms", str(now_ms), "--rows-out", rows_path])
    query = json.loads(out)
    with open(rows_path) as handle:
        rows = json.load(handle)
    return {"query_s": totals(query["seconds"]), "query_cpu_s": totals(query["cpu_seconds"]),
            "query_process": query_proc}, rows


def fastest(rounds, field):
    """Per key, the fastest figure over the rounds (each already the fastest of 3 runs), and the total."""
    best = {key: min(r[field][key] for r in rounds) for key in KEYS}
    return totals(best)


# --- agreement ---

def checksum(uids):
    return hashlib.sha256("\n".join(sorted(uids)).encode()).hexdigest()[:16]


def compare_loads(ours, others):
    """The tables' fingerprints of each system against ours: a list of differences."""
    problems = []
    for system, loaded in others.items():
        for table in FINGERPRINT:
            if loaded[table] != ours[table]:
                problems.append(f"{system}: {table} {loaded[table]} where ours has {ours[table]}")
    return problems


def compare_rows(all_rows):
    """Per key: count and checksum per system, and whether they all equal ours."""
    report, disagreements = {}, 0
    for key in KEYS:
        entry = {}
        for system, rows in all_rows.items():
            result = rows[key]
            uids = list(result.keys()) if key in VALUE_KEYS else list(result)
            figures = {"rows": len(uids), "checksum": checksum(uids)}
            if key in VALUE_KEYS:
                figures["value_sum"] = round(sum(float(v) for v in result.values()), 2)
            entry[system] = figures
        problems = []
        reference = all_rows["ours"][key]
        for system, rows in all_rows.items():
            if system == "ours":
                continue
            other = rows[key]
            ours_set = set(reference.keys() if key in VALUE_KEYS else reference)
            other_set = set(other.keys() if key in VALUE_KEYS else other)
            if key not in VALUE_KEYS and len(other) != len(other_set):
                problems.append(f"{system}: repeated user ids in the result")
            if ours_set != other_set:
                only_ours = sorted(ours_set - other_set)
                only_other = sorted(other_set - ours_set)
                problems.append(
                    f"{system}: {len(only_ours)} users only in ours (first: {only_ours[:5]}), "
                    f"{len(only_other)} only in {system} (first: {only_other[:5]})")
            if key in VALUE_KEYS:
                differing = []
                for uid in sorted(ours_set & other_set):
                    a, b = float(reference[uid]), float(other[uid])
                    if abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b)):
                        differing.append((uid, a, b))
                if differing:
                    problems.append(f"{system}: {len(differing)} values differ (first: {differing[:5]})")
        entry["agree"] = not problems
        if problems:
            entry["problems"] = problems
            disagreements += 1
        report[key] = entry
    return report, disagreements


# --- output ---

def ratio(a, b):
    return round(a / b, 2) if a and b else None


def print_table(result):
    ours, shell, duck = result["ours"], result["sqlite3_shell"], result["duckdb"]
    events = result["events"]
    generated = f"{result['users']:,} users generated, " if result["users"] else ""
    print(f"\n{events:,} events, {generated}{result['users_stored']:,} user ids stored, "
          f"{result['input_bytes']:,} bytes of NDJSON; "
          f"load average {result['loadavg_start']} at start, {result['loadavg_end']} at end")
    print(f"{'':34}{'audience-sync':>15}{'sqlite3 shell':>15}{'DuckDB':>15}")
    row = "{:34}{:>15}{:>15}{:>15}"

    def s(value):
        return "—" if value is None else f"{value:.3f}"

    print(row.format("load / ingest (s)", s(ours["ingest_s"]), s(shell["load_s"]), s(duck["load_s"])))
    print(row.format("  events per second", f"{ours['ingest_events_per_s']:,}",
                     f"{round(events / shell['load_s']):,}", f"{round(events / duck['load_s']):,}"))
    print(row.format("  peak RSS (MiB)", ours["ingest_process"]["peak_rss_mb"],
                     shell["load_process"]["peak_rss_mb"], duck["load_process"]["peak_rss_mb"]))
    def share(process):
        return f"{process['cpu_s'] / process['wall_s']:.2f}" if process["wall_s"] else "—"

    print(row.format("  CPU seconds", ours["ingest_process"]["cpu_s"], shell["load_process"]["cpu_s"],
                     duck["load_process"]["cpu_s"]))
    print(row.format("  CPU seconds / wall seconds", share(ours["ingest_process"]),
                     share(shell["load_process"]), share(duck["load_process"])))
    if shell.get("bulk_load"):
        print(row.format("  shell, bulk settings (s)", "", s(shell["bulk_load"]["load_s"]), ""))
    print(row.format("  database bytes", f"{ours['db_bytes']:,}", f"{shell['db_bytes']:,}", f"{duck['db_bytes']:,}"))
    rounds = result["rounds"]
    heading = "queries (s, fastest of 3" + (f", over {rounds} rounds)" if rounds > 1 else ")")
    print(heading)
    for key in KEYS + ["total"]:
        print(row.format(f"  {key}", s(ours["compute_s"][key]), s(shell["query_s"][key]), s(duck["query_s"][key])))
    processes = {
        "ours": [r["process"] for r in ours["compute_rounds"]],
        "shell": [r["process"] for r in shell["query_rounds"]],
        "duck": [r["process"] for r in duck["query_rounds"]],
    }

    def peak(name):
        return max(p["peak_rss_mb"] for p in processes[name])

    def shares(name):
        return " ".join(share(p) for p in processes[name])

    print(row.format("  peak RSS (MiB)", peak("ours"), peak("shell"), peak("duck")))
    print(row.format("  CPU seconds (fastest runs)", "—", s(shell["query_cpu_s"]["total"]),
                     s(duck["query_cpu_s"]["total"])))
    print(row.format("  CPU seconds / wall, per round", shares("ours"), shares("shell"), shares("duck")))
    if rounds > 1:
        print(row.format("  total of each round", " ".join(f"{r['total']:.2f}" for r in ours["compute_rounds"]),
                         " ".join(f"{r['total']:.2f}" for r in shell["query_rounds"]),
                         " ".join(f"{r['total']:.2f}" for r in duck["query_rounds"])))
    print(f"(audience-sync: the engine; the same hand-written SQL as the shell's, run by the bench on our store: "
          f"{ours['baseline_sql_in_process_s']['total']:.3f} s)")
    print("\nagreement (rows, checksum of sorted user ids):")
    for key in KEYS:
        entry = result["agreement"][key]
        cells = "  ".join(f"{system} {entry[system]['rows']} {entry[system]['checksum']}"
                          for system in ("ours", "sqlite3_shell", "duckdb"))
        flag = "ok" if entry["agree"] else "!!! DISAGREE"
        print(f"  {key:30} {cells}  {flag}")
        for problem in entry.get("problems", []):
            print(f"      !!! {problem}")
    print("\nloaded tables (counts, distinct ids, sums of event times) equal to ours: "
          + ("yes" if not result["load_differences"] else "NO"))
    for problem in result["load_differences"]:
        print(f"  !!! {problem}")
    if result["disagreements"]:
        print(f"\n!!! {result['disagreements']} definition(s) where the systems disagree")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--duckdb-worker":
        duck_worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="messages to generate (default 200,000)")
    parser.add_argument("--users", type=int, help="distinct users (default: events / 20, as the bench)")
    parser.add_argument("--seed", type=int, default=1, help="the generator's seed (default 1, as the bench)")
    parser.add_argument("--now", default=DEFAULT_NOW, help=f"generation end, ingest time and evaluation time (default {DEFAULT_NOW})")
    parser.add_argument("--input", help="use this NDJSON file instead of generating one (--events is then its line count)")
    parser.add_argument("--bin-dir", default=os.path.join(REPO, ".build/release"),
                        help="folder holding release builds of audience-sync and audience-sync-bench (default .build/release)")
    parser.add_argument("--sqlite3", default="/usr/bin/sqlite3", help="the sqlite3 shell (default /usr/bin/sqlite3)")
    parser.add_argument("--work-dir", help="where the NDJSON and the three databases go (kept); default a temporary folder, removed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--out", help="the JSON file to write (default benchmarks/comparison-<events>.json)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every system's queries this many times, interleaved; keep each query's fastest")
    parser.add_argument("--shell-bulk", action="store_true",
                        help="also time the shell's load with bulk settings (no journal, no fsync, 1 GiB cache)")
    args = parser.parse_args()
    require_duckdb()
    if args.users is None:
        args.users = max(1, args.events // 20)
    for tool in ("audience-sync-bench",):
        if not os.access(os.path.join(args.bin_dir, tool), os.X_OK):
            raise SystemExit(f"compare.py: no {tool} in {args.bin_dir}: build it with 'swift build -c release' or pass --bin-dir")
    now = datetime.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
    now_ms = int(now.timestamp() * 1000)

    work = args.work_dir or tempfile.mkdtemp(prefix="as-compare-")
    os.makedirs(work, exist_ok=True)
    note(f"work folder {work}")
    start_load = loadavg()
    try:
        ndjson, ours_db, ours = load_ours(args, work)
        if args.input:
            args.events = ours["ingest_summary"]["lines"]
        shell_db, shell = load_shell(args, work, ndjson, now_ms)
        duck_db, duck = load_duckdb(args, work, ndjson, now_ms)

        # The queries run in rounds, each system once per round, the order rotated from round to
        # round, so that a busy spell of a shared machine does not land on one system only.
        systems = {
            "ours": lambda: (compute_ours(args, ours_db), None),
            "sqlite3_shell": lambda: query_shell(args, shell_db, now_ms),
            "duckdb": lambda: query_duckdb(args, duck_db, now_ms),
        }
        rounds = {name: [] for name in systems}
        rows = {}
        names = list(systems)
        for index in range(args.rounds):
            if args.rounds > 1:
                note(f"queries: round {index + 1} of {args.rounds}")
            for name in names[index % len(names):] + names[:index % len(names)]:
                figures, result_rows = systems[name]()
                rounds[name].append(figures)
                rows.setdefault(name, result_rows)
        rows["ours"], ours["rows_source"], ours["members_cli_s"] = ours_rows(args, ours_db, now_ms)
        ours.update({
            "compute_s": fastest(rounds["ours"], "compute_s"),
            "baseline_sql_in_process_s": fastest(rounds["ours"], "baseline_sql_in_process_s"),
            "compute_rows": rounds["ours"][0]["compute_rows"],
            "baseline_matches": all(r["baseline_matches"] for r in rounds["ours"]),
            "compute_rounds": [{"total": r["compute_s"]["total"], "baseline_total": r["baseline_sql_in_process_s"]["total"],
                                "process": r["compute_process"]} for r in rounds["ours"]],
        })
        for name, figures in (("sqlite3_shell", shell), ("duckdb", duck)):
            figures.update({
                "query_s": fastest(rounds[name], "query_s"),
                "query_cpu_s": fastest(rounds[name], "query_cpu_s"),
                "query_rounds": [{"total": r["query_s"]["total"], "process": r["query_process"]} for r in rounds[name]],
            })
        ours_rows_, shell_rows, duck_rows = rows["ours"], rows["sqlite3_shell"], rows["duckdb"]
        agreement, disagreements = compare_rows({"ours": ours_rows_, "sqlite3_shell": shell_rows, "duckdb": duck_rows})
        loads = {"sqlite3_shell": shell["loaded"], "duckdb": duck["loaded"]}
        if shell["bulk_load"]:
            loads["sqlite3_shell_bulk"] = shell["bulk_load"]["loaded"]
        load_problems = compare_loads(ours["loaded"], loads)
        result = {
            "events": args.events,
            "users": args.users if not args.input else None,
            "users_stored": ours["loaded"]["users"][0],
            "seed": args.seed if not args.input else None,
            "now": args.now,
            "input": args.input,
            "input_bytes": os.path.getsize(ndjson),
            "loadavg_start": start_load,
            "loadavg_end": loadavg(),
            "machine": machine(),
            "python": platform.python_version(),
            "rounds": args.rounds,
            "ours": ours,
            "sqlite3_shell": shell,
            "duckdb": duck,
            "agreement": agreement,
            "disagreements": disagreements,
            "load_differences": load_problems,
            "ratios": {
                "ingest_vs_shell_load": ratio(ours["ingest_s"], shell["load_s"]),
                "ingest_vs_duckdb_load": ratio(ours["ingest_s"], duck["load_s"]),
                "compute_vs_shell_queries": ratio(ours["compute_s"]["total"], shell["query_s"]["total"]),
                "compute_vs_duckdb_queries": ratio(ours["compute_s"]["total"], duck["query_s"]["total"]),
                "compute_vs_duckdb_queries_by_key": {
                    key: ratio(ours["compute_s"][key], duck["query_s"][key]) for key in KEYS},
                "compute_vs_shell_queries_by_key": {
                    key: ratio(ours["compute_s"][key], shell["query_s"][key]) for key in KEYS},
            },
        }
    finally:
        if not args.work_dir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            note(f"kept {work}")
    out = args.out or os.path.join(REPO, "benchmarks", f"comparison-{args.events}.json")
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print_table(result)
    print(f"\nwrote {out}")
    if disagreements:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
