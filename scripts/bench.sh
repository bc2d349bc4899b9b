#!/usr/bin/env bash
# p2pshare benchmarks, on loopback, each against a baseline measured in the
# same run (the machine is shared and noisy: ratios travel, absolute figures
# do not). Prints one Markdown table; docs/BENCHMARKS.md holds a copy.
#
#   scripts/bench.sh [--quick|--full] [--peers] [--netns]
#
#   --quick   64 MiB random file, 5 s tracker runs, crowd R = 8M (default)
#   --full    1 GiB random file, 10 s tracker runs, crowd R = 32M
#   --peers   also aria2c and rqbit through a local opentracker (installs
#             aria2, opentracker, mktorrent from Debian; rqbit with
#             `cargo install rqbit --locked`, a long build)
#   --netns   also 11 and 15 (need root): each peer in a network namespace
#             of its own, the seeder's link shaped with tc tbf (11); the NAT
#             lab of tests/e2e/nat_lab.rs, with nft (15)
#
# Benchmarks (the median of BENCH_RUNS runs, default 3, each):
#   1. 1 seeder -> 1 downloader (TLS 1.3, as every peer connection is) vs a
#      raw TCP copy file->file (socat -b 131072) and vs socat over TLS 1.3
#      (OPENSSL-LISTEN / OPENSSL, a throwaway certificate), each also
#      fsynced; new rows, not columns: "(socat TLS 1.3)" is the target row
#      (p2pshare / socat TLS), "(socat)" gives the cost of TLS against TCP
#   2. share (hashing) vs `openssl dgst -sha256` and `sha256sum`
#   3. peak RSS (/usr/bin/time -f %M) of the downloader and seeder during 1
#   4. 4 seeders each --max-upload R -> 1 downloader, and 1 seeder capped at R
#      (R = BENCH_RATE, default 10M)
#   5. tracker PEERS lookups/s (examples/tracker_load.rs) vs redis-benchmark
#      GET, 1 and 50 clients
#   6. swarm: 8 seeders, 4 downloaders at once vs 4 concurrent socat copies
#   7. (--peers) 1 -> 1 and 3 -> 1 with aria2c and rqbit
#   8. flash crowd: 1 seeder --max-upload R (R = BENCH_CROWD_RATE), N = 6 and
#      12 downloaders started together that serve until all are done: the
#      slowest finish / the floor S/R, and the seeder's upload / S; with
#      --peers also aria2c (N = 6, 12) and rqbit (N = 6), same case
#   9. late arrival: as 8 with N = 3 + 3, the second 3 started 3 s later
#  10. killed downloader: as 8 with N = 6, one SIGKILLed once it has S/8
#  11. (--netns) 8 with N = 6 (or each N of BENCH_NETNS_N, say "24 48")
#      over veths on a bridge, every peer in its own namespace, the
#      seeder's uplink tbf BENCH_NETNS_RATE (default 64mbit, --full
#      256mbit) instead of --max-upload; the median and the worst run
#  12. staggered crowd: as 8 with N = 6, 12 and 24, the downloaders started
#      one after another (each once the one before listens), then
#      `download` typed into all at once; the worst of the runs
#  13. how it grows: one --serve peer shares N = 1,000 and 10,000 files of
#      4 KiB (BENCH_GROW="1000 10000 100000" adds more): seconds from its
#      start until every file is registered, its RSS and CPU seconds then,
#      seconds of a restart that shares them all again (from its state
#      directory), and the growth exponent fitted to each (1.0: linear,
#      2.0: quadratic); the median of BENCH_RUNS runs at each N
#  14. folders, `peer send DIR` -> `peer get TICKET` (1 -> 1), each against
#      `tar c DIR | socat OPENSSL` into `socat OPENSSL-LISTEN | tar x` (TLS
#      1.3, the certificate of 1) in the same run: a tree of 10,000 files
#      of 4 KiB (100 folders of 100), one of 100 files of 1 MiB, and a copy
#      of this machine's Python standard library (/usr/lib/python3.N with
#      its __pycache__, symlinks left out), whose share (hashing, start to
#      ticket) is also timed against `tar c DIR | sha256sum`; the flash
#      crowd of 8 for a tree of 64 files of 1 MiB (N = 6); and ten copies of
#      one 5 MiB file in a tree: the seeder's upload, about 5 MiB. Every
#      tree is compared with diff -r
#  15. (--netns) the NAT lab (tests/e2e/nat_lab.rs): the tracker with
#      --relay on an outside network (a bridge), a public host on it, and
#      hosts each behind a router namespace doing NAT with nft (masquerade;
#      `fully-random`: symmetric) that drops unsolicited inbound. The S file
#      relayed (symmetric -> symmetric NAT) against direct (public seeder
#      -> symmetric NAT) over the same links, clock started once the
#      downloader listens (target: relayed >= 0.8x direct), and the
#      tracker's CPU s (/proc/PID/stat) per GiB it relayed; per case
#      (public -> NAT, symmetric -> symmetric, drop-NAT -> drop-NAT,
#      drop-NAT -> symmetric, resetting NAT -> resetting NAT, behind a
#      miniupnpd router -> drop-NAT, and then whether its port forward
#      is gone) 10
#      fresh `peer get` of a 1 MiB ticket: successes and the median s to
#      the whole file; the flash crowd of 8 (N = 6) with the seeder and
#      downloaders behind drop-NATs: slowest finish / floor, relay bytes
# Every transferred file is compared with cmp (a tree with diff -r); a
# mismatch fails the script.
# Environment: BENCH_RUNS (runs per figure), BENCH_RATE (R of 4),
# BENCH_CROWD_RATE (R of 8 to 10 and 15's crowd), BENCH_NETNS_RATE (the tbf rate of 11),
# BENCH_GROW (the N of 13), BENCH_ONLY (say "1 5": only those benchmarks),
# BENCH_NAT_PERF=1 (15: `perf record -g` the tracker during the last
# relayed download, `perf report --stdio | head -60` in the log),
# BENCH_NAT_PARTS (15: which of "xfer tries crowd" to run, default all),
# BENCH_NAT_LINK (15: the senders' uplink in its shaped transfer, default 1gbit),
# BENCH_KEEP=1 (keep the work directory). Binaries come from CARGO_TARGET_DIR if set (else target/).
#
# Everything listens on 127.0.0.1 only (in 11, on 10.77.0.0/24, in 15 on
# 100.64.0.0/24 and 10.0.I.0/24, inside the namespaces this script creates,
# p2pbench<pid>-*), every wait has a
# deadline, and a trap stops every process this script started, removes
# the namespaces it made (with their veths and bridge) and its work
# directory (under /tmp), on success and on failure.

set -euo pipefail
export LC_ALL=C # a '.' in $EPOCHREALTIME and in awk's numbers

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; }

MODE=quick
WITH_PEERS=0
WITH_NETNS=0
for arg in "$@"; do
    case $arg in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --peers) WITH_PEERS=1 ;;
    --netns) WITH_NETNS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

if [[ $MODE == quick ]]; then
    SIZE=$((64 << 20)) LOAD_SECS=5 CROWD_RATE=8M NETNS_RATE=64mbit
else
    SIZE=$((1 << 30)) LOAD_SECS=10 CROWD_RATE=32M NETNS_RATE=256mbit
fi
CROWD_RATE=${BENCH_CROWD_RATE:-$CROWD_RATE}
NETNS_RATE=${BENCH_NETNS_RATE:-$NETNS_RATE}
RATE=${BENCH_RATE:-10M}
RUNS=${BENCH_RUNS:-3}
SIZE_MIB=$((SIZE >> 20))

# shellcheck source=scripts/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
SAY_FD=2      # the table alone goes to stdout
STAMP_OUT=1   # readiness and completion lines carry their time (LINE_TS)
KEEP_WORK=${BENCH_KEEP:-}
LOAD=$TARGET_DIR/release/examples/tracker_load

ROWS=() # table rows: "benchmark|p2pshare|baseline|ratio|target|result"
MISSED=0

log() { printf '%s\n' "$*" >&2; }

# ------------------------------------------------------------------ numbers --

now() { printf '%s\n' "$EPOCHREALTIME"; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { printf '%s\n' "$@" | sort -g | tail -n1; }
mib_s() { calc "$1 / 1048576 / $2" 1; } # mib_s BYTES SECS
kib_to_mib() { calc "$1 / 1024" 1; }

# row NAME P2P BASELINE RATIO TARGET OK: one table row; OK is 1 (met), 0
# (missed) or "-" (no target).
row() {
    local result=-
    case $6 in
    1) result=met ;;
    0) result=MISSED; MISSED=$((MISSED + 1)) ;;
    esac
    ROWS+=("$1|$2|$3|$4|$5|$result")
    log "   -> $1: p2pshare $2, baseline $3, ratio $4 (target $5: $result)"
}

skip_row() {
    ROWS+=("$1|skipped: $2|-|-|$3|-")
    log "   -> $1: skipped: $2"
}

ge() { awk "BEGIN { exit !($1 >= $2) }" && echo 1 || echo 0; }

# ---------------------------------------------------------------- ports ------

# free_port: a TCP port no socket uses (per /proc/net/tcp{,6}), below the
# usual ephemeral range (32768-60999) so outgoing connections do not take it.
free_port() {
    local p i
    for ((i = 0; i < 100; i++)); do
        p=$((10000 + RANDOM % 22000))
        port_used "$p" any || { printf '%s\n' "$p"; return; }
    done
    fail "no free port found"
}

# port_used PORT [any]: whether a socket listens on PORT (with "any": uses it
# as its local port in any state).
port_used() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v h=":$hex" -v any="${2:-}" \
        'FNR > 1 && (any != "" || $4 == "0A") && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

listening() { port_used "$1"; }

# wait_listen PORT SECS: waits until something listens on PORT; returns 1
# after SECS.
wait_listen() {
    local deadline=$((SECONDS + $2))
    until listening "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.02
    done
}

# ------------------------------------------------------------- set-up --------

