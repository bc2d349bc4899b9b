#!/usr/bin/env bash
# p2pshare end-to-end demo, also run by CI.
#
#   1. build; start a tracker on a free loopback port;
#   2. one seeder shares test_files/sample.txt, a downloader in another
#      directory fetches it through its REPL (fed by a pipe), diff;
#   3. two seeders share a fresh 5 MiB random file, a third peer fetches it
#      with -v, diff, and count the chunks each seeder served.
#
# Every process is started on port 0 and the real port is read from its first
# stdout line; every wait has a deadline (DEMO_TIMEOUT seconds, default 30).
# A trap stops every process this script started and removes the work
# directory, on success and on failure. Exit status 0 means PASS.
# Needs bash, coreutils and cargo; no nc (the tracker is queried over bash's
# /dev/tcp).

set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TIMEOUT=${DEMO_TIMEOUT:-30}
TRACKER=$ROOT/target/release/tracker
PEER=$ROOT/target/release/peer

WORK=""
PIDS=()   # every process started, in start order
NAMES=()  # their names, for logs

say() { printf '\n== %s\n' "$*"; }

# quote NAME [FILE]: output lines (of FILE, or stdin), prefixed with NAME.
quote() { sed "s/^/    $1| /" "${2:--}"; }

fail() {
    printf '\nFAIL: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local status=$? i pid deadline
    set +e
    trap - EXIT INT TERM
    # Newest first, each given 3 s to exit before SIGKILL: on SIGTERM a peer
    # says BYE to the tracker, which is the oldest and so still up.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null
        deadline=$((SECONDS + 3))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if ((status != 0)) && [[ -n $WORK && -d $WORK ]]; then
        printf '\n== logs of the failed run\n' >&2
        for i in "${!NAMES[@]}"; do
            for f in "$WORK/${NAMES[i]}.out" "$WORK/${NAMES[i]}.err"; do
                [[ -s $f ]] && { printf -- '-- %s\n' "${f#"$WORK"/}"; tail -n 20 "$f"; } >&2
            done
        done
    fi
    [[ -n $WORK ]] && rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# start NAME DIR CMD...: runs CMD in DIR in the background, stdout and stderr
# to $WORK/NAME.{out,err}, stdin from /dev/null.
start() {
    local name=$1 dir=$2
    shift 2
    (cd "$dir" && exec "$@") </dev/null >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    NAMES+=("$name")
}

# start_repl NAME DIR COMMANDS CMD...: as start, with COMMANDS piped to stdin.
start_repl() {
    local name=$1 dir=$2 commands=$3
    shift 3
    printf '%s' "$commands" | (cd "$dir" && exec "$@") >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PIDS+=($!)
    NAMES+=("$name")
}

# wait_line NAME REGEX: waits until NAME's stdout has a line matching REGEX
# (extended regex) and prints that line. Fails if NAME exits first or the
# deadline passes.
wait_line() {
    local name=$1 regex=$2 pid=${PIDS[-1]} i line deadline=$((SECONDS + TIMEOUT))
    for i in "${!NAMES[@]}"; do [[ ${NAMES[i]} == "$name" ]] && pid=${PIDS[i]}; done
    while ((SECONDS < deadline)); do
        if line=$(grep -E -m1 -- "$regex" "$WORK/$name.out"); then
            printf '%s\n' "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name exited before printing /$regex/"
        sleep 0.05
    done
    fail "$name did not print /$regex/ within ${TIMEOUT}s"
}

# wait_exit NAME: waits until NAME exits (bounded) and fails unless it exited 0.
wait_exit() {
    local name=$1 pid="" i rc=0 deadline=$((SECONDS + TIMEOUT))
    for i in "${!NAMES[@]}"; do [[ ${NAMES[i]} == "$name" ]] && pid=${PIDS[i]}; done
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "$name still running after ${TIMEOUT}s"
        sleep 0.05
    done
    wait "$pid" || rc=$?
    ((rc == 0)) || fail "$name exited with status $rc"
}

# tracker LINE: sends one request to the tracker over /dev/tcp, prints the
# reply: `OK <n>` and, for list replies, the n lines that follow.
tracker() {
    local fd reply line n i
    exec {fd}<>"/dev/tcp/127.0.0.1/$TPORT"
    printf '%s\n' "$1" >&"$fd"
    read -r -t "$TIMEOUT" -u "$fd" reply || fail "no reply from the tracker to $1"
    printf '%s\n' "$reply"
    n=${reply#OK }
    if [[ $reply == OK* && $n =~ ^[0-9]+$ ]]; then
        for ((i = 0; i < n; i++)); do
            read -r -t "$TIMEOUT" -u "$fd" line || fail "short reply to $1"
            printf '%s\n' "$line"
        done
    fi
    exec {fd}>&-
}

# port_of LINE: the port at the end of `... HOST:PORT` or `... port PORT. ...`.
port_of() {
    local line=$1
    if [[ $line =~ port\ ([0-9]+)\. ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    elif [[ $line =~ :([0-9]+)$ ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    else
        fail "no port in: $line"
    fi
}

# id_of LINE: the file id in `Successfully registered file: ... id <hex>)`.
id_of() {
    [[ $1 =~ id\ ([0-9a-f]{64})\) ]] || fail "no file id in: $1"
    printf '%s\n' "${BASH_REMATCH[1]}"
}

# ----------------------------------------------------------------------------

say "building (cargo build --release)"
cargo build --release

SAMPLE_SIZE=$(stat -c %s test_files/sample.txt)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-demo.XXXXXX")
mkdir -p "$WORK/dl-sample" "$WORK/seed-b" "$WORK/seed-c" "$WORK/dl-random"
echo "work directory: $WORK"

say "tracker: tracker --bind 127.0.0.1 0"
start tracker "$ROOT" "$TRACKER" --bind 127.0.0.1 0
line=$(wait_line tracker '^Tracker running on port [0-9]+\. Press Ctrl\+C to stop\.$')
TPORT=$(port_of "$line")
quote tracker "$WORK/tracker.out"

# --- Part 1: a small text file, one seeder -----------------------------------

say "seeder A: peer --bind 127.0.0.1 --serve --share test_files/sample.txt 127.0.0.1 $TPORT 0"
start seed-a "$ROOT" "$PEER" --bind 127.0.0.1 --serve --share test_files/sample.txt 127.0.0.1 "$TPORT" 0
wait_line seed-a '^Peer listening on ' >/dev/null
line=$(wait_line seed-a '^Successfully registered file: test_files/sample.txt ')
SAMPLE_ID=$(id_of "$line")
quote seed-a "$WORK/seed-a.out"

say "the tracker, asked over TCP: SEARCH sample"
reply=$(tracker "SEARCH sample")
quote tcp <<<"$reply"
[[ $reply == *"$SAMPLE_ID $SAMPLE_SIZE 1 sample.txt"* ]] || fail "tracker does not list sample.txt with one peer"

say "downloader (in its own directory), REPL fed by a pipe: download sample.txt; quit"
start_repl dl-sample "$WORK/dl-sample" $'download sample.txt\nquit\n' \
    "$PEER" --bind 127.0.0.1 127.0.0.1 "$TPORT" 0
wait_exit dl-sample
quote dl-sample "$WORK/dl-sample.out"
grep -qx "Found 1 peers for sample.txt (size: $SAMPLE_SIZE bytes)" "$WORK/dl-sample.out" \
    || fail "downloader did not find seeder A"
grep -qx 'Successfully downloaded: sample.txt' "$WORK/dl-sample.out" \
    || fail "downloader did not report success"
diff -u test_files/sample.txt "$WORK/dl-sample/sample.txt" || fail "sample.txt differs from the original"
echo "diff test_files/sample.txt dl-sample/sample.txt: identical"

# --- Part 2: 5 MiB of random bytes, two seeders, one downloader --------------

say "a 5 MiB random file, copied to two seeders' directories"
head -c $((5 * 1024 * 1024)) /dev/urandom >"$WORK/seed-b/random.bin"
cp "$WORK/seed-b/random.bin" "$WORK/seed-c/random.bin"
echo "    random.bin: $(stat -c %s "$WORK/seed-b/random.bin") bytes, sha256 $(sha256sum <"$WORK/seed-b/random.bin" | cut -c1-16)..."

say "seeders B and C: peer --bind 127.0.0.1 --serve --share random.bin 127.0.0.1 $TPORT 0"
start seed-b "$WORK/seed-b" "$PEER" --bind 127.0.0.1 --serve --share random.bin 127.0.0.1 "$TPORT" 0
start seed-c "$WORK/seed-c" "$PEER" --bind 127.0.0.1 --serve --share random.bin 127.0.0.1 "$TPORT" 0
line=$(wait_line seed-b '^Peer listening on ')
BPORT=$(port_of "$line")
line=$(wait_line seed-c '^Peer listening on ')
CPORT=$(port_of "$line")
line=$(wait_line seed-b '^Successfully registered file: random.bin ')
RANDOM_ID=$(id_of "$line")
line=$(wait_line seed-c '^Successfully registered file: random.bin ')
C_ID=$(id_of "$line")
[[ $C_ID == "$RANDOM_ID" ]] || fail "the two seeders computed different ids for the same bytes"
quote seed-b "$WORK/seed-b.out"
quote seed-c "$WORK/seed-c.out"

say "the tracker, asked over TCP: PEERS ${RANDOM_ID:0:12}..."
reply=$(tracker "PEERS $RANDOM_ID")
quote tcp <<<"$reply"
[[ $(head -n1 <<<"$reply") == "OK 2" ]] || fail "tracker does not list two peers for random.bin"

say "downloader (-v), REPL fed by a pipe: download random.bin; quit"
start_repl dl-random "$WORK/dl-random" $'download random.bin\nquit\n' \
    "$PEER" -v --bind 127.0.0.1 127.0.0.1 "$TPORT" 0
wait_exit dl-random
quote dl-random "$WORK/dl-random.out"
grep -qx 'Found 2 peers for random.bin (size: 5242880 bytes)' "$WORK/dl-random.out" \
    || fail "downloader did not find both seeders"
grep -qx 'Successfully downloaded: random.bin' "$WORK/dl-random.out" \
    || fail "downloader did not report success"
cmp "$WORK/seed-b/random.bin" "$WORK/dl-random/random.bin" || fail "random.bin differs from the original"
echo "cmp seed-b/random.bin dl-random/random.bin: identical"
leftovers=$(find "$WORK/dl-sample" "$WORK/dl-random" -name '*.part')
[[ -z $leftovers ]] || fail "partial files left behind: $leftovers"

say "chunks served per seeder (from the downloader's 'Downloaded chunk I from HOST:PORT' lines)"
grep -m3 'Downloaded chunk' "$WORK/dl-random.err" | sed 's/^/    dl-random| /'
echo "    ..."
from_b=$(grep -c "Downloaded chunk [0-9]* from 127.0.0.1:$BPORT\$" "$WORK/dl-random.err" || true)
from_c=$(grep -c "Downloaded chunk [0-9]* from 127.0.0.1:$CPORT\$" "$WORK/dl-random.err" || true)
printf '    seeder B (127.0.0.1:%s): %s chunks\n' "$BPORT" "$from_b"
printf '    seeder C (127.0.0.1:%s): %s chunks\n' "$CPORT" "$from_c"
((from_b + from_c == 10)) || fail "expected 10 chunks in all, got $((from_b + from_c))"
((from_b > 0 && from_c > 0)) || fail "expected chunks from both seeders"

echo
echo "PASS: sample.txt (1 seeder) and a 5 MiB random file (2 seeders: $from_b + $from_c chunks) downloaded intact"
