#!/usr/bin/env bash
# p2pshare end-to-end demo, also run by CI.
#
#   0. build; `peer send test_files/sample.txt` prints a ticket, and
#      `peer get TICKET` in another directory fetches it, no tracker; diff;
#      then a folder (nested, an empty directory, twin files) the same way,
#      diff -r;
#   1. start a tracker on a free loopback port;
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

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
TIMEOUT=${DEMO_TIMEOUT:-30}
STOP_SECS=3 # a peer's BYE takes at most ~1 s
LOG_TAIL=20

# quote NAME [FILE]: output lines (of FILE, or stdin), prefixed with NAME.
quote() { sed "s/^/    $1| /" "${2:--}"; }

# start_repl NAME DIR COMMANDS CMD...: as start, with COMMANDS piped to stdin.
start_repl() {
    local name=$1 dir=$2 commands=$3
    shift 3
    start "$name" "$dir" <(printf '%s' "$commands") "$@"
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

# ----------------------------------------------------------------------------

say "building (cargo build --release)"
cargo build --release

SAMPLE_SIZE=$(stat -c %s test_files/sample.txt)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-demo.XXXXXX")
mkdir -p "$WORK/dl-sample" "$WORK/seed-b" "$WORK/seed-c" "$WORK/dl-random" "$WORK/got"
echo "work directory: $WORK"

# --- Part 0: one file, no tracker: peer send / peer get ----------------------

say "sender: peer send --bind 127.0.0.1 test_files/sample.txt"
start sender "$ROOT" "" "$PEER" send --bind 127.0.0.1 test_files/sample.txt
wait_line sender '^Ticket: p2p2:[A-Za-z0-9_-]+$'
TICKET=${LINE#Ticket: }
quote sender "$WORK/sender.out"

say "getter (in its own directory): peer get TICKET, the ticket unquoted"
# shellcheck disable=SC2086 # unquoted on purpose: a ticket survives a shell.
start getter "$WORK/got" "" "$PEER" get --bind 127.0.0.1 $TICKET
wait_exit getter
quote getter "$WORK/getter.out"
diff -u test_files/sample.txt "$WORK/got/sample.txt" || fail "the sent sample.txt differs"
echo "diff test_files/sample.txt got/sample.txt: identical"
stop sender

say "a folder: album/ (sample.txt, a 1 MiB random file and its twin, an empty directory)"
mkdir -p "$WORK/album/nested/deeper" "$WORK/album/empty" "$WORK/got-folder"
cp test_files/sample.txt "$WORK/album/"
head -c 1048576 /dev/urandom >"$WORK/album/nested/random.bin"
cp "$WORK/album/nested/random.bin" "$WORK/album/nested/deeper/twin.bin"
say "sender: peer send --bind 127.0.0.1 album"
start folder-sender "$WORK" "" "$PEER" send --bind 127.0.0.1 album
wait_line folder-sender '^Ticket: p2p2:[A-Za-z0-9_-]+$'
TICKET=${LINE#Ticket: }
quote folder-sender "$WORK/folder-sender.out"
say "getter (in its own directory): peer get TICKET"
# shellcheck disable=SC2086 # unquoted on purpose: a ticket survives a shell.
start folder-getter "$WORK/got-folder" "" "$PEER" get --bind 127.0.0.1 $TICKET
wait_exit folder-getter
quote folder-getter "$WORK/folder-getter.out"
diff -r "$WORK/album" "$WORK/got-folder/album" || fail "the sent folder differs"
echo "diff -r album got-folder/album: identical"
stop folder-sender

say "tracker: tracker --bind 127.0.0.1 0"
start tracker "$ROOT" "" "$TRACKER" --bind 127.0.0.1 0
wait_line tracker '^Tracker running on port [0-9]+\. Press Ctrl\+C to stop\.$'
TPORT=$(port_of "$LINE")
quote tracker "$WORK/tracker.out"

# --- Part 1: a small text file, one seeder -----------------------------------

say "seeder A: peer --bind 127.0.0.1 --serve --share test_files/sample.txt 127.0.0.1 $TPORT 0"
start seed-a "$ROOT" "" "$PEER" --bind 127.0.0.1 --serve --share test_files/sample.txt 127.0.0.1 "$TPORT" 0
wait_line seed-a '^Peer listening on '
wait_line seed-a '^Successfully registered file: test_files/sample.txt '
SAMPLE_ID=$(id_of "$LINE")
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
grep -qx "Found 1 peer for sample.txt (size: $SAMPLE_SIZE bytes)" "$WORK/dl-sample.out" \
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
start seed-b "$WORK/seed-b" "" "$PEER" --bind 127.0.0.1 --serve --share random.bin 127.0.0.1 "$TPORT" 0
start seed-c "$WORK/seed-c" "" "$PEER" --bind 127.0.0.1 --serve --share random.bin 127.0.0.1 "$TPORT" 0
wait_line seed-b '^Peer listening on '
BPORT=$(port_of "$LINE")
wait_line seed-c '^Peer listening on '
CPORT=$(port_of "$LINE")
wait_line seed-b '^Successfully registered file: random.bin '
RANDOM_ID=$(id_of "$LINE")
wait_line seed-c '^Successfully registered file: random.bin '
C_ID=$(id_of "$LINE")
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
echo "PASS: sample.txt and a folder by ticket, sample.txt from 1 seeder, and a 5 MiB random file (2 seeders: $from_b + $from_c chunks) downloaded intact"
