#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests (README, "Development"; SPEC §12).
#
#   scripts/postgres-test-server.sh run -- swift test    start a server, run the command with the
#                                                         variables below, stop the server on any
#                                                         exit; returns the command's status
#   eval "$(scripts/postgres-test-server.sh start)"      start one and export the variables
#   scripts/postgres-test-server.sh stop [FOLDER]        stop it and remove its folder
#
# Each start makes a new cluster in a new temporary folder under ${TMPDIR:-/tmp} and serves it on
# a free port of 127.0.0.1 only, so a server left over from an aborted run never blocks a new one.
# TCP connections need a password (scram-sha-256): the tests connect as the role
# audience_sync_test, with a random password, to the database audience_sync_test that it owns.
# The unix socket, in the folder (mode 0700), is used only by this script to set the server up.
#
# Variables for the tests:
#   AUDIENCE_SYNC_TEST_POSTGRES_URL        postgres://audience_sync_test@127.0.0.1:PORT/audience_sync_test?sslmode=disable
#   AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD   the password (never in the URL)
# `start` also prints AUDIENCE_SYNC_TEST_POSTGRES_DIR, the folder `stop` removes; without it (and
# without an argument) `stop` uses the folder that the last `start` from this checkout recorded.
#
# Needs the PostgreSQL server programs (Debian: apt-get install postgresql): the newest
# /usr/lib/postgresql/<version>/bin, else initdb on PATH; PG_BINDIR overrides both. Run as root
# (CI), the server runs as the user postgres, since initdb and postgres refuse to run as root.
set -euo pipefail

readonly ROLE=audience_sync_test
readonly DATABASE=audience_sync_test
readonly MARKER=.audience-sync-test-postgres
readonly START_TIMEOUT=30

say() { echo "postgres-test-server: $*" >&2; }
die() {
    say "$*"
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: scripts/postgres-test-server.sh run -- COMMAND [ARG...]
       eval "$(scripts/postgres-test-server.sh start)"
       scripts/postgres-test-server.sh stop [FOLDER]
EOF
    exit 2
}

# The folder the last `start` from this checkout was recorded in (one file per checkout, so that
# checkouts side by side do not stop each other's servers).
state_file() {
    local root key
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
    key=$(printf '%s' "$root" | cksum | cut -d' ' -f1)
    echo "${TMPDIR:-/tmp}/audience-sync-test-postgres.$key"
}

