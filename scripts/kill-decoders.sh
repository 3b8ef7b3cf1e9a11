#!/usr/bin/env bash
# A serving process against decoders SIGKILLed mid-pull, round after round, over UCX on TCP (where UCX 1.13 used to
# abort the server inside its GET emulation). One `datadist serve --prefix-keys` stays up; each round starts a
# `datadist pull --repeat` against it and kills it after 0.2-0.6 s. Prints how many rounds the server survived and
# the first UCX fatal or assertion lines of its stderr, if any.
#
# usage: scripts/kill-decoders.sh [DATADIST [ROUNDS]]   (default .build/release/datadist, 100 rounds)
# Exit codes: 0 the server survived every round; 1 it died.
set -uo pipefail
BIN=${1:-.build/release/datadist}
ROUNDS=${2:-100}
[[ -x "$BIN" ]] || { echo "kill-decoders: no $BIN" >&2; exit 2; }
SHAPE=(--layers 2 --tokens 256 --hidden 1024)
export UCX_TLS=${UCX_TLS:-tcp} DATADIST_TRANSPORT=ucx
log=$(mktemp)
trap 'rm -f "$log"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/survivor-check.sh"
coproc SERVE { "$BIN" serve --json --prefix-keys --requests 4 "${SHAPE[@]}" 2>"$log"; }
read -r line <&"${SERVE[0]}"
port=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["port"])' "$line")
survived=0
for round in $(seq 1 "$ROUNDS"); do
    "$BIN" pull --json --port "$port" --prefix-keys --requests 4 --repeat 100000000 "${SHAPE[@]}" >/dev/null 2>&1 &
    pull=$!
    sleep "0.$((2 + RANDOM % 5))"
    kill -9 "$pull"
    wait "$pull" 2>/dev/null
    sleep 0.2
    survivor_check kill-decoders "the server" "$SERVE_PID" "$round" "$log"
    survived=$round
done
kill "$SERVE_PID" 2>/dev/null
wait 2>/dev/null
echo "kill-decoders: the server survived $survived of $ROUNDS SIGKILLed decoders"
