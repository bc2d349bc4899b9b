#!/usr/bin/env bash
# Download cap accuracy, on loopback: one downloader with --max-download CAP
# fetches a big file from the seeders, and the bytes it receives over 10 s
# windows of wall-clock time are compared with the cap. Prints one table.
#
#   scripts/cap.sh [--workers N] [--seeders N] [--runs N] [CAP...]
#
#   CAP          caps to measure, as --max-download takes them [6M 20M 50M]
#   --workers N  the downloader's --workers [8]
#   --seeders N  peers sharing the file [1]
#   --runs N     downloads per cap; the table gives the ranges [1]
#
# Each download starts fresh: a new downloader, with its own identity, in an
# empty directory. It is sampled every 0.2 s from CAP_SKIP seconds [1] after
# it prints `Found N peers` for CAP_SPAN seconds [14], and every window of
# CAP_WINDOW seconds [10] in that span is measured. Three counts:
#   achieved  verified bytes (`done_bytes` of its /api/status, what a user
#             sees): the least-squares slope over the span, as the count
#             moves a 512 KiB chunk at a time
#   read      bytes the downloader took from its sockets to the seeders
#             (per `ss -tin`: bytes_received less the receive queue)
#   wire      bytes that reached those sockets (bytes_received): `read`
#             plus whatever the kernel holds for the downloader to read
# `read` and `wire` are exact at each sample (TLS framing, about 0.2%, and
# protocol lines included); the table gives the lowest and highest ratio
# of any window, count / (cap * window length). Binaries come from
# CARGO_TARGET_DIR if set (else target/). Everything listens on 127.0.0.1,
# on ports the OS picks; a trap stops every process started and removes the
# work directory (under /tmp).

set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; }

WORKERS=8 SEEDERS=1 RUNS=1 CAPS=()
while (($#)); do
    case $1 in
    --workers) WORKERS=${2:?}; shift ;;
    --seeders) SEEDERS=${2:?}; shift ;;
    --runs) RUNS=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) CAPS+=("$1") ;;
    esac
    shift
