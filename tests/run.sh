#!/usr/bin/env bash
# Runs the whole test suite, PostgreSQL included.
#
# PostgreSQL: $TIAOJIE_TEST_PG_URL when set; else the server on 127.0.0.1:5432 when it
# answers; else a throwaway cluster started here from the installed binaries (initdb,
# pg_ctl), installing Debian's postgresql first when they are missing. The PostgreSQL tests
# fail, never skip, when it cannot be reached, and this script fails if none of them ran.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf 'tests/run.sh: %s\n' "$*" >&2; }

can_connect() {
    # psql may be missing; then let the tests themselves be the judge.
    if command -v psql >/dev/null 2>&1; then
        psql "$1" -Atqc 'select 1' >/dev/null 2>&1
    else
        return 0
    fi
}

find_pg_bin() {
    local b
    for b in "$(command -v initdb 2>/dev/null || true)" $(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V -r); do
        if [ -n "$b" ] && [ -x "$b" ]; then
            dirname "$(readlink -f "$b")"
            return 0
        fi
    done
    return 1
}

start_throwaway() {
    # Not local: the EXIT trap needs them after this function has returned.
    if ! bin=$(find_pg_bin); then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing Debian's postgresql"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
            bin=$(find_pg_bin)
        else
            log "no PostgreSQL binaries and cannot install them: install postgresql, or set TIAOJIE_TEST_PG_URL"
            exit 1
        fi
    fi
    # Under /tmp: the cluster's user must be able to reach it, wherever the checkout is.
    pg_dir=$(mktemp -d /tmp/tiaojie-pg.XXXXXX)
    local port="${TIAOJIE_TEST_PG_PORT:-55432}"
    local dir="$pg_dir"
    run=()
    if [ "$(id -u)" = 0 ]; then
        # initdb refuses to run as root.
        local user=postgres
        id "$user" >/dev/null 2>&1 || useradd --system --no-create-home "$user"
        chown -R "$user" "$dir"
        run=(runuser -u "$user" --)
    fi
    log "starting a throwaway PostgreSQL cluster from $bin on port $port"
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    pg_bin="$bin"
    trap '"${run[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
    export TIAOJIE_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

if [ "${TIAOJIE_TEST_PG:-}" = throwaway ]; then
    unset TIAOJIE_TEST_PG_URL
    start_throwaway
elif [ -z "${TIAOJIE_TEST_PG_URL:-}" ]; then
    default="postgres://postgres@127.0.0.1:5432/postgres"
    if command -v psql >/dev/null 2>&1 && can_connect "$default"; then
        export TIAOJIE_TEST_PG_URL="$default"
    else
        start_throwaway
    fi
fi
if ! can_connect "$TIAOJIE_TEST_PG_URL"; then
    log "PostgreSQL at $TIAOJIE_TEST_PG_URL does not answer"
    exit 1
fi
log "PostgreSQL: $TIAOJIE_TEST_PG_URL"

# The browser tests drive Debian's Chromium; Chinese fonts make the screenshots readable.
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $*"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        return 1
    fi
}
chrome="${CHROME:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$chrome" ]; then
    apt_install chromium || { log "Chromium is missing and cannot be installed here: install Debian's chromium, or set CHROME"; exit 1; }
    chrome=$(command -v chromium)
fi
export CHROME="$chrome"
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh 2>/dev/null | head -n1)" ]; then
    apt_install fonts-noto-cjk || log "no Chinese fonts: screenshots will show boxes for Chinese text"
fi
log "browser: $CHROME"

# The digest's mail goes to a local SMTP sink the test starts (Python's aiosmtpd).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    log "installing aiosmtpd (the digest test's SMTP sink)"
    python3 -m pip install --quiet aiosmtpd 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages aiosmtpd \
        || { log "aiosmtpd is missing and cannot be installed: pip install aiosmtpd"; exit 1; }
fi

rm -f target/pg-tests.log
cargo build --workspace --all-targets --locked
cargo test --workspace --all-targets --locked -- "$@"

# The PostgreSQL tests must have run (not been filtered or skipped away).
if [ $# -eq 0 ]; then
    ran=$(wc -l <target/pg-tests.log 2>/dev/null || echo 0)
    if [ "$ran" -lt 10 ]; then
        log "only $ran PostgreSQL tests ran; expected many more"
        exit 1
    fi
    log "$ran PostgreSQL test databases were used"
    # The whole API against its own OpenAPI document, as every role (schemathesis).
    tests/fuzz-api.sh target/debug/tiaojie
fi