find_bindir() {
    local found
    if [ -n "${PG_BINDIR:-}" ]; then
        [ -x "$PG_BINDIR/initdb" ] || die "PG_BINDIR=$PG_BINDIR has no initdb"
        echo "$PG_BINDIR"
        return
    fi
    # Debian and Ubuntu: /usr/lib/postgresql/<version>/bin, not on PATH; take the newest version.
    local candidates=(/usr/lib/postgresql/*/bin/initdb)
    if [ -x "${candidates[0]}" ]; then
        found=$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)
        dirname "$found"
        return
    fi
    if found=$(command -v initdb); then
        dirname "$found"
        return
    fi
    die "the PostgreSQL server programs (initdb, pg_ctl, postgres) were not found;" \
        "install PostgreSQL (Debian: apt-get install postgresql) or set PG_BINDIR"
}

BINDIR=$(find_bindir)
for program in initdb pg_ctl pg_isready psql; do
    [ -x "$BINDIR/$program" ] || die "$BINDIR has no $program"
done

# Runs a PostgreSQL program as the user that owns the cluster: initdb, pg_ctl and postgres refuse
# to run as root, so root runs them as postgres (from /, which that user can enter).
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 ||
        die "running as root, but there is no user postgres to run the server as (initdb refuses root)"
    command -v runuser >/dev/null 2>&1 || die "running as root, but runuser is missing"
    as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
    as_owner() { "$@"; }
fi

port_in_use() {
    # A connection that succeeds means something listens there.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
    # Below Linux's ephemeral range (32768-60999), away from the usual 5432.
    local port attempt
    for attempt in $(seq 1 100); do
        port=$((15000 + RANDOM % 15000))
        if ! port_in_use "$port"; then
            echo "$port"
            return
        fi
    done
    die "found no free port on 127.0.0.1 after $attempt tries"
}

show_log() {
    local log=$1
    if [ -f "$log" ]; then
        say "the last lines of $log:"
        tail -n 30 "$log" | sed 's/^/    /' >&2
    fi
}

# Set by start_server, read by the caller and by stop_server.
SERVER_DIR=""
SERVER_PORT=""
SERVER_URL=""
SERVER_PASSWORD=""

start_server() {
    local tmp dir data log attempt version

    tmp=${TMPDIR:-/tmp}
    tmp=${tmp%/}
    dir=$(mktemp -d "$tmp/audience-sync-pg.XXXXXX")
    SERVER_DIR=$dir
    echo "audience-sync throw-away PostgreSQL test server; scripts/postgres-test-server.sh stop removes this folder" >"$dir/$MARKER"
    case $dir in
        *"'"* | *\\* | *" "*) die "the temporary folder $dir has a quote, backslash or space in its path; set TMPDIR" ;;
    esac
    # A unix socket path is limited to about 100 bytes.
    [ "${#dir}" -le 80 ] || die "the temporary folder $dir has too long a path for a unix socket; set TMPDIR=/tmp"
    mkdir "$dir/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres "$dir"
        as_owner test -w "$dir" ||
            die "the user postgres cannot write to $dir (is $tmp closed to other users?); set TMPDIR, e.g. TMPDIR=/tmp"
    fi
    data=$dir/data
    log=$dir/server.log

    # No fsync during initdb (the cluster lives for one run); the server itself keeps fsync on.
    if ! as_owner "$BINDIR/initdb" --pgdata="$data" --username=postgres --encoding=UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1; then
        show_log "$dir/initdb.log"
        die "initdb failed"
    fi

    # Writing into files initdb made keeps their owner.
    cat >"$data/pg_hba.conf" <<'EOF'
# audience-sync test server: the unix socket (in a folder only the owner can enter) sets the
# server up; every TCP connection needs a password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    cat >>"$data/postgresql.conf" <<EOF

# audience-sync test server (scripts/postgres-test-server.sh); the port is given on the command line
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/socket'
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 128MB
fsync = on
logging_collector = off
EOF

    for attempt in 1 2 3 4 5; do
        SERVER_PORT=$(pick_port)
        if as_owner "$BINDIR/pg_ctl" --pgdata="$data" --log="$log" --options="-p $SERVER_PORT" \
            --wait --timeout="$START_TIMEOUT" --silent start >&2; then
            break
        fi
        # Another program may have taken the port since it was picked: try another one.
        if grep -q "Address already in use" "$log" 2>/dev/null && [ "$attempt" -lt 5 ]; then
            say "port $SERVER_PORT was taken meanwhile; trying another"
            : >"$log"
            continue
        fi
        show_log "$log"
        die "the PostgreSQL server in $dir did not start"
    done

    # Ready when it accepts connections where the tests connect: TCP on 127.0.0.1.
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$BINDIR/pg_isready" --quiet \
        --dbname="host=127.0.0.1 port=$SERVER_PORT dbname=postgres sslmode=disable connect_timeout=2"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_log "$log"
            die "the PostgreSQL server in $dir does not accept connections on 127.0.0.1:$SERVER_PORT after ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done

    # The password goes in on stdin, never on a command line (where ps would show it), and a
    # failing statement is not copied to the server's log.
    SERVER_PASSWORD=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
    [ "${#SERVER_PASSWORD}" -eq 48 ] || die "could not make a random password"
    if ! printf "SET log_min_error_statement = panic;\nCREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n" \
        "$ROLE" "$SERVER_PASSWORD" "$DATABASE" "$ROLE" |
        as_owner "$BINDIR/psql" --no-psqlrc --quiet --set=ON_ERROR_STOP=1 \
            --host="$dir/socket" --port="$SERVER_PORT" --username=postgres --dbname=postgres >&2; then
        die "could not create the role and database $ROLE"
    fi

    SERVER_URL="postgres://$ROLE@127.0.0.1:$SERVER_PORT/$DATABASE?sslmode=disable"
    # The tests' way in, checked once: the URL with the password.
    if ! version=$(PGPASSWORD=$SERVER_PASSWORD PGCONNECT_TIMEOUT=5 "$BINDIR/psql" --no-psqlrc \
        --tuples-only --no-align --dbname="$SERVER_URL" --command="show server_version" 2>&1); then
        say "$version"
        die "cannot connect as $ROLE with its password over TCP"
    fi
    say "PostgreSQL $version on 127.0.0.1:$SERVER_PORT (folder $dir)"
}

# Stops the server in a folder made by start_server and removes the folder; returns 1 (keeping the
# folder) if the server cannot be stopped.
stop_server() {
    local dir=$1 data
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ ! -f "$dir/$MARKER" ]; then
        say "$dir was not made by this script (no $MARKER): left alone"
        return 1
    fi
    data=$dir/data
    if [ -f "$data/postmaster.pid" ]; then
        as_owner "$BINDIR/pg_ctl" --pgdata="$data" --mode=fast --wait --timeout=30 --silent stop >&2 ||
            as_owner "$BINDIR/pg_ctl" --pgdata="$data" --mode=immediate --wait --timeout=10 --silent stop >&2 ||
            true
        # pg_ctl status: 3 when no server runs (also after a crash left postmaster.pid behind).
        local status=0
        as_owner "$BINDIR/pg_ctl" --pgdata="$data" status >/dev/null 2>&1 || status=$?
        if [ "$status" -ne 3 ]; then
            say "could not stop the PostgreSQL server in $dir; folder kept"
            return 1
        fi
    fi
    rm -rf -- "$dir"
    say "stopped; removed $dir"
}

cmd_start() {
    [ "$#" -eq 0 ] || usage
    local state previous
    state=$(state_file)
    if [ -f "$state" ]; then
        previous=$(cat "$state")
        if [ -d "$previous" ]; then
            say "note: a server started earlier from this checkout is still in $previous;" \
                "stop it with: scripts/postgres-test-server.sh stop $previous"
        fi
    fi
    # A start that fails half-way leaves nothing behind.
    trap 'status=$?; if [ "$status" -ne 0 ]; then stop_server "$SERVER_DIR" || true; fi' EXIT
    start_server
    echo "$SERVER_DIR" >"$state"
    # For eval: the only place the password is printed.
    printf "export AUDIENCE_SYNC_TEST_POSTGRES_URL='%s'\n" "$SERVER_URL"
    printf "export AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD='%s'\n" "$SERVER_PASSWORD"
    printf "export AUDIENCE_SYNC_TEST_POSTGRES_DIR='%s'\n" "$SERVER_DIR"
    say "stop it with: scripts/postgres-test-server.sh stop"
}

cmd_stop() {
    [ "$#" -le 1 ] || usage
    local dir state
    state=$(state_file)
    if [ "$#" -eq 1 ]; then
        dir=$1
    elif [ -n "${AUDIENCE_SYNC_TEST_POSTGRES_DIR:-}" ]; then
        dir=$AUDIENCE_SYNC_TEST_POSTGRES_DIR
    elif [ -f "$state" ]; then
        dir=$(cat "$state")
    else
        say "no server recorded (no AUDIENCE_SYNC_TEST_POSTGRES_DIR, no $state): nothing to stop"
        return 0
    fi
    if [ ! -d "$dir" ]; then
        say "$dir is gone: nothing to stop"
    else
        stop_server "$dir" || exit 1
    fi
    if [ -f "$state" ] && [ "$(cat "$state")" = "$dir" ]; then
        rm -f -- "$state"
    fi
}

cmd_run() {
    [ "${1:-}" = "--" ] && shift
    [ "$#" -gt 0 ] || usage
    # Stop the server however this ends; a failed stop turns success into failure.
    trap 'status=$?; stop_server "$SERVER_DIR" || { [ "$status" -ne 0 ] || status=1; }; exit "$status"' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_server
    export AUDIENCE_SYNC_TEST_POSTGRES_URL=$SERVER_URL
    export AUDIENCE_SYNC_TEST_POSTGRES_PASSWORD=$SERVER_PASSWORD
    local status=0
    "$@" || status=$?
    exit "$status"
}

[ "$#" -gt 0 ] || usage
command=$1
shift
case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    run) cmd_run "$@" ;;
    *) usage ;;
esac