done
((${#CAPS[@]})) || CAPS=(6M 20M 50M)
SKIP=${CAP_SKIP:-1}
WINDOW=${CAP_WINDOW:-10}
SPAN=${CAP_SPAN:-$((WINDOW + 4))}
((SPAN >= WINDOW)) || fail "CAP_SPAN ($SPAN) is shorter than CAP_WINDOW ($WINDOW)"

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
SAY_FD=2    # the table alone goes to stdout
STAMP_OUT=1 # `Found N peers` carries its time (LINE_TS)

log() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

for tool in curl jq ss numfmt; do
    command -v "$tool" >/dev/null || fail "$tool is needed"
done

say "building: cargo build --release --bins"
cargo build --release --bins >&2

# The file: enough for the largest cap over the whole run, and then some.
max_cap=0
for cap in "${CAPS[@]}"; do
    bytes=$(numfmt --from=iec "$cap") || fail "not a rate: $cap"
    ((bytes > max_cap)) && max_cap=$bytes
done
SIZE=$(((max_cap * (SKIP + SPAN + 4) / 1048576 + 1) * 1048576))
WORK=$(mktemp -d /tmp/p2pshare-cap.XXXXXX)
mkdir "$WORK/src"
SRC=$WORK/src/big.bin
say "work directory $WORK; a $((SIZE >> 20)) MiB sparse file"
truncate -s "$SIZE" "$SRC"

start tracker "$WORK" "" "$TRACKER" --bind 127.0.0.1 0
wait_line tracker 'Tracker running on port [0-9]+\.' 10
TPORT=$(port_of "$LINE")

SEED_PORTS=()
for ((i = 0; i < SEEDERS; i++)); do
    start "seed$i" "$WORK/src" "" "$PEER" --bind 127.0.0.1 --serve --share "$SRC" 127.0.0.1 "$TPORT" 0
    wait_line "seed$i" 'Peer listening on .*:[0-9]+$' 10
    SEED_PORTS+=("$(port_of "$LINE")")
done
for ((i = 0; i < SEEDERS; i++)); do
    wait_line "seed$i" 'Successfully registered file: ' 120
done
FILTER=$(printf 'dport = :%s or ' "${SEED_PORTS[@]}")
FILTER="( ${FILTER% or } )"

# sample URL: one line "TIME DONE_BYTES WIRE READ" of the downloader's
# state now. WIRE and READ sum over its connections to the seeders; one
# that closed keeps the last value seen (in $WORK/sockets, per 4-tuple).
sample() {
    local t sockets verified
    # The time is the sockets' (exact counts); the status count is fitted.
    t=$EPOCHREALTIME
    sockets=$(ss -tinH "$FILTER" 2>/dev/null) || sockets=""
    verified=$(curl -fsS --max-time 2 "$1" | jq '[.downloads[].done_bytes] | add // 0') || verified=-
    awk -v t="$t" -v done="$verified" -v db="$WORK/sockets" '
        BEGIN {
            while ((getline l < db) > 0) { split(l, f, " "); wire[f[1]] = f[2]; rd[f[1]] = f[3] }
            close(db)
        }
        /^[A-Z]/ { key = $4 "-" $5; q = $2; next }
        key != "" && match($0, /bytes_received:[0-9]+/) {
            b = substr($0, RSTART + 15, RLENGTH - 15)
            wire[key] = b; rd[key] = b - q; key = ""
        }
        END {
            for (k in wire) { w += wire[k]; r += rd[k]; print k, wire[k], rd[k] > db }
            printf "%s %s %d %d\n", t, done, w, r
        }' <<<"$sockets"
}

# measure CAP: one fresh download under CAP; appends a line "CAP ACHIEVED
# READ_MIN READ_MAX WIRE_MIN WIRE_MAX" (bytes per second, ratios) to
# $WORK/results.
SEQ=0
measure() {
    local cap=$1 name dir url t0 t_open t_close t result
    SEQ=$((SEQ + 1))
    name=dl$SEQ dir=$WORK/dl$SEQ
    mkdir "$dir"
    printf 'download big.bin\n' >"$WORK/$name.in"
    : >"$WORK/sockets"
    start "$name" "$dir" "$WORK/$name.in" "$PEER" --bind 127.0.0.1 --http 0 \
        --workers "$WORKERS" --max-download "$cap" 127.0.0.1 "$TPORT" 0
    wait_line "$name" 'Status page on http://[^/]+/' 10
    # The page's address may carry a token (for its actions); reading the
    # status needs none.
    [[ $LINE =~ (http://[^/]+/) ]] || fail "no address in: $LINE"
    url=${BASH_REMATCH[1]}api/status
    wait_line "$name" 'Found [0-9]+ peers? for big\.bin' 20
    t0=$LINE_TS
    t_open=$(calc "$t0 + $SKIP" 6)
    t_close=$(calc "$t_open + $SPAN" 6)
    : >"$WORK/$name.samples"
    while :; do
        t=$EPOCHREALTIME
        awk "BEGIN { exit !($t >= $t_close + 0.1) }" && break
        if awk "BEGIN { exit !($t >= $t_open - 0.2) }"; then
            sample "$url" >>"$WORK/$name.samples"
        fi
        sleep 0.2
    done
    stop "$name"
    result=$(awk -v cap="$(numfmt --from=iec "$cap")" -v a="$t_open" -v b="$t_close" -v win="$WINDOW" '
        $2 == "-" || $1 < a - 0.15 || $1 > b + 0.15 { next }
        { n++; t[n] = $1; d[n] = $2; w[n] = $3; r[n] = $4 }
        function lo(x, y) { return x == "" || y < x ? y : x }
        function hi(x, y) { return x == "" || y > x ? y : x }
        END {
            if (n < 3) { print "too few samples" > "/dev/stderr"; exit 1 }
            for (i = 1; i <= n; i++) {
                x = t[i] - a; sx += x; sy += d[i]; sxx += x * x; sxy += x * d[i]
            }
            slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
            # Every window: from each sample to the first one CAP_WINDOW on.
            j = 1
            for (i = 1; i <= n; i++) {
                while (j <= n && t[j] - t[i] < win - 0.05) j++
                if (j > n) break
                secs = t[j] - t[i]
                rr = (r[j] - r[i]) / secs / cap; wr = (w[j] - w[i]) / secs / cap
                rmin = lo(rmin, rr); rmax = hi(rmax, rr); wmin = lo(wmin, wr); wmax = hi(wmax, wr)
            }
            if (rmin == "") { print "no whole window" > "/dev/stderr"; exit 1 }
            printf "%d %.0f %.4f %.4f %.4f %.4f\n", cap, slope, rmin, rmax, wmin, wmax
        }' "$WORK/$name.samples") || fail "$name: cannot measure ($WORK/$name.samples)"
    printf '%s\n' "$result" >>"$WORK/results"
    log "   -> $cap: achieved B/s, read and wire ratios (lowest, highest): ${result#* }"
    rm -rf -- "$dir"
}

: >"$WORK/results"
for cap in "${CAPS[@]}"; do
    for ((r = 0; r < RUNS; r++)); do
        say "cap $cap, run $((r + 1)) of $RUNS ($SEEDERS seeder(s), $WORKERS workers)"
        measure "$cap"
    done
done

# The table: per cap, the median achieved rate, the range of its ratio over
# the runs, and the lowest and highest ratio of any window of any run.
printf '\n%s seeder(s), %s workers; %s run(s) per cap; windows of %s s within %s s to %s s\n\n' \
    "$SEEDERS" "$WORKERS" "$RUNS" "$WINDOW" "$SKIP" "$((SKIP + SPAN))"
printf '| cap | achieved | ratio | read, any window | wire, any window |\n'
printf '| --- | --- | --- | --- | --- |\n'
sort -s -n -k1,1 "$WORK/results" | awk '
    function mib(b) { return sprintf("%.2f MiB/s", b / 1048576) }
    function span(x, y) { return sprintf(x == y ? "%.3f" : "%.3f to %.3f", x, y) }
    function flush(   i, j, k, v, med) {
        for (i = 1; i <= n; i++) v[i] = a[i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { k = v[i]; v[i] = v[j]; v[j] = k }
        med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        printf "| %s | %s | %s | %s | %s |\n", mib(cap), mib(med), span(v[1] / cap, v[n] / cap),
            span(rlo, rhi), span(wlo, whi)
        n = 0
    }
    n && $1 != cap { flush() }
    {
        if (!n) { rlo = $3; rhi = $4; wlo = $5; whi = $6 }
        cap = $1; a[++n] = $2
        if ($3 < rlo) rlo = $3; if ($4 > rhi) rhi = $4; if ($5 < wlo) wlo = $5; if ($6 > whi) whi = $6
    }
    END { if (n) flush() }'