install_missing() {
    local pkgs=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || pkgs+=("${pair#*:}")
    done
    ((${#pkgs[@]} == 0)) && return
    say "installing from Debian: ${pkgs[*]}"
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

install_missing socat:socat redis-server:redis-server redis-benchmark:redis-tools \
    /usr/bin/time:time openssl:openssl cmp:diffutils pgrep:procps curl:curl jq:jq
((WITH_NETNS)) && install_missing ip:iproute2 tc:iproute2 nft:nftables miniupnpd:miniupnpd-nftables
if ((WITH_PEERS)); then
    install_missing aria2c:aria2 opentracker:opentracker mktorrent:mktorrent
    export PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin
    if ! command -v rqbit >/dev/null; then
        say "installing rqbit: cargo install rqbit --locked (a long build)"
        cargo install rqbit --locked || log "rqbit could not be built; its rows will be skipped"
    fi
fi

say "building: cargo build --release --bins --examples"
cargo build --release --bins --examples

WORK=$(mktemp -d /tmp/p2pshare-bench.XXXXXX)
mkdir "$WORK/src"
SRC=$WORK/src/data.bin
say "work directory $WORK; $SIZE_MIB MiB random file, on the disk and in the page cache"
head -c "$SIZE" /dev/urandom >"$SRC"
# Written back now: left dirty, the flusher writes it out 30 s later, in the
# middle of whichever transfer is running then (measured: a 1 GiB download
# took 2.8 s instead of 1.1 s), and the first rows' figures are noise.
sync -- "$SRC"
cat "$SRC" >/dev/null

# Generous deadlines: a transfer at 5 MiB/s, and a capped one at half its cap.
XFER_SECS=$((60 + SIZE_MIB / 5))
RATE_BYTES=$(numfmt --from=iec "$RATE")
RATE_MIB=$(calc "$RATE_BYTES / 1048576" 1)
CAPPED_SECS=$((60 + 2 * SIZE / RATE_BYTES))
# Flash crowds (8 to 11): the floor is one copy of the file through the
# seeder's capped uplink, S/R.
CROWD_RATE_BYTES=$(numfmt --from=iec "$CROWD_RATE")
CROWD_RATE_MIB=$(calc "$CROWD_RATE_BYTES / 1048576" 1)
FLOOR_SECS=$(calc "$SIZE / $CROWD_RATE_BYTES" 4)
CROWD_SECS=$((60 + 4 * SIZE / CROWD_RATE_BYTES))
CROWD_LATE_SECS=3        # 9: the late half starts this much after the first
KILL_AT=$((SIZE / 8))    # 10: the victim is killed once it has this many bytes

# ------------------------------------------------------------- p2pshare -----

SEQ=0

# start_tracker: a fresh tracker; sets TPORT and TNAME.
start_tracker() {
    SEQ=$((SEQ + 1))
    TNAME=tracker-$SEQ
    start "$TNAME" "$WORK" "" "$TRACKER" --bind 127.0.0.1 0
    wait_line "$TNAME" 'Tracker running on port [0-9]+\.' 10
    TPORT=$(port_of "$LINE")
}

# p2p_run SEEDERS DOWNLOADERS SECS [SEEDER_OPTION...]: a fresh tracker,
# SEEDERS peers sharing $SRC, then DOWNLOADERS peers started at once, each in
# an empty directory. Checks every downloaded file with cmp. Sets RUN_SECS
# (start of the downloaders until the last `Successfully downloaded` line),
# RUN_DL_RSS and RUN_SEED_RSS (largest peak RSS, KiB). Stops everything.
p2p_run() {
    local seeders=$1 downloaders=$2 secs=$3 i t0 t1=0 dir name names=()
    shift 3
    SEQ=$((SEQ + 1))
    local run=r$SEQ
    start_tracker
    for ((i = 0; i < seeders; i++)); do
        start "$run-seed$i" "$WORK/src" "" /usr/bin/time -f %M -o "$WORK/$run-seed$i.rss" \
            "$PEER" --bind 127.0.0.1 --serve "$@" --share "$SRC" 127.0.0.1 "$TPORT" 0
        names+=("$run-seed$i")
    done
    for ((i = 0; i < seeders; i++)); do
        wait_line "$run-seed$i" 'Successfully registered file: ' 300
    done
    printf 'download data.bin\n' >"$WORK/$run.in"
    t0=$(now)
    for ((i = 0; i < downloaders; i++)); do
        dir=$WORK/$run-dl$i
        mkdir "$dir"
        start "$run-dl$i" "$dir" "$WORK/$run.in" /usr/bin/time -f %M -o "$WORK/$run-dl$i.rss" \
            "$PEER" --bind 127.0.0.1 127.0.0.1 "$TPORT" 0
    done
    for ((i = 0; i < downloaders; i++)); do
        wait_line "$run-dl$i" 'Successfully downloaded: data\.bin$' "$secs"
        t1=$(max "$t1" "$LINE_TS")
    done
    RUN_SECS=$(calc "$t1 - $t0" 4)
    RUN_DL_RSS=0
    for ((i = 0; i < downloaders; i++)); do
        wait_exit "$run-dl$i" 30
        cmp "$SRC" "$WORK/$run-dl$i/data.bin" || fail "$run-dl$i: downloaded file differs from the original"
        RUN_DL_RSS=$(max "$RUN_DL_RSS" "$(tail -n1 "$WORK/$run-dl$i.rss")")
        rm -rf -- "$WORK/$run-dl$i"
    done
    RUN_SEED_RSS=0
    for name in "${names[@]}"; do
        stop "$name"
        RUN_SEED_RSS=$(max "$RUN_SEED_RSS" "$(tail -n1 "$WORK/$name.rss")")
    done
    stop "$TNAME"
}

# tls_cert: a throwaway self-signed P-256 certificate and key for socat's
# TLS listener, made once per run in $WORK; sets TLS_CERT and TLS_KEY.
tls_cert() {
    TLS_CERT=$WORK/socat-cert.pem TLS_KEY=$WORK/socat-key.pem
    [[ -s $TLS_CERT ]] && return
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=p2pshare-bench -keyout "$TLS_KEY" -out "$TLS_CERT" 2>"$WORK/openssl-req.err" ||
        fail "openssl could not make a certificate: $(cat "$WORK/openssl-req.err")"
}

# socat_run COPIES [tls]: COPIES concurrent raw TCP copies of $SRC, file ->
# file (with "tls": over TLS 1.3, OpenSSL's default suite, the client not
# verifying the throwaway certificate). Sets RUN_SECS (first sender started
# until the last receiver exited), RUN_FSYNC_SECS (the same, until the copies
# were also fsynced), RUN_RX_RSS and RUN_TX_RSS (largest peak RSS, KiB).
socat_run() {
    local copies=$1 tls=${2:-} i t0 port ports=() rx=() tx=() files=() listen=TCP-LISTEN connect=TCP opts=""
    SEQ=$((SEQ + 1))
    local run=s$SEQ
    if [[ $tls == tls ]]; then
        tls_cert
        listen=OPENSSL-LISTEN connect=OPENSSL
        opts=",verify=0,openssl-min-proto-version=TLS1.3"
    fi
    for ((i = 0; i < copies; i++)); do
        port=$(free_port)
        ports+=("$port")
        start "$run-rx$i" "$WORK" "" /usr/bin/time -f %M -o "$WORK/$run-rx$i.rss" \
            socat -b 131072 -u "$listen:$port,bind=127.0.0.1,reuseaddr${tls:+,cert=$TLS_CERT,key=$TLS_KEY}$opts" \
            "OPEN:$WORK/$run-rx$i.bin,creat,trunc"
        rx+=("$run-rx$i")
    done
    for port in "${ports[@]}"; do wait_listen "$port" 10 || fail "socat does not listen on $port"; done
    t0=$(now)
    for ((i = 0; i < copies; i++)); do
        start "$run-tx$i" "$WORK" "" /usr/bin/time -f %M -o "$WORK/$run-tx$i.rss" \
            socat -b 131072 -u "OPEN:$SRC" "$connect:127.0.0.1:${ports[i]}$opts"
        tx+=("$run-tx$i")
    done
    for name in "${rx[@]}"; do wait_exit "$name" "$XFER_SECS"; done
    RUN_SECS=$(calc "$(now) - $t0" 4)
    # A p2pshare download fsyncs its file before publishing it; this is what
    # the same durability costs the raw copy.
    for ((i = 0; i < copies; i++)); do files+=("$WORK/$run-rx$i.bin"); done
    sync -- "${files[@]}"
    RUN_FSYNC_SECS=$(calc "$(now) - $t0" 4)
    RUN_RX_RSS=0 RUN_TX_RSS=0
    for ((i = 0; i < copies; i++)); do
        wait_exit "${tx[i]}" 10
        cmp "$SRC" "$WORK/$run-rx$i.bin" || fail "socat copy $i differs from the original"
        rm -f -- "$WORK/$run-rx$i.bin"
        RUN_RX_RSS=$(max "$RUN_RX_RSS" "$(tail -n1 "$WORK/$run-rx$i.rss")")
        RUN_TX_RSS=$(max "$RUN_TX_RSS" "$(tail -n1 "$WORK/$run-tx$i.rss")")
    done
}

# time_cmd CMD...: runs CMD (stdout to $WORK/cmd.out); sets RUN_SECS.
time_cmd() {
    local t0
    t0=$(now)
    "$@" >"$WORK/cmd.out"
    RUN_SECS=$(calc "$(now) - $t0" 4)
}

# same A B: whether B is a copy of A: cmp for a file, diff -r for a folder
# (names, types and contents; the first differences go to stderr, and
# pipefail gives diff's status).
same() {
    if [[ -d $1 ]]; then diff -rq -- "$1" "$2" | head -n 5 >&2; else cmp -- "$1" "$2"; fi
}

# ------------------------------------------------------------ benchmarks -----

bench_transfer() {
    say "1. 1 seeder -> 1 downloader (TLS) vs socat -b 131072 file->file over TCP and over TLS 1.3 ($SIZE_MIB MiB) and 3. peak RSS"
    local k p2p=() raw=() rawsync=() tls=() tlssync=() dl=() seed=() rx=() tx=()
    for ((k = 1; k <= RUNS; k++)); do
        socat_run 1
        raw+=("$RUN_SECS") rawsync+=("$RUN_FSYNC_SECS") rx+=("$RUN_RX_RSS") tx+=("$RUN_TX_RSS")
        socat_run 1 tls
        tls+=("$RUN_SECS") tlssync+=("$RUN_FSYNC_SECS")
        p2p_run 1 1 "$XFER_SECS"
        p2p+=("$RUN_SECS") dl+=("$RUN_DL_RSS") seed+=("$RUN_SEED_RSS")
        log "   run $k: socat $(mib_s "$SIZE" "${raw[-1]}") MiB/s (with fsync $(mib_s "$SIZE" "${rawsync[-1]}")," \
            "over TLS $(mib_s "$SIZE" "${tls[-1]}"), TLS with fsync $(mib_s "$SIZE" "${tlssync[-1]}"))," \
            "p2pshare $(mib_s "$SIZE" "$RUN_SECS") MiB/s" \
            "(/ socat TLS $(calc "${tls[-1]} / $RUN_SECS"), / socat $(calc "${raw[-1]} / $RUN_SECS"));" \
            "RSS KiB: downloader $RUN_DL_RSS, seeder $RUN_SEED_RSS, socat rx ${rx[-1]} tx ${tx[-1]}"
    done
    P2P_1TO1=$(median "${p2p[@]}")
    local a b
    a=$(mib_s "$SIZE" "$P2P_1TO1") b=$(mib_s "$SIZE" "$(median "${tls[@]}")")
    row "1. 1 -> 1 transfer, MiB/s" "$a" "$b (socat TLS 1.3)" "$(calc "$a / $b")" ">= 0.9" "$(ge "$a / $b" 0.9)"
    b=$(mib_s "$SIZE" "$(median "${tlssync[@]}")")
    row "1. 1 -> 1 transfer, MiB/s" "$a" "$b (socat TLS 1.3 + fsync)" "$(calc "$a / $b")" "-" -
    b=$(mib_s "$SIZE" "$(median "${raw[@]}")")
    row "1. 1 -> 1 transfer, MiB/s" "$a" "$b (socat)" "$(calc "$a / $b")" ">= 0.9" "$(ge "$a / $b" 0.9)"
    b=$(mib_s "$SIZE" "$(median "${rawsync[@]}")")
    row "1. 1 -> 1 transfer, MiB/s" "$a" "$b (socat + fsync)" "$(calc "$a / $b")" "-" -
    a=$(max "${dl[@]}") b=$(max "${rx[@]}")
    row "3. peak RSS downloader, MiB" "$(kib_to_mib "$a")" "$(kib_to_mib "$b") (socat rx)" \
        "$(calc "$a / $b")" "<= 64 MiB" "$(ge 65536 "$a")"
    a=$(max "${seed[@]}") b=$(max "${tx[@]}")
    row "3. peak RSS seeder, MiB" "$(kib_to_mib "$a")" "$(kib_to_mib "$b") (socat tx)" \
        "$(calc "$a / $b")" "<= 64 MiB" "$(ge 65536 "$a")"
}

bench_hashing() {
    say "2. share (hashing, from peer start until registered) vs openssl dgst -sha256 and sha256sum"
    local k p2p=() ossl=() sum=() id="" got t0 a b c ref
    start_tracker
    for ((k = 1; k <= RUNS; k++)); do
        t0=$(now)
        start "hash$k" "$WORK/src" "" "$PEER" --bind 127.0.0.1 --serve --share "$SRC" 127.0.0.1 "$TPORT" 0
        wait_line "hash$k" 'Successfully registered file: ' 300
        p2p+=("$(calc "$LINE_TS - $t0" 4)")
        got=$(id_of "$LINE")
        [[ -z $id || $id == "$got" ]] || fail "share gave two ids for one file"
        id=$got
        stop "hash$k"
        time_cmd openssl dgst -sha256 "$SRC"
        ossl+=("$RUN_SECS")
        ref=$(awk '{ print $NF }' "$WORK/cmd.out")
        time_cmd sha256sum "$SRC"
        sum+=("$RUN_SECS")
        [[ $(awk '{ print $1 }' "$WORK/cmd.out") == "$ref" ]] || fail "openssl and sha256sum disagree"
        log "   run $k: p2pshare ${p2p[-1]} s, openssl ${ossl[-1]} s, sha256sum ${sum[-1]} s"
    done
    stop "$TNAME"
    a=$(mib_s "$SIZE" "$(median "${p2p[@]}")")
    b=$(mib_s "$SIZE" "$(median "${ossl[@]}")")
    c=$(mib_s "$SIZE" "$(median "${sum[@]}")")
    row "2. share hashing, MiB/s" "$a" "$b (openssl)" "$(calc "$a / $b")" ">= 1.0" "$(ge "$a / $b" 1)"
    row "2. share hashing, MiB/s" "$a" "$c (sha256sum)" "$(calc "$a / $c")" "-" -
}

bench_capped() {
    say "4. multi-source: seeders each --max-upload $RATE ($RATE_MIB MiB/s) -> 1 downloader"
    local k four=() one=() a
    for ((k = 1; k <= RUNS; k++)); do
        p2p_run 4 1 "$CAPPED_SECS" --max-upload "$RATE"
        four+=("$RUN_SECS")
        p2p_run 1 1 "$((2 * CAPPED_SECS))" --max-upload "$RATE"
        one+=("$RUN_SECS")
        log "   run $k: 4 seeders $(mib_s "$SIZE" "${four[-1]}") MiB/s, 1 seeder $(mib_s "$SIZE" "${one[-1]}") MiB/s"
    done
    a=$(mib_s "$SIZE" "$(median "${four[@]}")")
    row "4. 4 seeders capped at R -> 1, MiB/s" "$a" "$RATE_MIB (R)" "$(calc "$a / $RATE_MIB")" ">= 3.5" \
        "$(ge "$a / $RATE_MIB" 3.5)"
    a=$(mib_s "$SIZE" "$(median "${one[@]}")")
    row "4. 1 seeder capped at R -> 1, MiB/s" "$a" "$RATE_MIB (R)" "$(calc "$a / $RATE_MIB")" "0.9 to 1.1" \
        "$(awk "BEGIN { r = $a / $RATE_MIB; print (r >= 0.9 && r <= 1.1) ? 1 : 0 }")"
}

# redis_rate CLIENTS: redis-benchmark GET requests/s at CLIENTS, for about
# $LOAD_SECS (the request count is calibrated by a short first run).
redis_rate() {
    local n=20000 rate
    rate=$(redis-benchmark -h 127.0.0.1 -p "$RPORT" -t get -c "$1" -n "$n" -q | tr '\r' '\n' |
        sed -nE 's/^GET: ([0-9.]+) requests per second.*/\1/p' | tail -n1)
    [[ -n $rate ]] || fail "redis-benchmark printed no rate"
    n=$(calc "$rate * $LOAD_SECS" 0)
    redis-benchmark -h 127.0.0.1 -p "$RPORT" -t get -c "$1" -n "$n" -q | tr '\r' '\n' |
        sed -nE 's/^GET: ([0-9.]+) requests per second.*/\1/p' | tail -n1
}

bench_tracker() {
    say "5. tracker PEERS lookups/s (tracker_load) vs redis-benchmark -t get, $LOAD_SECS s each"
    local c k p2p r redis a b target ok
    mkdir "$WORK/redis"
    RPORT=$(free_port)
    start redis "$WORK/redis" "" redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$WORK/redis"
    wait_listen "$RPORT" 10 || fail "redis-server does not listen on $RPORT"
    redis-cli -h 127.0.0.1 -p "$RPORT" set key:__rand_int__ xxx >/dev/null # GET finds a value
    start_tracker
    for c in 1 50; do
        p2p=() redis=()
        for ((k = 1; k <= RUNS; k++)); do
            "$LOAD" --addr "127.0.0.1:$TPORT" --clients "$c" --seconds "$LOAD_SECS" >"$WORK/load.out" ||
                fail "tracker_load failed: $(cat "$WORK/load.out")"
            r=$(sed -nE 's/.*: ([0-9]+) requests\/s$/\1/p' "$WORK/load.out")
            [[ -n $r ]] || fail "tracker_load printed no rate: $(cat "$WORK/load.out")"
            p2p+=("$r")
            redis+=("$(redis_rate "$c")")
            log "   $c client(s), run $k: tracker $r/s, redis ${redis[-1]}/s"
        done
        a=$(calc "$(median "${p2p[@]}")" 0) b=$(calc "$(median "${redis[@]}")" 0)
        target=- ok=-
        ((c == 50)) && target=">= 0.5" ok=$(ge "$a / $b" 0.5)
        row "5. tracker lookups, $c client(s), req/s" "$a" "$b (redis GET)" "$(calc "$a / $b")" "$target" "$ok"
    done
    stop "$TNAME"
    stop redis
}

bench_swarm() {
    say "6. swarm: 8 seeders, 4 downloaders at once vs 4 concurrent socat copies"
    local k p2p=() raw=() rawsync=() a b
    for ((k = 1; k <= RUNS; k++)); do
        socat_run 4
        raw+=("$RUN_SECS") rawsync+=("$RUN_FSYNC_SECS")
        p2p_run 8 4 "$((4 * XFER_SECS))"
        p2p+=("$RUN_SECS")
        log "   run $k: socat x4 $(mib_s $((4 * SIZE)) "${raw[-1]}") MiB/s" \
            "(with fsync $(mib_s $((4 * SIZE)) "${rawsync[-1]}")), p2pshare $(mib_s $((4 * SIZE)) "${p2p[-1]}") MiB/s (total)"
    done
    a=$(mib_s $((4 * SIZE)) "$(median "${p2p[@]}")")
    b=$(mib_s $((4 * SIZE)) "$(median "${raw[@]}")")
    row "6. swarm 8 seeders -> 4 downloaders, total MiB/s" "$a" "$b (4 socat)" "$(calc "$a / $b")" "all intact" 1
    b=$(mib_s $((4 * SIZE)) "$(median "${rawsync[@]}")")
    row "6. swarm 8 seeders -> 4 downloaders, total MiB/s" "$a" "$b (4 socat + fsync)" "$(calc "$a / $b")" "-" -
}

# ------------------------------------------------------- BitTorrent peers ----
# A BitTorrent client that cannot be set up or does not finish in time gets
# "skipped: REASON" rows; a file that arrives different still fails the run.

ARIA_COMMON=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
    --disable-ipv6=true --interface=127.0.0.1 --file-allocation=none --summary-interval=0
    --console-log-level=warn)
# rqbit has no switch for PEX; with loopback-only peers and one tracker it
# can only learn the peers the tracker gave out anyway.
RQBIT_COMMON=(--disable-dht --disable-dht-persistence --disable-upnp-port-forward --disable-lsd
    --listen-ip 127.0.0.1)
BT_SEEDERS=3

# bt_setup: a torrent of $SRC (mktorrent, 512 KiB pieces), a copy of $SRC per
# seeder (so no two clients ever open one file for writing), and opentracker
# on a free port tracking the torrent. Returns 1 with BT_WHY set on failure.
# Does all that once per run (7 and 8 share it) and after that only returns
# the same status.
bt_setup() {
    if [[ -z ${BT_SET_UP:-} ]]; then
        BT_SET_UP=1 BT_SETUP_WHY=""
        bt_setup_once || BT_SETUP_WHY=$BT_WHY
    fi
    BT_WHY=$BT_SETUP_WHY
    [[ -z $BT_WHY ]]
}

bt_setup_once() {
    local hash i
    mkdir -p "$WORK/bt/root"
    OTPORT=$(free_port)
    mktorrent -l 19 -a "http://127.0.0.1:$OTPORT/announce" -o "$WORK/bt/data.torrent" "$SRC" >/dev/null ||
        { BT_WHY="mktorrent failed"; return 1; }
    hash=$(aria2c -S "$WORK/bt/data.torrent" | sed -nE 's/^Info Hash: ([0-9a-f]{40}).*/\1/p')
    [[ -n $hash ]] || { BT_WHY="cannot read the torrent's info hash"; return 1; }
    for ((i = 0; i < BT_SEEDERS; i++)); do
        mkdir "$WORK/bt/seed$i"
        cp -- "$SRC" "$WORK/bt/seed$i/data.bin"
    done
    # Debian's opentracker tracks only whitelisted info hashes. Run as root,
    # it chroots to -d and becomes -u, so the whitelist path is relative to
    # that directory, which the user must be able to read.
    printf '%s\n' "$hash" >"$WORK/bt/root/whitelist.txt"
    chmod 755 "$WORK/bt/root"
    chmod 644 "$WORK/bt/root/whitelist.txt"
    start opentracker "$WORK/bt" "" opentracker -i 127.0.0.1 -p "$OTPORT" -P "$OTPORT" \
        -w /whitelist.txt -d "$WORK/bt/root" -u nobody
    wait_listen "$OTPORT" 10 || { BT_WHY="opentracker did not start"; return 1; }
}

# bt_start CLIENT seed|get NAME PORT DIR: a seeder of DIR/data.bin, or a
# downloader into DIR that exits when done, listening on PORT.
bt_start() {
    local client=$1 role=$2 name=$3 port=$4 dir=$5 extra=()
    case $client/$role in
    aria2c/seed) extra=(--seed-ratio=0.0 --bt-seed-unverified=true) ;;
    aria2c/get) extra=(--seed-time=0) ;;
    rqbit/seed) extra=(--overwrite) ;;
    rqbit/get) extra=(--exit-on-finish) ;;
    esac
    case $client in
    aria2c)
        start "$name" "$dir" "" aria2c "${ARIA_COMMON[@]}" --listen-port="$port" "${extra[@]}" \
            -d "$dir" "$WORK/bt/data.torrent"
        ;;
    rqbit)
        start "$name" "$dir" "" rqbit "${RQBIT_COMMON[@]}" --listen-port "$port" --announce-port "$port" \
            download --disable-http-api "${extra[@]}" -o "$dir" "$WORK/bt/data.torrent"
        ;;
    esac
}

