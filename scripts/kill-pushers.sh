#!/usr/bin/env bash
# A remote-accessible receiver against pushers SIGKILLed mid-push, three at a time, round after round, over UCX on
# TCP (`PushKillTests.repeatedPusherKills` as a loop). One `datadist bench-serve --remote-accessible` holds a cache
# of four 4 MiB slots; each round starts three `datadist pull --push-cache-id --repeat` into it and kills them after
# 0.3-0.7 s (KILL_AFTER_MS="LOW SPAN": after LOW to LOW+SPAN-1 ms; "20 300" also kills them while they link). Prints how many rounds the receiver survived and, if it died, the UCX fatal or assertion lines and
# backtrace of its stderr (kept in $KEEP when set).
#
# usage: scripts/kill-pushers.sh [DATADIST [ROUNDS]]   (default .build/debug/datadist, 40 rounds)
# Exit codes: 0 the receiver survived every round; 1 it died.
set -uo pipefail
BIN=${1:-.build/debug/datadist}
ROUNDS=${2:-40}
read -r LOW SPAN <<<"${KILL_AFTER_MS:-300 400}"
[[ -x "$BIN" ]] || { echo "kill-pushers: no $BIN" >&2; exit 2; }
SHAPE=(--layers 1 --tokens 1024 --hidden 2048 --requests 4)
export UCX_TLS=${UCX_TLS:-tcp} DATADIST_TRANSPORT=ucx
log=${KEEP:-$(mktemp)}
[[ -n "${KEEP:-}" ]] || trap 'rm -f "$log"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/survivor-check.sh"
# RECEIVER_WRAP: a command the receiver runs under, e.g. strace delaying its connect() returns to widen the window
# between UCX's connect and its first send on the new socket (see README "Transports").
coproc SERVE { ${RECEIVER_WRAP:-} "$BIN" bench-serve --remote-accessible --pool-bytes $((64 << 20)) 2>"$log"; }
serve_pid=$SERVE_PID # bash unsets SERVE_PID once the coprocess ends
read -r line <&"${SERVE[0]}"
port=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["port"])' "$line")
echo "cache target $((4 << 20)) 4 none 0 touch" >&"${SERVE[1]}"
read -r line <&"${SERVE[0]}"
cache=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["cacheID"])' "$line")
survived=0
for round in $(seq 1 "$ROUNDS"); do
    pushers=()
    for index in 0 1 2; do
        "$BIN" pull --json --port "$port" --push-cache-id "$cache" "${SHAPE[@]}" --repeat 100000000 \
            --cluster-id $((10 + 3 * round + index)) >/dev/null 2>&1 &
        pushers+=($!)
    done
    sleep "$(printf '%d.%03d' 0 $((LOW + RANDOM % SPAN)))"
    # STOP_RECEIVER=1: the receiver is stopped while the pushers die, so it finds their last messages and the
    # closed connections together (as a receiver starved of CPU does).
    [[ -n "${STOP_RECEIVER:-}" ]] && kill -STOP "$serve_pid" && sleep 0.1
    kill -9 "${pushers[@]}" 2>/dev/null # a pusher whose link failed has exited already
    [[ -n "${STOP_RECEIVER:-}" ]] && sleep 0.05 && kill -CONT "$serve_pid"
    { wait "${pushers[@]}"; } 2>/dev/null
    sleep 0.05
    survivor_check kill-pushers "the receiver" "$serve_pid" "$round" "$log"
    survived=$round
done
kill "$serve_pid" 2>/dev/null
wait 2>/dev/null
echo "kill-pushers: the receiver survived $survived of $ROUNDS rounds of three SIGKILLed pushers"
