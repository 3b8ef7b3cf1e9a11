#!/usr/bin/env bash
# Prompts SIGKILLed while decoders link to them, round after round, over UCX on TCP. Over UCX the decoder answers
# the prompt's wireup (README "Transports", "Why the owner delivers pulls"), and UCX 1.13 aborts a process that
# holds such an answer unsent when its peer fails; this counts how often that takes a decoder down (it did while
# the decoder's answer waited for its connection back to the prompt; now its endpoint is connected first). Each round
# starts a `datadist serve --prefix-keys`, then DECODERS (default 3) `datadist pull --prefix-keys --repeat` against
# it, and SIGKILLs the prompt KILL_AFTER_MS ("LOW SPAN": LOW to LOW+SPAN-1 ms, default "0 150") after starting them,
# while they start and link. Each decoder then ends one of:
#   aborted  a UCX fatal or assertion line on its stderr, or ended by a signal (its lines are printed);
#   clean    exited 1 with LLM_LINK_FAILED or LLM_TIMEOUT in its JSON report, while linking ("link") or after it
#            ("pull"); of those while linking, how many were refused before they reached the prompt;
#   other    anything else (hung past 30 s, another status, no report): printed.
# DECODER_WRAP: a command each decoder runs under, e.g. kill-pushers.sh's strace line delaying its connect()
# returns (widening the window between UCX's connect and its first send). PROMPT_WRAP: the same for the prompt,
# e.g. strace delaying its sendto() calls (UCX's connection acknowledgements among them), which widens the window
# in which a decoder's answer to the prompt's wireup waits for its connection. KEEP=DIR keeps the stderr of every
# decoder that did not end clean.
#
# usage: scripts/kill-prompts.sh [DATADIST [ROUNDS]]   (default .build/release/datadist, 100 rounds)
# Prints "kill-prompts: N of M decoders aborted in UCX, ..." Exit codes: 0 none aborted and none other; 1 some did;
# 2 no binary.
set -uo pipefail
BIN=${1:-.build/release/datadist}
ROUNDS=${2:-100}
DECODERS=${DECODERS:-3}
read -r LOW SPAN <<<"${KILL_AFTER_MS:-0 150}"
[[ -x "$BIN" ]] || { echo "kill-prompts: no $BIN" >&2; exit 2; }
SHAPE=(--layers 2 --tokens 256 --hidden 1024 --requests 4)
export UCX_TLS=${UCX_TLS:-tcp} DATADIST_TRANSPORT=ucx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/survivor-check.sh"
[[ -n "${KEEP:-}" ]] && mkdir -p "$KEEP"
aborted=0 clean_link=0 clean_pull=0 refused=0 other=0 total=0
for round in $(seq 1 "$ROUNDS"); do
    coproc PROMPT { exec ${PROMPT_WRAP:-} "$BIN" serve --json --prefix-keys "${SHAPE[@]}" 2>"$work/prompt.err"; }
    prompt_pid=$PROMPT_PID
    read -r -t 30 line <&"${PROMPT[0]}" || { echo "kill-prompts: round $round: the prompt did not start"; cat "$work/prompt.err"; exit 1; }
    port=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["port"])' "$line")
    serve_pid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$line")   # not a wrapper's
    decoders=()
    for index in $(seq 1 "$DECODERS"); do
        timeout -s KILL 30 ${DECODER_WRAP:-} "$BIN" pull --json --port "$port" --prefix-keys --repeat 100000000 \
            --cluster-id $((10 + index)) "${SHAPE[@]}" >"$work/decoder-$index.out" 2>"$work/decoder-$index.err" &
        decoders+=($!)
    done
    after=$((LOW + RANDOM % SPAN))
    sleep "$(printf '%d.%03d' $((after / 1000)) $((after % 1000)))"
    kill -9 "$serve_pid" "$prompt_pid" 2>/dev/null
    wait "$prompt_pid" 2>/dev/null
    for index in $(seq 1 "$DECODERS"); do
        wait "${decoders[index - 1]}" 2>/dev/null
        code=$?
        total=$((total + 1))
        out="$work/decoder-$index.out" err="$work/decoder-$index.err"
        verdict=$(python3 - "$out" "$code" <<'PY'
import json, sys
code = int(sys.argv[2])
try:
    report = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception:
    report = None
failure = (report or {}).get("failure") or {}
status = (failure.get("status") or {}).get("name")
if code == 1 and status in ("LLM_LINK_FAILED", "LLM_TIMEOUT"):
    print("clean_link" if failure.get("phase") == "link" else "clean_pull")
else:
    print("other")
PY
)
        if ucx_abort_lines "$err" 0 >/dev/null || (( code > 128 && code != 137 )); then verdict=aborted; fi
        (( code == 137 )) && verdict=other   # timeout's SIGKILL: it hung
        case "$verdict" in
            aborted) aborted=$((aborted + 1)) ;;
            clean_link)
                clean_link=$((clean_link + 1))
                grep -q "Connection refused" "$err" && refused=$((refused + 1)) ;;
            clean_pull) clean_pull=$((clean_pull + 1)) ;;
            *) other=$((other + 1)) ;;
        esac
        if [[ "$verdict" == aborted || "$verdict" == other ]]; then
            echo "kill-prompts: round $round, decoder $index: $verdict (exit $code): $(tail -c 300 "$out")"
            ucx_abort_lines "$err" 12
            [[ -n "${KEEP:-}" ]] && cp "$err" "$KEEP/round-$round-decoder-$index.err"
        fi
    done
done
echo "kill-prompts: $aborted of $total decoders aborted in UCX, $((clean_link + clean_pull)) ended clean" \
    "($clean_link while linking, $refused of them refused before connecting; $clean_pull after), $other other; $ROUNDS rounds of $DECODERS decoders," \
    "prompt SIGKILLed ${LOW}-$((LOW + SPAN - 1)) ms after they started${DECODER_WRAP:+, decoders under: $DECODER_WRAP}${PROMPT_WRAP:+, prompt under: $PROMPT_WRAP}"
(( aborted == 0 && other == 0 ))