# bt_wait_ready CLIENT NAME PORT: until the seeder listens and, for rqbit,
# has checked its copy. Returns 1 after a deadline.
bt_wait_ready() {
    wait_listen "$3" 60 || return 1
    [[ $1 == rqbit ]] || return 0
    local deadline=$((SECONDS + 120))
    until grep -qiE "$RQBIT_READY" "$WORK/$2.out" "$WORK/$2.err"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
RQBIT_READY='Initial check results'

# bt_run CLIENT SEEDERS: SEEDERS seeders and one downloader (started once
# the seeders are ready and have had a second to announce). Sets RUN_SECS
# (downloader start to exit). Returns 1 with BT_WHY set on a timeout.
bt_run() {
    local client=$1 seeders=$2 i port ports=() t0 dir pid rc=0 ok=1 deadline
    SEQ=$((SEQ + 1))
    local run=b$SEQ
    local names=()
    for ((i = 0; i < seeders; i++)); do
        port=$(free_port)
        bt_start "$client" seed "$run-seed$i" "$port" "$WORK/bt/seed$i"
        names+=("$run-seed$i") ports+=("$port")
    done
    for ((i = 0; i < seeders; i++)); do
        bt_wait_ready "$client" "${names[i]}" "${ports[i]}" ||
            { BT_WHY="$client seeder not ready in time"; ok=0; break; }
    done
    if ((ok)); then
        sleep 1
        dir=$WORK/$run-dl
        mkdir "$dir"
        port=$(free_port)
        t0=$(now)
        bt_start "$client" get "$run-dl" "$port" "$dir"
        names+=("$run-dl")
        pid=$(pid_of "$run-dl")
        deadline=$((SECONDS + XFER_SECS))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.02; done
        RUN_SECS=$(calc "$(now) - $t0" 4)
        if kill -0 "$pid" 2>/dev/null; then
            BT_WHY="$client did not finish within $XFER_SECS s" ok=0
        else
            wait "$pid" || rc=$?
            if ((rc != 0)); then
                BT_WHY="$client exited with status $rc" ok=0
            else
                cmp "$SRC" "$dir/data.bin" || fail "$client: downloaded file differs from the original"
            fi
        fi
        rm -rf -- "$dir"
    fi
    for name in "${names[@]}"; do stop "$name"; done
    ((ok))
}

bench_peers() {
    say "7. 1 -> 1 and $BT_SEEDERS -> 1 with aria2c and rqbit through a local opentracker (512 KiB pieces)"
    local client n k a b why times p2p3=()
    BT_WHY=""
    for ((k = 1; k <= RUNS; k++)); do
        p2p_run "$BT_SEEDERS" 1 "$XFER_SECS"
        p2p3+=("$RUN_SECS")
        log "   p2pshare $BT_SEEDERS -> 1, run $k: $(mib_s "$SIZE" "$RUN_SECS") MiB/s"
    done
    bt_setup || true
    for client in aria2c rqbit; do
        why=$BT_WHY
        [[ -z $why ]] && ! command -v "$client" >/dev/null && why="$client is not installed"
        for n in 1 "$BT_SEEDERS"; do
            if ((n == 1)); then a=$(mib_s "$SIZE" "$P2P_1TO1"); else a=$(mib_s "$SIZE" "$(median "${p2p3[@]}")"); fi
            times=()
            for ((k = 1; k <= RUNS && ${#why} == 0; k++)); do
                if bt_run "$client" "$n"; then
                    times+=("$RUN_SECS")
                    log "   $client $n -> 1, run $k: $(mib_s "$SIZE" "$RUN_SECS") MiB/s"
                else
                    why=$BT_WHY
                fi
            done
            if [[ -n $why ]]; then
                skip_row "7. $n -> 1 vs $client, MiB/s" "$why" "$([[ $client/$n == rqbit/1 ]] && echo '>= 4' || echo -)"
                continue
            fi
            b=$(mib_s "$SIZE" "$(median "${times[@]}")")
            if [[ $client/$n == rqbit/1 ]]; then
                row "7. $n -> 1 vs $client, MiB/s" "$a" "$b ($client)" "$(calc "$a / $b")" ">= 4" "$(ge "$a / $b" 4)"
            else
                row "7. $n -> 1 vs $client, MiB/s" "$a" "$b ($client)" "$(calc "$a / $b")" "-" -
            fi
        done
    done
    for ((k = 0; k < BT_SEEDERS; k++)); do
        [[ -f $WORK/bt/seed$k/data.bin ]] || continue
        cmp "$SRC" "$WORK/bt/seed$k/data.bin" || fail "a BitTorrent seeder changed its copy of the file"
    done
    return 0
}

# ------------------------------------------------------------ flash crowd ----
# One seeder whose upload is capped at R and N downloaders started together,
# each of which keeps serving until the last one is done. The floor is S/R,
# one copy of the file through the seeder's uplink; the seeder's uploaded
# bytes over S say how much it sent more than once.

HELD_FDS=()

# held_input NAME LINE: a fifo $WORK/NAME.in holding LINE, which this shell
# keeps open for writing: its reader gets LINE and then no end of input, so a
# peer reading it stays up (and serves) until it is stopped.
held_input() {
    local fd
    mkfifo "$WORK/$1.in"
    exec {fd}<>"$WORK/$1.in"
    if [[ -n $2 ]]; then printf '%s\n' "$2" >&"$fd"; fi
    HELD_FDS+=("$fd")
}

# release_inputs: closes every held_input fifo.
release_inputs() {
    local fd
    for fd in "${HELD_FDS[@]}"; do exec {fd}>&-; done
    HELD_FDS=()
}

# stop_all NAME...: stops them together (TERM to all first, so that their
# goodbyes to the tracker overlap).
stop_all() {
    local name
    for name in "$@"; do kill -TERM "$(pid_of "$name")" 2>/dev/null || true; done
    for name in "$@"; do stop "$name"; done
}

# sleep_until T: sleeps until $EPOCHREALTIME reaches T (an awk expression).
sleep_until() {
    local d
    d=$(calc "$1 - $(now)" 3)
    if awk "BEGIN { exit !($d > 0) }"; then sleep "$d"; fi
}

# busy_now: the machine's busy and total jiffies so far (/proc/stat).
busy_now() {
    local a b c d e f g h
    read -r _ a b c d e f g h _ </proc/stat
    printf '%s %s\n' $((a + b + c + f + g + h)) $((a + b + c + d + e + f + g + h))
}

# cpu_of NAME...: CPU seconds the processes started as NAMEs used so far
# (utime + stime of /proc/PID/stat, every thread).
cpu_of() {
    local name f ticks=0
    for name in "$@"; do
        read -r -a f <"/proc/$(pid_of "$name")/stat" || continue
        ticks=$((ticks + f[13] + f[14]))
    done
    calc "$ticks / $(getconf CLK_TCK)" 1
}

# node N: sets NODE, the command prefix that runs a program on node N, and
# ADDR, its address. On loopback that is no prefix and 127.0.0.1; in netns
# mode (NETNS_ON=1) node N is namespace $NS-nN at 10.77.0.(N+1). Node 0 is
# the tracker, 1 the seeder, 2 and up the downloaders.
NETNS_ON=0
node() {
    if ((NETNS_ON)); then
        NODE=(ip netns exec "$NS-n$1") ADDR=10.77.0.$(($1 + 1))
    else
        NODE=() ADDR=127.0.0.1
    fi
}

# status_of N URL FILTER: jq FILTER applied to URL's /api/status (URL from a
# `Status page on URL` line, less the peer's `?token=...`), fetched on node N.
status_of() {
    node "$1"
    "${NODE[@]}" curl -sf --max-time 5 "${2}api/status" | jq -r "$3"
}

# kill_at NAME N BYTES: once the download of NAME (a peer on node N started
# with --http 0) has BYTES verified, SIGKILLs it; sets KILLED_AT (its bytes
# then).
kill_at() {
    local name=$1 n=$2 url pid got=0 deadline=$((SECONDS + CROWD_SECS))
    wait_line "$name" 'Status page on http://[^/]+/' 10
    url=${LINE#Status page on } url=${url%%\?*}
    while ((got < $3)); do
        ((SECONDS < deadline)) || fail "$name did not get $3 bytes within $CROWD_SECS s"
        sleep 0.05
        got=$(status_of "$n" "$url" '[.downloads[].done_bytes] | max // 0') || got=0
    done
    ((got < SIZE)) || fail "$name finished before it could be killed"
    pid=$(pid_of "$name")
    disown "$pid" # or bash reports the killed job on stderr
    kill -KILL "$pid"
    KILLED_AT=$got
}

# crowd_run N LATE KILL [SEEDER_OPTION...]: a fresh tracker, one seeder of
# $SRC, a file or a folder (with SEEDER_OPTIONs and --http 0), and N
# downloaders, each in an empty directory; the last LATE of them start CROWD_LATE_SECS after the others.
# With CROWD_STAGGER=1 the downloaders start one after another, each once
# the one before printed its listening line, and `download` is then typed
# into all of them at once (the first start of the clock).
# With KILL=1 the first is SIGKILLed once it has KILL_AT bytes. Every other
# downloader's copy is checked with `same`. Sets RUN_SECS (first start to the
# last survivor's `Successfully downloaded` line) and RUN_UPLOADED (the
# seeder's uploaded bytes then). Stops everything. Also sets RUN_LOAD (the
# 1-minute load average at the start), RUN_BUSY (how busy the machine's
# cores were from the first start to the last finish, %) and RUN_CPU (CPU
# seconds the tracker, seeder and downloaders used until the last finish):
# whether a slow run was short of CPU.
crowd_run() {
    local n=$1 late=$2 kill=$3 i t0 t1=0 taddr seed_url dls=() extra name=${SRC##*/} busy0 busy1
    shift 3
    read -r RUN_LOAD _ </proc/loadavg
    SEQ=$((SEQ + 1))
    local run=c$SEQ
    node 0
    taddr=$ADDR
    start "$run-tracker" "$WORK" "" "${NODE[@]}" "$TRACKER" --bind "$ADDR" 0
    wait_line "$run-tracker" 'Tracker running on port [0-9]+\.' 10
    TPORT=$(port_of "$LINE")
    node 1
    start "$run-seed" "$WORK/src" "" "${NODE[@]}" "$PEER" --bind "$ADDR" --http 0 --serve "$@" \
        --share "$SRC" "$taddr" "$TPORT" 0
    wait_line "$run-seed" 'Status page on http://[^/]+/' 10
    seed_url=${LINE#Status page on } seed_url=${seed_url%%\?*}
    wait_line "$run-seed" 'Successfully registered (file|folder): ' 300
    local stagger=${CROWD_STAGGER:-0} line="download $name"
    if ((stagger)); then line=''; fi
    for ((i = 0; i < n; i++)); do
        mkdir "$WORK/$run-dl$i"
        held_input "$run-dl$i" "$line"
        dls+=("$run-dl$i")
    done
    t0=$(now)
    busy0=$(busy_now)
    for ((i = 0; i < n; i++)); do
        if ((late > 0 && i == n - late)); then sleep_until "$t0 + $CROWD_LATE_SECS"; fi
        extra=()
        if ((kill && i == 0)); then extra=(--http 0); fi
        node $((i + 2))
        start "$run-dl$i" "$WORK/$run-dl$i" "$WORK/$run-dl$i.in" "${NODE[@]}" "$PEER" --bind "$ADDR" \
            "${extra[@]}" "$taddr" "$TPORT" 0
        if ((stagger)); then wait_line "$run-dl$i" 'Peer listening on ' 10; fi
    done
    if ((stagger)); then
        t0=$(now)
        busy0=$(busy_now)
        for ((i = 0; i < n; i++)); do printf '%s\n' "download $name" >&"${HELD_FDS[i]}"; done
    fi
    if ((kill)); then kill_at "$run-dl0" 2 "$KILL_AT"; fi
    for ((i = kill; i < n; i++)); do
        wait_line "$run-dl$i" "Successfully downloaded: ${name//./\\.}\$" "$CROWD_SECS"
        t1=$(max "$t1" "$LINE_TS")
    done
    busy1=$(busy_now)
    RUN_BUSY=$(awk -v a="$busy0" -v b="$busy1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')
    RUN_CPU=$(cpu_of "$run-tracker" "$run-seed" "${dls[@]:kill}")
    RUN_SECS=$(calc "$t1 - $t0" 4)
    RUN_UPLOADED=$(status_of 1 "$seed_url" '.shared[0].uploaded') || RUN_UPLOADED=""
    [[ $RUN_UPLOADED =~ ^[0-9]+$ ]] || fail "the seeder's /api/status gave no uploaded bytes"
    stop_all "${dls[@]}"
    release_inputs
    for ((i = kill; i < n; i++)); do
        same "$SRC" "$WORK/$run-dl$i/$name" || fail "$run-dl$i: downloaded $name differs from the original"
    done
    for ((i = 0; i < n; i++)); do rm -rf -- "$WORK/$run-dl$i" "$WORK/$run-dl$i.in"; done
    stop "$run-seed"
    stop "$run-tracker"
}

# crowd_log N K: the per-run line of crowd_run's figures (lab_crowd's,
# which measures no CPU: RUN_BUSY "-").
crowd_log() {
    local how="load $RUN_LOAD at the start"
    [[ $RUN_BUSY == - ]] ||
        how+=", cores $RUN_BUSY% busy until the last finish, its peers and tracker $RUN_CPU CPU s by then"
    log "   N=$1, run $2: slowest $(calc "$RUN_SECS" 2) s ($(calc "$RUN_SECS / $FLOOR_SECS")x the floor)," \
        "seeder uploaded $(calc "$RUN_UPLOADED / $SIZE")x S; $how"
}

# crowd_rows NAME FLOOR SECS UPLOADED FINISH_TARGET [FINISH]: the rows of a
# crowd case, from the medians SECS and UPLOADED (bytes) and the floor FLOOR
# (s); FINISH names the time [slowest finish]. A FINISH_TARGET of "all
# intact" is met once crowd_run returned; otherwise it is a bound on
# SECS / FLOOR ("<= 1.25"), and the upload must be <= 1.3 S.
crowd_rows() {
    local name=$1 floor=$2 secs=$3 up=$4 target=$5 finish=${6:-slowest finish} r u ok upt=- upok=-
    r=$(calc "$secs / $floor") u=$(calc "$up / $SIZE")
    if [[ $target == "all intact" ]]; then
        ok=1
    else
        ok=$(ge "${target#<= }" "$r") upt="<= 1.3" upok=$(ge 1.3 "$u")
    fi
    row "$name, $finish, s" "$(calc "$secs" 1)" "$(calc "$floor" 1) (floor S/R)" "$r" "$target" "$ok"
    row "$name, seeder upload, MiB" "$(calc "$up / 1048576" 1)" "$SIZE_MIB (S)" "$u" "$upt" "$upok"
}

declare -A CROWD_RATIO CROWD_UP # p2pshare's flash crowd medians by N, for 8's comparisons

bench_crowd() {
    say "8. flash crowd: 1 seeder --max-upload $CROWD_RATE, N downloaders at once (floor S/R = $(calc "$FLOOR_SECS" 1) s)"
    local n k secs up s u
    for n in 6 12; do
        secs=() up=()
        for ((k = 1; k <= RUNS; k++)); do
            crowd_run "$n" 0 0 --max-upload "$CROWD_RATE"
            secs+=("$RUN_SECS") up+=("$RUN_UPLOADED")
            crowd_log "$n" "$k"
        done
        s=$(median "${secs[@]}") u=$(median "${up[@]}")
        CROWD_RATIO[$n]=$(calc "$s / $FLOOR_SECS") CROWD_UP[$n]=$(calc "$u / $SIZE")
        crowd_rows "8. flash crowd N=$n" "$FLOOR_SECS" "$s" "$u" "<= 1.25"
    done
}

bench_late() {
    local half=3
    say "9. late arrival: $half downloaders, then $half more $CROWD_LATE_SECS s later (1 seeder --max-upload $CROWD_RATE)"
    local k secs=() up=()
    for ((k = 1; k <= RUNS; k++)); do
        crowd_run $((2 * half)) "$half" 0 --max-upload "$CROWD_RATE"
        secs+=("$RUN_SECS") up+=("$RUN_UPLOADED")
        crowd_log $((2 * half)) "$k"
    done
    crowd_rows "9. late arrival N=$half+$half (+$CROWD_LATE_SECS s)" "$FLOOR_SECS" \
        "$(median "${secs[@]}")" "$(median "${up[@]}")" "all intact" "slowest finish from the first start"
}

bench_killed() {
    local n=6
    say "10. killed downloader: N=$n, one SIGKILLed once it has $((KILL_AT >> 20)) MiB (1 seeder --max-upload $CROWD_RATE)"
    local k secs=() up=()
    for ((k = 1; k <= RUNS; k++)); do
        crowd_run "$n" 0 1 --max-upload "$CROWD_RATE"
        secs+=("$RUN_SECS") up+=("$RUN_UPLOADED")
        crowd_log "$n" "$k"
        log "   (the victim was killed with $(calc "$KILLED_AT / 1048576" 1) MiB)"
    done
    crowd_rows "10. killed downloader N=$n (1 SIGKILLed)" "$FLOOR_SECS" \
        "$(median "${secs[@]}")" "$(median "${up[@]}")" "all intact" "slowest survivor"
}

# bench_stagger: the flash crowd as people make one (issue 22): N REPL
# peers started one after another, then `download` typed into all at once;
# N = 6, 12 and 24, the worst run of RUNS reported, since a stall shows in
# some runs only (12 downloaders took 3.6-4.8x the floor in 5 of 9 runs
# before the fix, while the median could look fine).
bench_stagger() {
    say "12. staggered crowd: N REPL peers started one after another, then download typed into all (1 seeder --max-upload $CROWD_RATE)"
    local n k secs up worst
    for n in 6 12 24; do
        secs=() up=()
        for ((k = 1; k <= RUNS; k++)); do
            CROWD_STAGGER=1 crowd_run "$n" 0 0 --max-upload "$CROWD_RATE"
            secs+=("$RUN_SECS") up+=("$RUN_UPLOADED")
            crowd_log "$n" "$k"
        done
        worst=$(max "${secs[@]}")
        crowd_rows "12. staggered crowd N=$n (worst of $RUNS)" "$FLOOR_SECS" "$worst" "$(max "${up[@]}")" \
            "<= 1.25" "slowest finish, worst run"
    done
}

# ------------------------------------------------------ network namespaces --
# --netns: every node in a network namespace of its own, joined by a veth
# pair to a bridge that lives in one more namespace, so nothing is added to
# the machine's own network namespace. The seeder's uplink (its eth0's
# egress) is shaped with tbf instead of --max-upload.

NS=p2pbench$$
NETNS_MADE=() # namespaces created, in order
NETNS_WHY=""

# ns_do CMD...: runs CMD; on failure sets NETNS_WHY and returns 1.
ns_do() {
    "$@" 2>>"$WORK/netns.err" || { NETNS_WHY="\`$*\` failed: $(tail -n1 "$WORK/netns.err")"; return 1; }
}

# netns_up NODES: namespaces $NS-sw (the bridge br0) and $NS-n0 ... n(NODES-1),
# node i at 10.77.0.(i+1)/24 on its eth0, and the tbf on the seeder's eth0.
# Every node knows every other's MAC (a permanent neighbour entry), so no
# ARP: the kernel's neighbour table is one for all namespaces, and its
# gc_thresh3 (1024 entries) is less than 48 nodes x 47 neighbours; past it
# `neighbor table overflow!` drops the packet (a SYN, or a chunk's
# segment): /proc/net/stat/arp_cache counted 84,603 `table_fulls` after
# three runs of N = 48, and none since. Permanent entries do not count
# against it.
# Returns 1 with NETNS_WHY set on failure (the trap removes what was made).
netns_up() {
    local nodes=$1 i j ns sw=$NS-sw macs=()
    ((EUID == 0)) || { NETNS_WHY="needs root (ip netns, tc)"; return 1; }
    ns_do ip netns add "$sw" || return 1
    NETNS_MADE+=("$sw")
    ns_do ip -n "$sw" link add br0 type bridge || return 1
    ns_do ip -n "$sw" link set br0 up || return 1
    for ((i = 0; i < nodes; i++)); do
        ns=$NS-n$i
        ns_do ip netns add "$ns" || return 1
        NETNS_MADE+=("$ns")
        ns_do ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
        ns_do ip -n "$sw" link set "p$i" master br0 up || return 1
        ns_do ip -n "$ns" link set lo up || return 1
        ns_do ip -n "$ns" addr add "10.77.0.$((i + 1))/24" dev eth0 || return 1
        printf -v 'macs[i]' '02:77:00:00:%02x:%02x' $((i >> 8)) $((i & 255))
        ns_do ip -n "$ns" link set eth0 address "${macs[i]}" up || return 1
    done
    for ((i = 0; i < nodes; i++)); do
        for ((j = 0; j < nodes; j++)); do
            ((i == j)) || echo "neigh replace 10.77.0.$((j + 1)) lladdr ${macs[j]} dev eth0 nud permanent"
        done >"$WORK/neigh"
        ns_do ip -n "$NS-n$i" -batch "$WORK/neigh" || return 1
    done
    # burst: 8 ms at the rate (at least a 250 Hz tick's worth); latency bounds
    # the queue.
    ns_do ip netns exec "$NS-n1" tc qdisc add dev eth0 root tbf rate "$NETNS_RATE" \
        burst $((NETNS_RATE_BYTES / 125)) latency 50ms || return 1
}

# netns_down: removes every namespace netns_up made (their veths and the
# bridge go with them); safe to call twice.
netns_down() {
    local i
    for ((i = ${#NETNS_MADE[@]} - 1; i >= 0; i--)); do
        ip netns del "${NETNS_MADE[i]}" 2>/dev/null || log "could not remove netns ${NETNS_MADE[i]}"
    done
    NETNS_MADE=()
}

bench_netns() {
    local n k secs up floor
    [[ $NETNS_RATE =~ ^([0-9]+)([kmg]?)bit$ ]] || fail "BENCH_NETNS_RATE must look like 64mbit, not $NETNS_RATE"
    case ${BASH_REMATCH[2]} in
    k) NETNS_RATE_BYTES=$((BASH_REMATCH[1] * 1000 / 8)) ;;
    m) NETNS_RATE_BYTES=$((BASH_REMATCH[1] * 1000000 / 8)) ;;
    g) NETNS_RATE_BYTES=$((BASH_REMATCH[1] * 1000000000 / 8)) ;;
    *) NETNS_RATE_BYTES=$((BASH_REMATCH[1] / 8)) ;;
    esac
    floor=$(calc "$SIZE / $NETNS_RATE_BYTES" 4)
    AT_EXIT+=(netns_down)
    for n in ${BENCH_NETNS_N:-6}; do
        say "11. netns flash crowd: N=$n, each peer in its own namespace, seeder uplink tbf $NETNS_RATE (floor $(calc "$floor" 1) s)"
        local name="11. netns flash crowd N=$n (tbf $NETNS_RATE)"
        if ! netns_up $((n + 2)); then
            skip_row "$name, slowest finish, s" "$NETNS_WHY" "<= 1.25"
            netns_down
            return 0
        fi
        NETNS_ON=1
        secs=() up=()
        for ((k = 1; k <= RUNS; k++)); do
            crowd_run "$n" 0 0
            secs+=("$RUN_SECS") up+=("$RUN_UPLOADED")
            log "   N=$n, run $k: slowest $(calc "$RUN_SECS" 2) s ($(calc "$RUN_SECS / $floor")x the floor)," \
                "seeder uploaded $(calc "$RUN_UPLOADED / $SIZE")x S; load $RUN_LOAD at the start," \
                "cores $RUN_BUSY% busy until the last finish, its peers and tracker $RUN_CPU CPU s by then"
        done
        NETNS_ON=0
        log "   seeder's qdisc: $(ip netns exec "$NS-n1" tc -s qdisc show dev eth0 | tr -s ' \n' ' ')"
        netns_down
        crowd_rows "$name" "$floor" "$(median "${secs[@]}")" "$(median "${up[@]}")" "<= 1.25"
        # Every run, not only the median, is to meet the target.
        crowd_rows "$name, worst of $RUNS" "$floor" "$(max "${secs[@]}")" "$(max "${up[@]}")" "<= 1.25"
    done
}

# ------------------------------------------------------------- the NAT lab --
# 15 (--netns): the lab of tests/e2e/nat_lab.rs, in bash. $NS-inet is the
# outside network (the bridge br0, the tracker at LAB_IP with --relay);
# $NS-pub a public host on it (LAB_PUB); each NATed host $NS-hI sits behind
# its own router $NS-rI (wan 100.64.0.(100+I) on the bridge, lan 10.0.I.1/24, the
# host at 10.0.I.2): nft masquerade (`fully-random` for a symmetric NAT,
# whose ports no punching can guess), and nothing unsolicited let in from
# outside.

LAB_IP=100.64.0.10
LAB_PUB=100.64.0.20
LAB_SMALL_TRIES=10
LAB_TRY_SECS=30 # one `peer get` of the small file, at most

# lab_sh SHORT SCRIPT: runs SCRIPT (sh -ec) in namespace $NS-SHORT.
lab_sh() { ns_do ip netns exec "$NS-$1" sh -ec "$2"; }

# lab_ns SHORT: namespace $NS-SHORT, its loopback up.
lab_ns() {
    ns_do ip netns add "$NS-$1" || return 1
    NETNS_MADE+=("$NS-$1")
    ns_do ip -n "$NS-$1" link set lo up
}

# lab_link SHORT IF PORT: a veth from SHORT's IF to the outside bridge (PORT).
lab_link() {
    ns_do ip -n "$NS-$1" link add "$2" type veth peer name "$3" netns "$NS-inet" || return 1
    lab_sh inet "ip link set $3 master br0 up"
}

# lab_up: the outside network and the public host.
lab_up() {
    ((EUID == 0)) || { NETNS_WHY="needs root (ip netns, nft)"; return 1; }
    command -v nft >/dev/null || { NETNS_WHY="needs nft (Debian: nftables)"; return 1; }
    lab_ns inet || return 1
    lab_sh inet "ip link add br0 type bridge; ip addr add $LAB_IP/24 dev br0; ip link set br0 up" || return 1
    lab_ns pub || return 1
    lab_link pub eth0 ppub || return 1
    lab_sh pub "ip addr add $LAB_PUB/24 dev eth0; ip link set eth0 up"
}

# lab_nat I KIND: host hI behind router rI; KIND sym (masquerade
# fully-random) or drop (masquerade): both drop unsolicited inbound.
lab_nat() {
    local i=$1 random="" only_replies=$'iifname "wan" ct state established,related accept\n    iifname "wan" drop'
    [[ $2 == sym ]] && random=" fully-random"
    # A resetting NAT answers an unsolicited TCP segment with a reset.
    [[ $2 == reset ]] && only_replies=$'iifname "wan" ct state established,related accept\n    iifname "wan" meta l4proto tcp reject with tcp reset\n    iifname "wan" drop'
    lab_ns "r$i" || return 1
    lab_ns "h$i" || return 1
    lab_link "r$i" wan "p$i" || return 1
    ns_do ip -n "$NS-r$i" link add lan type veth peer name eth0 netns "$NS-h$i" || return 1
    lab_sh "r$i" "ip addr add 100.64.0.$((100 + i))/24 dev wan; ip link set wan up; ip route add 11.99.0.0/24 dev wan
        ip addr add 10.0.$i.1/24 dev lan; ip link set lan up; echo 1 > /proc/sys/net/ipv4/ip_forward" || return 1
    lab_sh "h$i" "ip addr add 10.0.$i.2/24 dev eth0; ip link set eth0 up; ip route add default via 10.0.$i.1" || return 1
    # One statement a line: nft's parser wants a newline after `fully-random`.
    cat >"$WORK/nft-r$i" <<-NFT
	table ip nat {
	  chain post {
	    type nat hook postrouting priority 100
	    oifname "wan" masquerade$random
	  }
	}
	table inet filter {
	  chain input {
	    type filter hook input priority 0
	    $only_replies
	  }
	  chain forward {
	    type filter hook forward priority 0
	    $only_replies
	  }
	}
	NFT
    ns_do ip netns exec "$NS-r$i" nft -f "$WORK/nft-r$i"
}

# lab_mapped: host mh behind router mr, whose miniupnpd (UPnP IGD and
# NAT-PMP, secure mode, the LAN only) maps ports on request and whose NAT
# drops every other unsolicited packet. miniupnpd refuses a private
# external address, so mr's outside interface alone has a public-looking
# one, 11.99.0.1, on the outside bridge, where the tracker's namespace also
# answers on 11.99.0.10; the routers reach it on-link, and nothing in the
# lab has a route out of it. miniupnpd runs as a process of this script
# (stopped at the end like the peers).
lab_mapped() {
    command -v miniupnpd >/dev/null || { NETNS_WHY="needs miniupnpd (Debian: miniupnpd-nftables)"; return 1; }
    lab_ns mr && lab_ns mh || return 1
    lab_link mr wan pmr || return 1
    ns_do ip -n "$NS-mr" link add lan type veth peer name eth0 netns "$NS-mh" || return 1
    lab_sh inet "ip addr add 11.99.0.10/24 dev br0" || return 1
    lab_sh mr "ip addr add 11.99.0.1/24 dev wan; ip link set wan up; ip route add 100.64.0.0/24 dev wan
        ip addr add 10.0.20.1/24 dev lan; ip link set lan up; echo 1 > /proc/sys/net/ipv4/ip_forward" || return 1
    lab_sh mh "ip addr add 10.0.20.2/24 dev eth0; ip link set eth0 up; ip route add default via 10.0.20.1" || return 1
    # The router's rules and miniupnpd's settings are the portmap lab's.
    ns_do ip netns exec "$NS-mr" nft -f "$ROOT/tests/e2e/portmap/router.nft" || return 1
    { cat "$ROOT/tests/e2e/portmap/miniupnpd.conf"; printf 'enable_upnp=yes\nenable_natpmp=yes\n'; } >"$WORK/miniupnpd.conf"
    start miniupnpd "$WORK" "" ip netns exec "$NS-mr" miniupnpd -d -f "$WORK/miniupnpd.conf" -P "$WORK/miniupnpd.pid"
    local deadline=$((SECONDS + 10))
    until grep -qs "Listening for NAT-PMP" "$WORK/miniupnpd.out" "$WORK/miniupnpd.err"; do
        ((SECONDS < deadline)) || { NETNS_WHY="miniupnpd did not start: $(tail -n1 "$WORK/miniupnpd.err")"; return 1; }
        sleep 0.1
    done
}

# lab_tracker: a fresh tracker with --relay on the outside network; sets
# TPORT, TNAME, TPAGE (its status page) and TPID. Waits (at most 20 s each)
# until every host of LAB_HOSTS reaches it (the first NAT rules may take a
# moment, while the kernel loads their modules).
lab_tracker() {
    SEQ=$((SEQ + 1))
    TNAME=lab-tracker-$SEQ
    start "$TNAME" "$WORK" "" ip netns exec "$NS-inet" "$TRACKER" --bind "$LAB_IP" --relay --http 0 0
    wait_line "$TNAME" 'Tracker running on port [0-9]+\.' 10
    TPORT=$(port_of "$LINE")
    wait_line "$TNAME" 'Status page on http://[^/]+/' 10
    TPAGE=${LINE#Status page on } TPAGE=${TPAGE%%\?*}
    TPID=$(pid_of "$TNAME")
    local h deadline
    for h in "${LAB_HOSTS[@]}"; do
        deadline=$((SECONDS + 20))
        until ip netns exec "$NS-$h" timeout 1 bash -c "exec 3<>/dev/tcp/$LAB_IP/$TPORT" 2>/dev/null; do
            ((SECONDS < deadline)) || fail "$h cannot reach the tracker at $LAB_IP:$TPORT"
        done
    done
}

# lab_status SHORT URL FILTER: jq FILTER on URL's /api/status, from SHORT.
lab_status() { ip netns exec "$NS-$1" curl -sf --max-time 5 "${2}api/status" | jq -r "$3"; }

relay_bytes() { lab_status inet "$TPAGE" '.nat.relay.bytes // 0'; }

# lab_seed NAME SHORT FILE [OPTION...]: a --serve peer sharing FILE in
# namespace SHORT, ready (registered, and the tracker's answer on whether
# it is reachable in; a NATed one holding its control connection); sets
# SEED_PAGE.
lab_seed() {
    local name=$1 short=$2 file=$3 filter='.reach.reachable'
    shift 3
    start "$name" "$WORK/src" "" ip netns exec "$NS-$short" "$PEER" --http 0 --serve "$@" \
        --share "$file" "$LAB_IP" "$TPORT" 0
    wait_line "$name" 'Status page on http://[^/]+/' 10
    SEED_PAGE=${LINE#Status page on } SEED_PAGE=${SEED_PAGE%%\?*}
    wait_line "$name" 'Successfully registered file: ' 60
    [[ $short == h* ]] && filter='.reach.control'
    local deadline=$((SECONDS + 30))
    until [[ $(lab_status "$short" "$SEED_PAGE" "$filter" 2>/dev/null) == true ]]; do
        ((SECONDS < deadline)) || fail "$name: no $filter == true within 30 s"
        sleep 0.1
    done
}

# lab_xfer SEED DL [perf]: a fresh tracker, a seeder of $SRC in SEED and a
# REPL downloader in DL, started and listening before `download` is typed
# (the clock starts then). Sets RUN_SECS (until `Successfully downloaded`),
# RUN_FIRST (s until its status page first showed verified bytes, polled:
# about 20 ms coarse, or "-" if it was done by then), RUN_REST (s from then
# to the end) and RUN_REST_BYTES, RUN_PATH (the downloader's paths),
# RUN_RELAYED (relay bytes) and RUN_CPU (the tracker's CPU seconds during
# the download). Checks the file. With "perf", records the tracker with
# `perf record -g` during the download into $WORK/perf.txt.
lab_xfer() {
    local seed=$1 dl=$2 t0 cpu0 bytes0 fd dl_page got=0 perf_pid=""
    SEQ=$((SEQ + 1))
    local run=x$SEQ
    lab_tracker
    local opts=()
    [[ $seed == pub ]] && opts=(--bind "$LAB_PUB")
    lab_seed "$run-seed" "$seed" "$SRC" "${opts[@]}"
    mkdir "$WORK/$run-dl"
    held_input "$run-dl" ""
    fd=${HELD_FDS[-1]}
    start "$run-dl" "$WORK/$run-dl" "$WORK/$run-dl.in" ip netns exec "$NS-$dl" "$PEER" --http 0 "$LAB_IP" "$TPORT" 0
    wait_line "$run-dl" 'Status page on http://[^/]+/' 10
    dl_page=${LINE#Status page on } dl_page=${dl_page%%\?*}
    wait_line "$run-dl" 'Peer listening on ' 10
    if [[ ${3:-} == perf ]]; then
        perf record -q -g -p "$TPID" -o "$WORK/perf.data" 2>"$WORK/perf.err" &
        perf_pid=$!
        sleep 0.5 # perf attaches
    fi
    cpu0=$(cpu_secs "$TPID") bytes0=$(relay_bytes)
    t0=$(now)
    printf 'download data.bin\n' >&"$fd"
    local first="" deadline=$((SECONDS + XFER_SECS))
    while ((got == 0)) && ! grep -q 'Successfully downloaded: data\.bin$' "$WORK/$run-dl.out"; do
        ((SECONDS < deadline)) || fail "$run-dl: no verified byte within $XFER_SECS s"
        got=$(lab_status "$dl" "$dl_page" '[.downloads[].done_bytes] | max // 0') || got=0
        ((got > 0)) && first=$(now)
    done
    wait_line "$run-dl" 'Successfully downloaded: data\.bin$' "$XFER_SECS"
    RUN_SECS=$(calc "$LINE_TS - $t0" 4)
    RUN_FIRST=- RUN_REST=- RUN_REST_BYTES=0
    if [[ -n $first ]] && ((got < SIZE)); then
        RUN_FIRST=$(calc "$first - $t0" 4) RUN_REST=$(calc "$LINE_TS - $first" 4) RUN_REST_BYTES=$((SIZE - got))
    fi
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" || true
        perf report -i "$WORK/perf.data" --stdio 2>/dev/null | head -60 >"$WORK/perf.txt" || true
    fi
    RUN_CPU=$(calc "$(cpu_secs "$TPID") - $cpu0")
    RUN_RELAYED=$(($(relay_bytes) - bytes0))
    RUN_PATH=$(lab_status "$dl" "$dl_page" '[.downloads[].peers[].path] | unique | join(",")') || RUN_PATH="?"
    stop "$run-dl"
    release_inputs
    cmp "$SRC" "$WORK/$run-dl/data.bin" || fail "$run-dl: downloaded file differs from the original"
    rm -rf -- "$WORK/$run-dl" "$WORK/$run-dl.in"
    stop "$run-seed"
    stop "$TNAME"
}

# lab_tries NAME SEED DL: a fresh tracker, `peer send --tracker` of a small
# file in SEED, then LAB_SMALL_TRIES fresh `peer get TICKET` in DL, each
# at most LAB_TRY_SECS; a row of the successes and the median seconds of
# a successful try (start of `peer get` to its exit: the whole file), with
# the tracker's relay bytes telling which path they took.
lab_tries() {
    local name=$1 seed=$2 dl=$3 k t0 ok=0 secs=() ticket bytes0 relayed out page filter='.reach.reachable'
    SEQ=$((SEQ + 1))
    local run=t$SEQ
    lab_tracker
    bytes0=$(relay_bytes)
    start "$run-send" "$WORK/src" "" ip netns exec "$NS-$seed" "$PEER" send --http 0 \
        --tracker "$LAB_IP:$TPORT" "$LAB_SMALL"
    wait_line "$run-send" 'Status page on http://[^/]+/' 10
    page=${LINE#Status page on } page=${page%%\?*}
    wait_line "$run-send" 'Ticket: ' 60
    ticket=${LINE#Ticket: }
    [[ $seed == h* ]] && filter='.reach.control'
    local deadline=$((SECONDS + 30))
    until [[ $(lab_status "$seed" "$page" "$filter" 2>/dev/null) == true ]]; do
        ((SECONDS < deadline)) || fail "$run-send: no $filter == true within 30 s"
        sleep 0.1
    done
    for ((k = 1; k <= LAB_SMALL_TRIES; k++)); do
        out=$WORK/$run-get$k.bin
        mkdir -p "$WORK/state/$run-get$k"
        t0=$(now)
        if XDG_STATE_HOME=$WORK/state/$run-get$k ip netns exec "$NS-$dl" timeout "$LAB_TRY_SECS" \
            "$PEER" get -v "$ticket" "$out" >"$WORK/$run-get$k.out" 2>&1 && cmp -s "$LAB_SMALL" "$out"; then
            ok=$((ok + 1)) secs+=("$(calc "$(now) - $t0" 4)")
            if awk "BEGIN { exit !(${secs[-1]} > 2) }"; then
                log "   $name, try $k took ${secs[-1]} s: $(grep -m4 -iE 'relay|direct|dial|connect' "$WORK/$run-get$k.out" | tr '\n' '|')"
            fi
        else
            log "   $name, try $k failed: $(tail -n1 "$WORK/$run-get$k.out")"
        fi
        rm -f -- "$out"
    done
    relayed=$(($(relay_bytes) - bytes0))
    log "   $name: relay then: $(lab_status inet "$TPAGE" '.nat.relay | "sessions \(.sessions), pending \(.pending), refused \(.refused)"')"
    stop "$run-send"
    stop "$TNAME"
    local med=-
    ((ok > 0)) && med=$(calc "$(median "${secs[@]}")" 3)
    log "   $name: $ok of $LAB_SMALL_TRIES, median $med s, relay bytes $relayed (times: ${secs[*]})"
    row "$name ($((LAB_SMALL_SIZE >> 10)) KiB, fresh peer get): successes of $LAB_SMALL_TRIES; median s to the whole file" \
        "$ok; $med s" "-" "relay $(calc "$relayed / 1048576" 1) MiB" "$LAB_SMALL_TRIES of $LAB_SMALL_TRIES" "$( ((ok == LAB_SMALL_TRIES)) && echo 1 || echo 0)"
}

# lab_crowd: the flash crowd of 8 in the lab: a fresh tracker, a seeder in
# h10 --max-upload CROWD_RATE, 6 downloaders in h11 ... h16 (all behind
# drop-NATs) started at once; sets RUN_SECS (first start to the last
# `Successfully downloaded`, or "-" if one had not finished after
# CROWD_SECS: the relay's per-peer session bound can starve one),
# RUN_DONE (how many finished), RUN_UPLOADED (the seeder's upload) and
# RUN_RELAYED (the tracker's relay bytes). Checks every finished file.
lab_crowd() {
    local n=6 i t0 t1=0 bytes0 dls=()
    read -r RUN_LOAD _ </proc/loadavg
    RUN_BUSY=- RUN_CPU=-
    SEQ=$((SEQ + 1))
    local run=lc$SEQ
    lab_tracker
    lab_seed "$run-seed" h10 "$SRC" --max-upload "$CROWD_RATE"
    local seed_page=$SEED_PAGE
    for ((i = 0; i < n; i++)); do
        mkdir "$WORK/$run-dl$i"
        held_input "$run-dl$i" 'download data.bin'
        dls+=("$run-dl$i")
    done
    bytes0=$(relay_bytes)
    t0=$(now)
    for ((i = 0; i < n; i++)); do
        start "$run-dl$i" "$WORK/$run-dl$i" "$WORK/$run-dl$i.in" ip netns exec "$NS-h$((11 + i))" \
            "$PEER" "$LAB_IP" "$TPORT" 0
    done
    local deadline=$((SECONDS + CROWD_SECS)) fin=()
    RUN_DONE=0
    while ((RUN_DONE < n && SECONDS < deadline)); do
        sleep 0.05
        for ((i = 0; i < n; i++)); do
            [[ -z ${fin[i]:-} ]] || continue
            LINE_TS=$(grep -s -m1 -E '^[0-9.]+ Successfully downloaded: data\.bin$' "$WORK/$run-dl$i.out") || continue
            fin[i]=${LINE_TS%% *} RUN_DONE=$((RUN_DONE + 1))
            t1=$(max "$t1" "${fin[i]}")
        done
    done
    RUN_SECS=-
    ((RUN_DONE == n)) && RUN_SECS=$(calc "$t1 - $t0" 4)
    RUN_RELAYED=$(($(relay_bytes) - bytes0))
    RUN_UPLOADED=$(lab_status h10 "$seed_page" '.shared[0].uploaded') || RUN_UPLOADED=""
    [[ $RUN_UPLOADED =~ ^[0-9]+$ ]] || fail "the seeder's /api/status gave no uploaded bytes"
    stop_all "${dls[@]}"
    release_inputs
    for ((i = 0; i < n; i++)); do
        if [[ -n ${fin[i]:-} ]]; then
            cmp "$SRC" "$WORK/$run-dl$i/data.bin" || fail "$run-dl$i: downloaded file differs from the original"
        fi
        rm -rf -- "$WORK/$run-dl$i" "$WORK/$run-dl$i.in"
    done
    stop "$run-seed"
    stop "$TNAME"
}

# lab_all: the outside network, the public host, h1 and h2 behind symmetric
# NATs, h3, h4 and h10 ... h16 behind drop-NATs, h5 and h6 behind NATs
# that answer with resets, mh behind a router that maps ports.
lab_all() {
    local i
    lab_up && lab_nat 1 sym && lab_nat 2 sym && lab_nat 5 reset && lab_nat 6 reset || return 1
    lab_mapped || return 1
    for i in 3 4 10 11 12 13 14 15 16; do lab_nat "$i" drop || return 1; done
}

bench_nat() {
    say "15. NAT lab: relayed vs direct ($SIZE_MIB MiB), success and time per path ($LAB_SMALL_TRIES tries), flash crowd behind NATs"
    local parts=" ${BENCH_NAT_PARTS:-xfer tries crowd} "
    AT_EXIT+=(netns_down)
    LAB_HOSTS=(pub h1 h2 h3 h4 h5 h6 h10 h11 h12 h13 h14 h15 h16 mh)
    if ! lab_all; then
        skip_row "15. NAT lab" "$NETNS_WHY" "-"
        netns_down
        return 0
    fi
    LAB_SMALL=$WORK/src/small.bin LAB_SMALL_SIZE=$((1 << 20))
    head -c "$LAB_SMALL_SIZE" /dev/urandom >"$LAB_SMALL"
    [[ $parts != *" xfer "* ]] || { nat_xfer && nat_xfer_shaped; }
    [[ $parts != *" tries "* ]] || nat_tries
    [[ $parts != *" crowd "* ]] || nat_crowd
    stop miniupnpd
    netns_down
}

# nat_xfer: 15's relayed against direct download, RUNS times each.
nat_xfer() {
    local k direct=() relayed=() cpu=0 rbytes=0
    local first=() rest=() perf=""
    for ((k = 1; k <= RUNS; k++)); do
        lab_xfer pub h1
        direct+=("$RUN_SECS")
        log "   run $k: direct (public -> symmetric NAT) $(mib_s "$SIZE" "$RUN_SECS") MiB/s, first byte at $RUN_FIRST s," \
            "path $RUN_PATH, relay bytes $RUN_RELAYED"
        ((k == RUNS)) && [[ -n ${BENCH_NAT_PERF:-} ]] && perf=perf
        lab_xfer h2 h1 $perf
        relayed+=("$RUN_SECS") first+=("$RUN_FIRST")
        [[ $RUN_REST == - ]] || rest+=("$(calc "$RUN_REST_BYTES / $RUN_REST" 0)")
        cpu=$(calc "$cpu + $RUN_CPU") rbytes=$((rbytes + RUN_RELAYED))
        log "   run $k: relayed (symmetric -> symmetric NAT) $(mib_s "$SIZE" "$RUN_SECS") MiB/s, first byte at $RUN_FIRST s," \
            "then $(mib_s "$RUN_REST_BYTES" "$RUN_REST") MiB/s, path $RUN_PATH, relay bytes $RUN_RELAYED, tracker CPU $RUN_CPU s"
    done
    [[ -n $perf ]] && log "$(printf '   perf (tracker, last relayed run):\n'; cat "$WORK/perf.txt")"
    local d r
    d=$(median "${direct[@]}") r=$(median "${relayed[@]}")
    row "15. NAT lab: relayed (sym -> sym) vs direct (public -> sym) download, MiB/s" "$(mib_s "$SIZE" "$r")" \
        "$(mib_s "$SIZE" "$d")" "$(calc "$d / $r")" ">= 0.8" "$(ge "$(calc "$d / $r")" 0.8)"
    if ((${#rest[@]} > 0)); then
        local st
        st=$(median "${rest[@]}")
        row "15. NAT lab: relayed from its first verified byte vs direct (whole), MiB/s" "$(calc "$st / 1048576" 1)" \
            "$(mib_s "$SIZE" "$d")" "$(calc "$st / ($SIZE / $d)")" "-" -
        row "15. NAT lab: relayed download, s to the first verified byte" "$(median "${first[@]}")" "-" "-" "-" -
    fi
    row "15. NAT lab: tracker CPU s per GiB relayed (both directions counted)" \
        "$(calc "$cpu * 1073741824 / $rbytes" 2)" "-" "-" "-" -
}

# nat_xfer_shaped: 15's relayed against direct download again with each
# sender's uplink a link of NAT_LINK (tbf on the public host's eth0 and on
# h2's router's wan), as on a real network, where a link, not this
# machine's two cores, sets the pace: unshaped, the relayed path (two
# more TCP ends in the tracker and a second NAT router, all on the same
# cores as both TLS ends) is bounded by CPU.
nat_xfer_shaped() {
    local k direct=() relayed=() d r link=${BENCH_NAT_LINK:-1gbit}
    ns_do ip netns exec "$NS-pub" tc qdisc add dev eth0 root tbf rate "$link" burst 1mb latency 50ms || return 0
    ns_do ip netns exec "$NS-r2" tc qdisc add dev wan root tbf rate "$link" burst 1mb latency 50ms || return 0
    for ((k = 1; k <= RUNS; k++)); do
        lab_xfer pub h1
        direct+=("$RUN_SECS")
        lab_xfer h2 h1
        relayed+=("$RUN_SECS")
        log "   run $k, uplinks $link: direct $(mib_s "$SIZE" "${direct[-1]}") MiB/s," \
            "relayed $(mib_s "$SIZE" "${relayed[-1]}") MiB/s (path $RUN_PATH, relay bytes $RUN_RELAYED)"
    done
    ip netns exec "$NS-pub" tc qdisc del dev eth0 root
    ip netns exec "$NS-r2" tc qdisc del dev wan root
    d=$(median "${direct[@]}") r=$(median "${relayed[@]}")
    row "15. NAT lab: relayed vs direct download, senders' uplinks $link, MiB/s" "$(mib_s "$SIZE" "$r")" \
        "$(mib_s "$SIZE" "$d")" "$(calc "$d / $r")" ">= 0.8" "$(ge "$(calc "$d / $r")" 0.8)"
}

# nat_tries: 15's fresh `peer get`s per path.
nat_tries() {
    lab_tries "15. NAT lab: public -> symmetric NAT" pub h1
    lab_tries "15. NAT lab: symmetric NAT -> symmetric NAT" h2 h1
    lab_tries "15. NAT lab: drop-NAT -> drop-NAT" h4 h3
    lab_tries "15. NAT lab: drop-NAT -> symmetric NAT" h3 h1
    lab_tries "15. NAT lab: resetting NAT -> resetting NAT" h6 h5
    lab_tries "15. NAT lab: miniupnpd router (mapped) -> drop-NAT" mh h3
    # The sender deleted its mapping when it left.
    local left
    left=$(ip netns exec "$NS-mr" nft list chain inet filter prerouting_miniupnpd | grep -c dnat || true)
    row "15. NAT lab: miniupnpd router, port forwards left after the sender exits" "$left" "0" "-" "0" \
        "$( ((left == 0)) && echo 1 || echo 0)"
}

# nat_crowd: 15's flash crowd behind drop-NATs, RUNS times.
nat_crowd() {
    local k secs=() up=() rel=()
    local stalled=0
    for ((k = 1; k <= RUNS; k++)); do
        lab_crowd
        up+=("$RUN_UPLOADED") rel+=("$RUN_RELAYED")
        if [[ $RUN_SECS == - ]]; then
            stalled=$((stalled + 1))
            log "   N=6, run $k: only $RUN_DONE of 6 finished within $CROWD_SECS s;" \
                "seeder uploaded $(calc "$RUN_UPLOADED / $SIZE")x S, relay bytes $(calc "$RUN_RELAYED / 1048576" 1) MiB"
        else
            secs+=("$RUN_SECS")
            crowd_log 6 "$k"
            log "   relay bytes $(calc "$RUN_RELAYED / 1048576" 1) MiB"
        fi
    done
    local name="15. NAT lab flash crowd N=6 (seeder and downloaders behind drop-NATs)"
    row "$name, runs with all 6 finished within $CROWD_SECS s" "$((RUNS - stalled)) of $RUNS" "-" "-" "$RUNS of $RUNS" \
        "$( ((stalled == 0)) && echo 1 || echo 0)"
    if ((${#secs[@]} > 0)); then
        crowd_rows "$name, of the finished runs" "$FLOOR_SECS" "$(median "${secs[@]}")" "$(median "${up[@]}")" "<= 1.25"
    fi
    local rm
    rm=$(median "${rel[@]}")
    row "15. NAT lab flash crowd N=6, relay bytes, MiB" "$(calc "$rm / 1048576" 1)" "0" "-" "0" \
        "$( ((rm == 0)) && echo 1 || echo 0)"
}

# ----------------------------------------------- flash crowd, BitTorrent ----

# bt_crowd_done CLIENT NAME: prints when downloader NAME completed (epoch
# seconds), or nothing yet. aria2c runs BT_HOOK on completion, which writes
# the time to $WORK/NAME.done; rqbit logs `torrent finished downloading`.
bt_crowd_done() {
    case $1 in
    aria2c) [[ -s $WORK/$2.done ]] && head -c 40 "$WORK/$2.done" | awk 'NR == 1 { print $1 }' ;;
    rqbit) grep -m1 -E 'torrent finished downloading' "$WORK/$2.out" | awk '{ print $1 }' ;;
    esac
    return 0
}

# bt_crowd_uploaded CLIENT PORT: the seeder's uploaded bytes, from its RPC
# (aria2c) or HTTP API (rqbit) on 127.0.0.1:PORT.
bt_crowd_uploaded() {
    case $1 in
    aria2c)
        curl -sf --max-time 5 -d '{"jsonrpc":"2.0","id":"b","method":"aria2.tellActive","params":[["uploadLength"]]}' \
            "http://127.0.0.1:$2/jsonrpc" | jq -r '.result[0].uploadLength'
        ;;
    rqbit) curl -sf --max-time 5 "http://127.0.0.1:$2/torrents/0/stats/v1" | jq -r '.live.snapshot.uploaded_bytes' ;;
    esac
}

# bt_crowd_run CLIENT N: one seeder of the torrent, its upload capped at
# CROWD_RATE, and N downloaders started together (once the seeder is ready
# and has had a second to announce), each seeding on until the last is
# done. Checks every file with cmp. Sets RUN_SECS (the downloaders' start to
# the last completion) and RUN_UPLOADED (the seeder's uploaded bytes then).
# Returns 1 with BT_WHY set if a client fails or is too slow.
bt_crowd_run() {
    local client=$1 n=$2 i port api t0 t1 ts deadline name dir ok=1 names=() dls=()
    SEQ=$((SEQ + 1))
    local run=bc$SEQ seeder=bc$SEQ-seed
    port=$(free_port) api=$(free_port)
    case $client in
    aria2c)
        start "$seeder" "$WORK/bt/seed0" "" aria2c "${ARIA_COMMON[@]}" --listen-port="$port" --seed-ratio=0.0 \
            --bt-seed-unverified=true --max-overall-upload-limit="$CROWD_RATE" --enable-rpc \
            --rpc-listen-port="$api" -d "$WORK/bt/seed0" "$WORK/bt/data.torrent"
        ;;
    rqbit)
        start "$seeder" "$WORK/bt/seed0" "" env NO_COLOR=1 rqbit "${RQBIT_COMMON[@]}" --listen-port "$port" \
            --announce-port "$port" --ratelimit-upload "$CROWD_RATE_BYTES" --http-api-listen-addr "127.0.0.1:$api" \
            download --overwrite -o "$WORK/bt/seed0" "$WORK/bt/data.torrent"
        ;;
    esac
    names+=("$seeder")
    if ! bt_wait_ready "$client" "$seeder" "$port" || ! wait_listen "$api" 30; then
        BT_WHY="$client seeder not ready in time" ok=0
    fi
    if ((ok)); then
        sleep 1
        t0=$(now)
        for ((i = 0; i < n; i++)); do
            name=$run-dl$i dir=$WORK/$run-dl$i
            mkdir "$dir"
            port=$(free_port)
            case $client in
            aria2c)
                start "$name" "$dir" "" env BT_DONE="$WORK/$name.done" aria2c "${ARIA_COMMON[@]}" \
                    --listen-port="$port" --seed-ratio=0.0 --on-bt-download-complete="$BT_HOOK" \
                    -d "$dir" "$WORK/bt/data.torrent"
                ;;
            rqbit)
                start "$name" "$dir" "" env NO_COLOR=1 rqbit "${RQBIT_COMMON[@]}" --listen-port "$port" \
                    --announce-port "$port" download --disable-http-api -o "$dir" "$WORK/bt/data.torrent"
                ;;
            esac
            names+=("$name") dls+=("$name")
        done
        deadline=$((SECONDS + BT_CROWD_SECS))
        t1=0
        for name in "${dls[@]}"; do
            until ts=$(bt_crowd_done "$client" "$name") && [[ -n $ts ]]; do
                kill -0 "$(pid_of "$name")" 2>/dev/null || { BT_WHY="$client downloader exited early"; ok=0; break 2; }
                ((SECONDS < deadline)) || { BT_WHY="$client did not finish within $BT_CROWD_SECS s"; ok=0; break 2; }
                sleep 0.05
            done
            t1=$(max "$t1" "$ts")
        done
    fi
    if ((ok)); then
        RUN_SECS=$(calc "$t1 - $t0" 4)
        RUN_UPLOADED=$(bt_crowd_uploaded "$client" "$api") || RUN_UPLOADED=""
        [[ $RUN_UPLOADED =~ ^[0-9]+$ ]] || { BT_WHY="no uploaded bytes from the $client seeder"; ok=0; }
    fi
    stop_all "${names[@]}"
    if ((ok)); then
        for name in "${dls[@]}"; do
            cmp "$SRC" "$WORK/$name/data.bin" || fail "$client $name: downloaded file differs from the original"
        done
    fi
    for name in "${dls[@]}"; do rm -rf -- "${WORK:?}/$name"; done
    ((ok))
}

bench_crowd_peers() {
    say "8. flash crowd with aria2c and rqbit: 1 seeder capped at $CROWD_RATE, N downloaders that seed on"
    local client n k why times ups s u name
    bt_setup || true
    BT_HOOK=$WORK/bt/done-hook
    cat >"$BT_HOOK" <<'HOOK'
#!/usr/bin/env bash
# aria2c --on-bt-download-complete: when this download completed.
printf '%s\n' "$EPOCHREALTIME" >"$BT_DONE"
HOOK
    chmod +x "$BT_HOOK"
    BT_CROWD_SECS=$((60 + 10 * SIZE / CROWD_RATE_BYTES))
    for client in aria2c rqbit; do
        why=$BT_WHY
        [[ -z $why ]] && ! command -v "$client" >/dev/null && why="$client is not installed"
        for n in 6 12; do
            [[ $client/$n == rqbit/12 ]] && continue
            name="8. flash crowd N=$n vs $client"
            times=() ups=()
            for ((k = 1; k <= RUNS && ${#why} == 0; k++)); do
                if bt_crowd_run "$client" "$n"; then
                    times+=("$RUN_SECS") ups+=("$RUN_UPLOADED")
                    log "   $client N=$n, run $k: slowest $(calc "$RUN_SECS" 2) s" \
                        "($(calc "$RUN_SECS / $FLOOR_SECS")x the floor), seeder uploaded $(calc "$RUN_UPLOADED / $SIZE")x S"
                else
                    why=$BT_WHY
                fi
            done
            if [[ -n $why ]]; then
                skip_row "$name, slowest finish / floor" "$why" -
                continue
            fi
            if [[ -z ${CROWD_RATIO[$n]:-} ]]; then
                skip_row "$name, slowest finish / floor" "p2pshare's row 8 was not run (BENCH_ONLY)" -
                continue
            fi
            s=$(calc "$(median "${times[@]}") / $FLOOR_SECS") u=$(calc "$(median "${ups[@]}") / $SIZE")
            row "$name, slowest finish / floor" "${CROWD_RATIO[$n]}" "$s ($client)" \
                "$(calc "${CROWD_RATIO[$n]} / $s")" - -
            row "$name, seeder upload / S" "${CROWD_UP[$n]}" "$u ($client)" "$(calc "${CROWD_UP[$n]} / $u")" - -
        done
    done
    if [[ -f $WORK/bt/seed0/data.bin ]]; then
        cmp "$SRC" "$WORK/bt/seed0/data.bin" || fail "a BitTorrent seeder changed its copy of the file"
    fi
}

# ---------------------------------------------------------- how it grows ---

# exponent N1 T1 N2 T2 ...: the least-squares slope of log T over log N.
exponent() {
    printf '%s %s\n' "$@" | awk '{ x = log($1); y = log($2); n++; sx += x; sy += y; sxx += x * x; sxy += x * y }
        END { printf "%.2f", (n * sxy - sx * sy) / (n * sxx - sx * sx) }'
}

# rss_kib PID: the resident set of a live process, KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# cpu_secs PID: the CPU time (user + system) of a live process so far, s:
# what it cost, whoever else shares the machine.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# grow_run N R: (run R) a fresh tracker and a --serve peer sharing N new files of
# 4 KiB (relative paths, so 100,000 fit on a command line); sets GROW_SHARE
# (s from start until the last `Successfully registered file:` line),
# GROW_RSS (KiB, then), GROW_CPU (its CPU s, then), GROW_TRACKER_RSS and
# GROW_RESTORE (s from a restart until its `Sharing again N files` line).
grow_run() {
    local n=$1 tag=grow$1-$2 dir=$WORK/grow$1 state=$WORK/grow$1-state t0 pid got args=()
    mkdir -p "$dir"
    head -c $((n * 4096)) /dev/urandom | split -b 4096 -a 6 -d - "$dir/f"
    local names=("$dir"/f*)
    [[ ${#names[@]} -eq $n ]] || fail "made ${#names[@]} files, not $n"
    # Written back now (as the file of the other rows): 400 MB left dirty at
    # 100,000 files are written out during the run (each `fsync` of the
    # peer's state waits on the file system's journal), which made the
    # 100,000 run look superlinear.
    sync -f "$dir"
    for f in "${names[@]}"; do args+=(--share "${f##*/}"); done
    start_tracker
    # A command line's room is a quarter of the soft stack limit (at most
    # 6 MiB; the soft limit alone: a plain `ulimit -s` lowers the hard one too):
    # 100,000 `--share fNNNNNN` need about 3 MiB.
    local stack
    stack=$(ulimit -Ss)
    ulimit -Ss 65536 2>/dev/null || true
    t0=$(now)
    # Unstamped: 3 lines per file would wait on the stamping loop.
    STAMP_OUT=0 start "$tag" "$dir" "" "$PEER" --bind 127.0.0.1 --serve \
        --state-dir "$state" "${args[@]}" 127.0.0.1 "$TPORT" 0
    ulimit -Ss "$stack" 2>/dev/null || true
    pid=$(pid_of "$tag")
    local deadline=$((SECONDS + 600))
    until got=$(grep -c '^Successfully registered file: ' "$WORK/$tag.out" 2>/dev/null) && ((got >= n)); do
        grep -q '^error:' "$WORK/$tag.out" 2>/dev/null && fail "$tag: $(grep -m1 '^error:' "$WORK/$tag.out")"
        ((SECONDS < deadline)) || fail "$tag: $got of $n shared after 600 s"
        sleep 0.02
    done
    GROW_SHARE=$(calc "$(now) - $t0" 3)
    grep -q '^warning:' "$WORK/$tag.out" && log "   $tag: $(grep -m1 '^warning:' "$WORK/$tag.out")"
    GROW_RSS=$(rss_kib "$pid")
    GROW_CPU=$(cpu_secs "$pid")
    GROW_TRACKER_RSS=$(rss_kib "$(pid_of "$TNAME")")
    stop_pid "$pid"
    t0=$(now)
    start "$tag-again" "$dir" "" "$PEER" --bind 127.0.0.1 --serve --state-dir "$state" 127.0.0.1 "$TPORT" 0
    wait_line "$tag-again" "Sharing again $n files from the last run" 600
    GROW_RESTORE=$(calc "$LINE_TS - $t0" 3)
    stop "$tag-again"
    stop "$TNAME"
    rm -rf -- "$dir" "$state"
}

bench_grow() {
    say "13. how it grows: one peer sharing N files of 4 KiB, and restarting"
    local n r sizes=(${BENCH_GROW:-1000 10000}) share=() restore=() rss=() cpu=() big small
    local runs_share runs_restore runs_rss runs_cpu
    for n in "${sizes[@]}"; do
        runs_share=() runs_restore=() runs_rss=() runs_cpu=()
        for ((r = 1; r <= RUNS; r++)); do
            grow_run "$n" "$r"
            log "   N = $n, run $r: shared in $GROW_SHARE s (peer RSS $(kib_to_mib "$GROW_RSS") MiB, CPU $GROW_CPU s; tracker $(kib_to_mib "$GROW_TRACKER_RSS") MiB), shared again at restart in $GROW_RESTORE s"
            runs_share+=("$GROW_SHARE") runs_restore+=("$GROW_RESTORE")
            runs_rss+=("$GROW_RSS") runs_cpu+=("$GROW_CPU")
        done
        GROW_SHARE=$(median "${runs_share[@]}") GROW_RESTORE=$(median "${runs_restore[@]}")
        GROW_RSS=$(median "${runs_rss[@]}") GROW_CPU=$(median "${runs_cpu[@]}")
        share+=("$n" "$GROW_SHARE")
        restore+=("$n" "$GROW_RESTORE")
        rss+=("$n" "$GROW_RSS")
        cpu+=("$n" "$GROW_CPU")
        local limit=-
        ((n == 10000)) && limit=5
        ((n == 100000)) && limit=60
        row "13. share $n files of 4 KiB until registered, s" "$GROW_SHARE" "-" "-" "$([[ $limit == - ]] && echo - || echo "< $limit")" \
            "$([[ $limit == - ]] && echo - || ge "$limit" "$GROW_SHARE")"
        row "13. restart sharing $n files again, s" "$GROW_RESTORE" "-" "-" "$( ((n == 10000)) && echo '< 2' || echo -)" \
            "$( ((n == 10000)) && ge 2 "$GROW_RESTORE" || echo -)"
        row "13. peer RSS at $n shares, MiB" "$(kib_to_mib "$GROW_RSS")" "-" "-" \
            "$( ((n == 100000)) && echo '< 256' || echo -)" "$( ((n == 100000)) && ge 262144 "$GROW_RSS" || echo -)"
        row "13. peer CPU seconds sharing $n files" "$GROW_CPU" "-" "-" "-" -
    done
    small=${sizes[0]} big=${sizes[-1]}
    row "13. growth exponent, share ($small -> $big)" "$(exponent "${share[@]}")" "1 (linear)" "-" "<= 1.1" "$(ge 1.1 "$(exponent "${share[@]}")")"
    row "13. growth exponent, restart ($small -> $big)" "$(exponent "${restore[@]}")" "1 (linear)" "-" "<= 1.1" "$(ge 1.1 "$(exponent "${restore[@]}")")"
    row "13. growth exponent, CPU seconds sharing ($small -> $big)" "$(exponent "${cpu[@]}")" "1 (linear)" "-" "-" -
    row "13. peer RSS per share ($small -> $big), bytes" \
        "$(calc "(${rss[-1]} - ${rss[1]}) * 1024 / ($big - $small)" 0)" "-" "-" "-" -
}

# ---------------------------------------------------------------- folders ---

TREE_SECS=300 # a tree transfer's deadline

# tree_make NAME FILES BYTES [DIRS]: $WORK/trees/NAME, FILES random files of
# BYTES each, spread over DIRS folders (default: none, all at the top).
tree_make() {
    local dir=$WORK/trees/$1 files=$2 bytes=$3 dirs=${4:-1} d sub
    mkdir -p "$dir"
    for ((d = 0; d < dirs; d++)); do
        sub=$dir
        ((dirs > 1)) && sub=$dir/d$(printf '%02d' "$d") && mkdir "$sub"
        head -c $((files / dirs * bytes)) /dev/urandom | split -b "$bytes" -a 4 -d - "$sub/f"
    done
}

# tree_settle DIR: written back and in the page cache, like $SRC (see there).
tree_settle() {
    find "$1" -type f -print0 | xargs -0 -r sync --
    find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
}

# tree_python: a copy of this machine's Python standard library (the newest
# /usr/lib/python3.N, with its __pycache__) as $WORK/trees/NAME, symlinks
# left out (`peer send` skips them; tar would carry them); sets PY_TREE, or
# leaves it empty if there is none.
tree_python() {
    local lib
    PY_TREE=""
    lib=$(find /usr/lib -maxdepth 1 -type d -regex '.*/python3\.[0-9]+' | sort -V | tail -n1)
    [[ -n $lib ]] || return 0
    PY_TREE=$WORK/trees/${lib##*/}
    cp -R --no-preserve=all -- "$lib" "$PY_TREE" 2>"$WORK/cp.err" || fail "cannot copy $lib: $(head -n1 "$WORK/cp.err")"
    find "$PY_TREE" -type l -delete
    tree_settle "$PY_TREE"
}

# tree_count DIR: "F files, B bytes" of the regular files under DIR.
tree_count() {
    find "$1" -type f -printf '%s\n' | awk '{ n++; b += $1 } END { printf "%d files, %d bytes", n, b }'
}

# tar_tls_run DIR: DIR sent as `tar c DIR | socat OPENSSL` into `socat
# OPENSSL-LISTEN | tar x` in an empty folder (TLS 1.3, the throwaway
# certificate, as socat_run), then compared with diff -r. Sets RUN_SECS
# (sender started until the receiving tar exited) and RUN_FSYNC_SECS (until
# every file it wrote was also fsynced, as p2pshare does each file).
tar_tls_run() {
    local dir=$1 name=${1##*/} out port t0 opts=",verify=0,openssl-min-proto-version=TLS1.3"
    SEQ=$((SEQ + 1))
    local run=t$SEQ
    out=$WORK/$run-out
    mkdir "$out"
    tls_cert
    port=$(free_port)
    start "$run-rx" "$out" "" bash -c 'set -o pipefail; socat -b 131072 -u "$1" STDOUT | tar x' _ \
        "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,cert=$TLS_CERT,key=$TLS_KEY$opts"
    wait_listen "$port" 10 || fail "socat does not listen on $port"
    t0=$(now)
    start "$run-tx" "${dir%/*}" "" bash -c 'set -o pipefail; tar c -- "$1" | socat -b 131072 -u STDIN "$2"' _ \
        "$name" "OPENSSL:127.0.0.1:$port$opts"
    wait_exit "$run-rx" "$TREE_SECS"
    RUN_SECS=$(calc "$(now) - $t0" 4)
    find "$out" -type f -print0 | xargs -0 -r sync --
    RUN_FSYNC_SECS=$(calc "$(now) - $t0" 4)
    wait_exit "$run-tx" 10
    same "$dir" "$out/$name" || fail "tar over TLS: $name differs from the original"
    rm -rf -- "$out"
}

# tree_run DIR: `peer send DIR` (with --http 0), then `peer get TICKET` in
# an empty folder, which exits once the tree is verified and saved; the
# copy is compared with diff -r. Sets RUN_SHARE_SECS (send started until
# its ticket line), RUN_SECS (get started until it exited), RUN_BYTES (the
# bytes of get's summary line) and RUN_UPLOADED (the sender's uploaded
# bytes, from its /api/status).
tree_run() {
    local dir=$1 name=${1##*/} out t0 ticket url
    SEQ=$((SEQ + 1))
    local run=f$SEQ
    out=$WORK/$run-out
    mkdir "$out"
    RUN_BYTES=0
    t0=$(now)
    start "$run-send" "${dir%/*}" "" "$PEER" send --bind 127.0.0.1 --http 0 "$name"
    wait_line "$run-send" 'Ticket: [^ ]+$' 600
    RUN_SHARE_SECS=$(calc "$LINE_TS - $t0" 4)
    ticket=${LINE#Ticket: }
    wait_line "$run-send" 'Status page on http://[^/]+/' 10
    url=${LINE#Status page on } url=${url%%\?*}
    t0=$(now)
    start "$run-get" "$out" "" "$PEER" get --bind 127.0.0.1 "$ticket"
    wait_exit "$run-get" "$TREE_SECS"
    RUN_SECS=$(calc "$(now) - $t0" 4)
    wait_line "$run-get" '  [0-9,]+ files, [0-9]+ bytes ' 10
    [[ $LINE =~ files,\ ([0-9]+)\ bytes ]] && RUN_BYTES=${BASH_REMATCH[1]}
    RUN_UPLOADED=$(status_of 1 "$url" '.shared[0].uploaded') || RUN_UPLOADED=""
    [[ $RUN_UPLOADED =~ ^[0-9]+$ ]] || fail "the sender's /api/status gave no uploaded bytes"
    stop "$run-send"
    same "$dir" "$out/$name" || fail "$run-get: downloaded $name differs from the original"
    rm -rf -- "$out"
}

# tree_rows NAME DIR TARGET MIN: RUNS of tar_tls_run and tree_run of DIR,
# each run both, in turn first; rows of the medians and of the worst run (its ratio against
# the tar run just before it: the load of a shared machine moves both), the
# ratio being tar's seconds over p2pshare's (above 1: faster than tar), met
# if at least MIN ("-": no target). Sets TREE_SHARE (the share seconds).
tree_rows() {
    local name=$1 dir=$2 target=$3 min=$4 k p2p=() tar=() tarsync=() a b r worst="" wp wt ok=-
    TREE_SHARE=()
    for ((k = 1; k <= RUNS; k++)); do
        # Who goes first alternates: creating files right after the other
        # deleted as many costs ext4 more (it skips inodes deleted in the
        # last minute or so), and the first would always have the edge.
        if ((k % 2 == 0)); then
            tree_run "$dir"
            p2p+=("$RUN_SECS") TREE_SHARE+=("$RUN_SHARE_SECS")
        fi
        tar_tls_run "$dir"
        tar+=("$RUN_SECS") tarsync+=("$RUN_FSYNC_SECS")
        if ((k % 2 == 1)); then
            tree_run "$dir"
            p2p+=("$RUN_SECS") TREE_SHARE+=("$RUN_SHARE_SECS")
        fi
        r=$(calc "${tar[-1]} / ${p2p[-1]}" 4)
        if [[ -z $worst ]] || (($(ge "$worst" "$r"))); then worst=$r wp=${p2p[-1]} wt=${tar[-1]}; fi
        log "   $name, run $k: p2pshare get ${p2p[-1]} s (send shared it in ${TREE_SHARE[-1]} s;" \
            "received $RUN_BYTES bytes, sender uploaded $RUN_UPLOADED), tar over TLS ${tar[-1]} s" \
            "(with fsync ${tarsync[-1]} s): tar / p2pshare $(calc "$r")"
    done
    a=$(median "${p2p[@]}") b=$(median "${tar[@]}")
    [[ $min == - ]] || ok=$(ge "$b / $a" "$min")
    row "14. $name, fetch s" "$(calc "$a")" "$(calc "$b") (tar over TLS 1.3)" "$(calc "$b / $a")" "$target" "$ok"
    [[ $min == - ]] || ok=$(ge "$worst" "$min")
    row "14. $name, fetch s, worst run of $RUNS" "$(calc "$wp")" "$(calc "$wt") (tar over TLS 1.3, same run)" \
        "$(calc "$worst")" "$target" "$ok"
    b=$(median "${tarsync[@]}")
    row "14. $name, fetch s" "$(calc "$a")" "$(calc "$b") (tar over TLS 1.3 + fsync)" "$(calc "$b / $a")" "-" -
}

bench_trees() {
    say "14. folders: peer send DIR -> peer get TICKET vs tar | socat over TLS 1.3 | tar x"
    local k a b up=() got=() hash=() share
    mkdir "$WORK/trees"
    tree_make small 10000 4096 100
    tree_make big 100 $((1 << 20))
    tree_make crowd 64 $((1 << 20))
    mkdir "$WORK/trees/copies"
    head -c $((5 << 20)) /dev/urandom >"$WORK/trees/copies/c0"
    for k in 1 2 3 4 5 6 7 8 9; do cp -- "$WORK/trees/copies/c0" "$WORK/trees/copies/c$k"; done
    for k in small big crowd copies; do tree_settle "$WORK/trees/$k"; done

    tree_rows "10,000 files of 4 KiB (1 -> 1)" "$WORK/trees/small" ">= 0.67 (1.5x tar)" 0.6667
    tree_rows "100 files of 1 MiB (1 -> 1)" "$WORK/trees/big" ">= 0.9" 0.9

    tree_python
    if [[ -z $PY_TREE ]]; then
        skip_row "14. Python standard library, fetch s" "no /usr/lib/python3.N here" -
    else
        log "   ${PY_TREE##*/}: $(tree_count "$PY_TREE") (copied without symlinks)"
        tree_rows "${PY_TREE##*/} library" "$PY_TREE" "-" -
        share=("${TREE_SHARE[@]}")
        for ((k = 1; k <= RUNS; k++)); do
            time_cmd bash -c 'set -o pipefail; tar c -C "$1" -- "$2" | sha256sum' _ "$WORK/trees" "${PY_TREE##*/}"
            hash+=("$RUN_SECS")
        done
        a=$(median "${share[@]}") b=$(median "${hash[@]}")
        log "   ${PY_TREE##*/}: shared in ${share[*]} s; tar c | sha256sum ${hash[*]} s"
        row "14. ${PY_TREE##*/} library, share s (start to ticket)" "$(calc "$a")" "$(calc "$b") (tar c into sha256sum)" \
            "$(calc "$b / $a")" "-" -
        rm -rf -- "$PY_TREE"
    fi

    # Ten copies of one file: each distinct chunk is to cross once.
    for ((k = 1; k <= RUNS; k++)); do
        tree_run "$WORK/trees/copies"
        up+=("$RUN_UPLOADED") got+=("$RUN_BYTES")
        log "   ten copies of 5 MiB, run $k: sender uploaded $(calc "$RUN_UPLOADED / 1048576") MiB," \
            "get reports $(calc "$RUN_BYTES / 1048576") MiB, in $RUN_SECS s"
    done
    a=$(max "${up[@]}")
    row "14. ten copies of one 5 MiB file, MiB sent, worst of $RUNS" "$(calc "$a / 1048576" 1)" "5.0 (one copy)" \
        "$(calc "$a / 5242880")" "<= 1.1" "$(ge 1.1 "$a / 5242880")"

    # The flash crowd of 8, for a tree: crowd_run and crowd_rows read SRC,
    # SIZE, SIZE_MIB and FLOOR_SECS, shadowed here (bash scoping is dynamic).
    local SRC=$WORK/trees/crowd SIZE=$((64 << 20)) SIZE_MIB=64 FLOOR_SECS secs=() ups=()
    FLOOR_SECS=$(calc "$SIZE / $CROWD_RATE_BYTES" 4)
    say "14. flash crowd of a tree of 64 files of 1 MiB: 1 seeder --max-upload $CROWD_RATE, N=6 (floor $(calc "$FLOOR_SECS" 1) s)"
    for ((k = 1; k <= RUNS; k++)); do
        crowd_run 6 0 0 --max-upload "$CROWD_RATE"
        secs+=("$RUN_SECS") ups+=("$RUN_UPLOADED")
        crowd_log 6 "$k"
    done
    crowd_rows "14. flash crowd of a 64-file tree N=6" "$FLOOR_SECS" "$(median "${secs[@]}")" "$(median "${ups[@]}")" "<= 1.25"
    crowd_rows "14. flash crowd of a 64-file tree N=6, worst of $RUNS" "$FLOOR_SECS" "$(max "${secs[@]}")" \
        "$(max "${ups[@]}")" "<= 1.25"
    rm -rf -- "$WORK/trees"
}

# selected N: whether benchmark N is in BENCH_ONLY (default: all).
selected() { [[ -z ${BENCH_ONLY:-} || " $BENCH_ONLY " == *" $1 "* ]]; }

if selected 1 || selected 3 || selected 7; then bench_transfer; fi
if selected 2; then bench_hashing; fi
if selected 4; then bench_capped; fi
if selected 5; then bench_tracker; fi
if selected 6; then bench_swarm; fi
if ((WITH_PEERS)) && selected 7; then bench_peers; fi
if selected 8; then bench_crowd; fi
if ((WITH_PEERS)) && selected 8; then bench_crowd_peers; fi
[[ -n $(pid_of_maybe opentracker) ]] && stop opentracker
if selected 9; then bench_late; fi
if selected 10; then bench_killed; fi
if ((WITH_NETNS)) && selected 11; then bench_netns; fi
if selected 12; then bench_stagger; fi
if selected 13; then bench_grow; fi
if selected 14; then bench_trees; fi
if ((WITH_NETNS)) && selected 15; then bench_nat; fi

# ------------------------------------------------------------------ table ----

print_table() {
    local r
    printf '| benchmark | p2pshare | baseline | ratio | target | result |\n'
    printf '| --- | ---: | ---: | ---: | --- | --- |\n'
    # In benchmark order (3 is measured with 1, so it is recorded before 2).
    printf '%s\n' "${ROWS[@]}" | sort -s -t. -k1,1n | while IFS= read -r r; do
        printf '| %s |\n' "${r//|/ | }"
    done
}

say "results: $MODE mode ($SIZE_MIB MiB file, median of $RUNS runs, R = $RATE, crowd R = $CROWD_RATE_MIB MiB/s), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
print_table
if ((MISSED > 0)); then
    log "$MISSED target(s) missed (the table is still complete; every transfer was checked with cmp)"
fi
