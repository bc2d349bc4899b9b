# What scripts/demo.sh and scripts/bench.sh share; each sources this file
# after `set -euo pipefail`. Sourcing it
#
#   - moves to the repository root and sets ROOT, TRACKER and PEER (the
#     release binaries, under CARGO_TARGET_DIR if that is set, else target/);
#   - sets up the process registry (PIDS, NAMES) and WORK, the work
#     directory, which the script creates; logs are $WORK/NAME.out and
#     $WORK/NAME.err;
#   - installs the traps: on exit, `cleanup` stops every process started
#     (newest first, so peers can still say BYE to the tracker), then runs
#     the commands in AT_EXIT (newest first; for what outlives a process,
#     such as network namespaces), prints the last lines of every log if the
#     script failed, and removes WORK.
#
# Settings a script may make before or after sourcing (defaults in brackets):
#   TIMEOUT    seconds a wait_line or wait_exit without SECS waits [30]
#   SAY_FD     where `say` writes [1]
#   STAMP_OUT  1: prefix each stdout line with the time it was printed
#              ($EPOCHREALTIME), for wait_line's LINE_TS [0]
#   STOP_SECS  seconds a process gets to exit after SIGTERM [5]
#   LOG_TAIL   lines of each log shown after a failure [8]
#   KEEP_WORK  non-empty: keep WORK []
# Every wait has a deadline, and everything listens on 127.0.0.1 only.

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
# cargo resolves a relative CARGO_TARGET_DIR against the directory it runs
# in, which for both scripts is ROOT.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
TRACKER=$TARGET_DIR/release/tracker
PEER=$TARGET_DIR/release/peer

WORK=""
PIDS=()    # every background process started, in start order
NAMES=()   # their names, for logs
AT_EXIT=() # commands (each one string, run with eval) for cleanup

say() { printf '\n== %s\n' "$*" >&"${SAY_FD:-1}"; }

fail() {
    printf '\nFAIL: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- processes --

# kill_tree SIG PID: signals PID's children (a /usr/bin/time wrapper's
# program), then PID.
kill_tree() {
    local child
    for child in $(pgrep -P "$2" 2>/dev/null); do
        kill "-$1" "$child" 2>/dev/null || true
    done
    kill "-$1" "$2" 2>/dev/null || true
}

# stop_pid PID: TERM (to its children only if it has any: a /usr/bin/time
# wrapper must live to write its figures), up to STOP_SECS for it to exit,
# then KILL to it and its children; reaps it.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + ${STOP_SECS:-5})) children
    children=$(pgrep -P "$pid" 2>/dev/null) || true
    if [[ -n $children ]]; then
        # shellcheck disable=SC2086 # one word per child pid
        kill -TERM $children 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill_tree KILL "$pid"
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? i f
    set +e
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -0 "${PIDS[i]}" 2>/dev/null && stop_pid "${PIDS[i]}"
    done
    for ((i = ${#AT_EXIT[@]} - 1; i >= 0; i--)); do
        eval "${AT_EXIT[i]}"
    done
    if ((status != 0)) && [[ -n $WORK && -d $WORK ]]; then
        printf '\n== logs of the failed run (last lines)\n' >&2
        for i in "${!NAMES[@]}"; do
            for f in "$WORK/${NAMES[i]}.out" "$WORK/${NAMES[i]}.err"; do
                [[ -s $f ]] && { printf -- '-- %s\n' "${f#"$WORK"/}"; tail -n "${LOG_TAIL:-8}" "$f"; } >&2
            done
        done
    fi
    [[ -n $WORK && -z ${KEEP_WORK:-} ]] && rm -rf -- "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# stamp: copies stdin to stdout, each line prefixed with $EPOCHREALTIME, so
# readiness and completion lines carry the time they were printed.
stamp() {
    local line
    while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

# start NAME DIR INPUT CMD...: runs CMD in DIR in the background with stdin
# from file INPUT (empty: /dev/null), stdout to $WORK/NAME.out (time-stamped
# if STAMP_OUT=1) and stderr to $WORK/NAME.err. The stamp process is this
# shell's child, not CMD's, so stopping CMD's process tree leaves it to read
# the last lines. Each process gets a state directory of its own under
# $WORK/state (XDG_STATE_HOME): its identity, what it remembers.
start() {
    local name=$1 dir=$2 input=${3:-/dev/null} fd
    shift 3
    mkdir -p "$WORK/state/$name"
    chmod 700 "$WORK/state" "$WORK/state/$name"
    export XDG_STATE_HOME="$WORK/state/$name"
    if ((${STAMP_OUT:-0})); then
        : >"$WORK/$name.out"
        exec {fd}> >(stamp >"$WORK/$name.out")
        (cd "$dir" && exec "$@") <"$input" 2>"$WORK/$name.err" >&"$fd" {fd}>&- &
        PIDS+=($!)
        exec {fd}>&-
    else
        (cd "$dir" && exec "$@") <"$input" >"$WORK/$name.out" 2>"$WORK/$name.err" &
        PIDS+=($!)
    fi
    NAMES+=("$name")
}

pid_of_maybe() {
    local i
    for i in "${!NAMES[@]}"; do
        [[ ${NAMES[i]} == "$1" ]] && { printf '%s\n' "${PIDS[i]}"; return; }
    done
    return 0
}

pid_of() {
    local pid
    pid=$(pid_of_maybe "$1")
    [[ -n $pid ]] || fail "no process named $1"
    printf '%s\n' "$pid"
}

# stop NAME: stops the process started as NAME.
stop() { stop_pid "$(pid_of "$1")"; }

# wait_line NAME REGEX [SECS]: waits until a line of NAME's stdout matches
# (extended) REGEX, which with STAMP_OUT=1 is anchored after the time stamp;
# sets LINE to it and, with STAMP_OUT=1, LINE_TS to when it was printed.
# Fails if NAME exits first or SECS (default TIMEOUT) pass.
wait_line() {
    local name=$1 regex=$2 secs=${3:-${TIMEOUT:-30}} pid hit
    local deadline=$((SECONDS + secs))
    ((${STAMP_OUT:-0})) && regex="^[0-9]+\.[0-9]+ $regex"
    pid=$(pid_of "$name")
    while :; do
        if hit=$(grep -s -E -m1 -- "$regex" "$WORK/$name.out"); then
            if ((${STAMP_OUT:-0})); then
                LINE_TS=${hit%% *}
                LINE=${hit#* }
            else
                LINE=$hit
            fi
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            sleep 0.2 # let stamp flush what the process printed last
            grep -qE -- "$regex" "$WORK/$name.out" && continue
            fail "$name exited before printing /$2/"
        fi
        ((SECONDS < deadline)) || fail "$name did not print /$2/ within $secs s"
        sleep 0.02
    done
}

# wait_exit NAME [SECS]: waits until NAME exits (at most SECS, default
# TIMEOUT); fails unless it exited 0.
wait_exit() {
    local pid rc=0 secs=${2:-${TIMEOUT:-30}}
    local deadline=$((SECONDS + secs))
    pid=$(pid_of "$1")
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "$1 still running after $secs s"
        sleep 0.02
    done
    wait "$pid" || rc=$?
    ((rc == 0)) || fail "$1 exited with status $rc"
}

# ------------------------------------------------------------ output lines --

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
