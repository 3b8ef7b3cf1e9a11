#!/usr/bin/env bash
# Two hosts on one machine: two network namespaces joined by a veth pair (10.213.0.1 and 10.213.0.2), UCX on TCP.
# In one run, per size: our pull (`datadist bench-serve --host` in the first namespace, `datadist bench --connect`
# in the second: the pull_cache rows) beside a plain single TCP stream between the same two addresses (python3,
# first → second, the direction a pull moves bytes) and `ucx_perftest -t ucp_get` (the same transport and sizes;
# once with UCX's own defaults, once with DataDist's UCX defaults, and once more with those and `-e`, error
# handling on the endpoint, as ours). Prints GB/s (10^9 bytes/s) and our pull's ratio to each reference, and our
# pull_caches (32 keys of that size per call; GB/s of the whole batch) beside the TCP stream. In the same passes:
# our push_cache (`bench --connect --remote-accessible` in the second namespace into a second `bench-serve --host
# --remote-accessible` in the first: one tensor of the size per call, second → first) beside the same TCP stream,
# and our pull_blocks (the first bench-serve with `--blocks SIZE`: 61 layers × 2 tensors, 64 of 128 blocks of SIZE
# per call, scattered and adjacent) beside a TCP stream of SIZE-byte writes.
# With --mooncake, in the same passes: Mooncake's transfer engine over TCP (`transfer_engine_bench`, P2P handshake,
# its target in the first namespace, its initiator reading batches of 32 in the second) beside our pull_caches of
# 32 keys at the same sizes, and the ratio.
#
# Needs root (ip netns) and iproute2, python3 and ucx_perftest (Debian ucx-utils). Removes its namespaces on exit.
# UCX_* variables set by the caller reach every UCX side (ours and ucx_perftest) and win over our defaults.
#
# Exit codes: 0 table printed; 1 a side failed; 2 usage or a missing tool; 3 --mooncake and Mooncake could not be
# installed or run (scripts/compare-mooncake.sh installs it).
set -euo pipefail

# DataDist's UCX defaults, as `UCXSettings.tunedDefaults` (Sources/LinkLayer/DataPlane/UCX/UCXWorker.swift): the
# perftest runs "with ours" get the same, so both sides run with the same settings.
readonly DATADIST_UCX_DEFAULTS="UCX_TCP_TX_SEG_SIZE=512k UCX_TCP_RX_SEG_SIZE=512k UCX_TCP_CONN_NB=y"

readonly DEFAULT_SIZES="1MiB,4MiB,16MiB"
readonly DEFAULT_MOONCAKE_SIZES="16KiB,1MiB,4MiB"
readonly DEFAULT_BLOCK_SIZE=128KiB   # as bench's own pull_blocks rows
readonly MOONCAKE_BATCH=32   # requests per Mooncake batch, as our pull_caches row's keys per call
sizes=$DEFAULT_SIZES duration=2 passes=2 mooncake=0 mooncake_sizes=$DEFAULT_MOONCAKE_SIZES block_size=$DEFAULT_BLOCK_SIZE

usage() {
    cat <<EOF
usage: $0 [--sizes LIST] [--duration SECONDS]
  --sizes LIST     comma-separated sizes, suffix KiB/MiB or plain bytes (default $DEFAULT_SIZES)
  --duration S     seconds per measurement (default $duration)
  --passes N       measure every column N times, in turn, and show each column's best (default $passes)
  --mooncake       also Mooncake's transfer engine over TCP, batches of $MOONCAKE_BATCH reads, beside our pull_caches
  --mooncake-sizes LIST  sizes for --mooncake (default $DEFAULT_MOONCAKE_SIZES)
  --block-size SIZE  block size of the pull_blocks rows (bench-serve --blocks; default $DEFAULT_BLOCK_SIZE, 2 GiB per side)
columns besides pull, the TCP stream, ucx_perftest and batch:
  push         our push_cache, one tensor of the size per call, second → first namespace (--remote-accessible both sides)
  push×tcp     push over the TCP stream of the same size, same pass
  pull_blocks  (own table) our pullBlocks of 61 layers × 2 tensors, 64 of 128 blocks per call, scattered and adjacent
  blocks×tcp   pull_blocks over a TCP stream of block-size writes, same pass
environment:
  DATADIST   our binary (default .build/release/datadist; build it with 'swift build -c release --product datadist')
  UCX_*      passed to both sides (e.g. UCX_TCP_TX_SEG_SIZE=256k), over DataDist's defaults
EOF
}
die() { echo "compare-cross-host: $*" >&2; exit 2; }
failed() { echo "compare-cross-host: FAILED: $*" >&2; exit 1; }
peer_unavailable() { echo "compare-cross-host: PEER UNAVAILABLE: $*" >&2; exit 3; }

while (( $# > 0 )); do
    case "$1" in
        --sizes) (( $# >= 2 )) || die "--sizes needs a value"; sizes="$2"; shift 2 ;;
        --duration) (( $# >= 2 )) || die "--duration needs a value"; duration="$2"; shift 2 ;;
        --passes) (( $# >= 2 )) || die "--passes needs a value"; passes="$2"; shift 2 ;;
        --mooncake) mooncake=1; shift ;;
        --mooncake-sizes) (( $# >= 2 )) || die "--mooncake-sizes needs a value"; mooncake_sizes="$2"; shift 2 ;;
        --block-size) (( $# >= 2 )) || die "--block-size needs a value"; block_size="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
[[ "$duration" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--duration $duration is not a number of seconds"
[[ "$passes" =~ ^[1-9][0-9]*$ ]] || die "--passes $passes is not a count of 1 or more"
(( EUID == 0 )) || die "needs root (network namespaces)"
for tool in ip python3 ucx_perftest; do command -v "$tool" >/dev/null || die "needs $tool"; done
DATADIST=${DATADIST:-.build/release/datadist}
[[ -x "$DATADIST" ]] || die "no $DATADIST (swift build -c release --product datadist)"
DATADIST=$(realpath "$DATADIST")

bytes_of() {
    local s=$1
    case "$s" in
        *GiB) echo $(( ${s%GiB} << 30 )) ;; *MiB) echo $(( ${s%MiB} << 20 )) ;; *KiB) echo $(( ${s%KiB} << 10 )) ;;
        *[!0-9]*|'') die "size '$s' is not of the form N, NKiB, NMiB or NGiB" ;; *) echo "$s" ;;
    esac
}
IFS=, read -r -a size_list <<< "$sizes"
for s in "${size_list[@]}"; do bytes_of "$s" >/dev/null; done
block_bytes=$(bytes_of "$block_size")
(( block_bytes > 0 && block_bytes % 8 == 0 && block_bytes <= 1 << 20 )) \
    || die "--block-size $block_size is not a multiple of 8 bytes up to 1MiB"
mooncake_list=()
if (( mooncake )); then IFS=, read -r -a mooncake_list <<< "$mooncake_sizes"; fi
for s in "${mooncake_list[@]}"; do bytes_of "$s" >/dev/null; done
# What bench-serve serves and bench --connect measures: --sizes, then the Mooncake sizes not among them.
served_list=("${size_list[@]}")
for s in "${mooncake_list[@]}"; do
    known=0
    for t in "${served_list[@]}"; do (( $(bytes_of "$s") == $(bytes_of "$t") )) && known=1; done
    (( known )) || served_list+=("$s")
done
served_sizes=$(IFS=,; echo "${served_list[*]}")
mooncake_bin=""
if (( mooncake )); then
    repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    mooncake_bin=$("$repo_root/scripts/compare-mooncake.sh" --print-peer) \
        || peer_unavailable "scripts/compare-mooncake.sh --print-peer could not provide transfer_engine_bench"
fi

# The namespaces, named after this process; removed on any exit.
readonly NS_A="ddcmp$$a" NS_B="ddcmp$$b" ADDR_A=10.213.0.1 ADDR_B=10.213.0.2
work=$(mktemp -d)
server_pid="" push_server_pid="" mooncake_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    [[ -n "$push_server_pid" ]] && kill "$push_server_pid" 2>/dev/null || true
    [[ -n "$mooncake_pid" ]] && kill "$mooncake_pid" 2>/dev/null || true
    exec 3>&- 4>&- 2>/dev/null || true
    netns_pair_down "$NS_A" "$NS_B"
    rm -rf "$work"
}
source "$(dirname "${BASH_SOURCE[0]}")/netns-pair.sh"
trap cleanup EXIT
netns_pair_up "$NS_A" "$NS_B" "$ADDR_A" "$ADDR_B"
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
export UCX_TLS=${UCX_TLS:-tcp}

# A plain TCP stream: the sender in A writes SIZE-byte buffers for DURATION seconds, the receiver in B counts
# bytes from the first to the end of the stream. Prints GB/s.
readonly TCP_SEND='
import socket, sys, time
size, duration, port = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((sys.argv[4], port)); listener.listen(1); print("READY", flush=True)
connection, _ = listener.accept()
buffer = memoryview(bytearray(b"\x5a" * size)); end = time.monotonic() + duration
while time.monotonic() < end: connection.sendall(buffer)
connection.close()
'
readonly TCP_RECEIVE='
import socket, sys, time
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buffer = memoryview(bytearray(4 << 20)); total = 0; start = None
while True:
    n = connection.recv_into(buffer)
    if n == 0: break
    if start is None: start = time.monotonic()
    total += n
print("%.4f" % (total / (time.monotonic() - start) / 1e9))
'
tcp_stream() {
    local size=$1 port=$((15000 + RANDOM % 1000))
    in_a python3 -c "$TCP_SEND" "$size" "$duration" "$port" "$ADDR_A" > "$work/tcp-ready" &
    local sender=$!
    for _ in $(seq 100); do grep -q READY "$work/tcp-ready" 2>/dev/null && break; sleep 0.05; done
    in_b python3 -c "$TCP_RECEIVE" "$ADDR_A" "$port" || failed "the plain TCP stream at $size bytes"
    wait "$sender"
}

# ucx_perftest ucp_get, the server in A, the reader in B; env arguments (NAME=VALUE, -u NAME) first, then "--" and perftest flags.
# Its bandwidth column is MB/s of 2^20 bytes; printed here as GB/s (10^9). Iterations: about 1 GiB per size.
perftest_get() {
    local size=$1; shift
    local env_words=()
    while [[ "$1" != "--" ]]; do env_words+=("$1"); shift; done
    shift
    local iterations=$(( (1 << 30) / size )) port=$((16000 + RANDOM % 1000))
    (( iterations < 20 )) && iterations=20
    in_a env "${env_words[@]}" ucx_perftest -p "$port" "$@" > "$work/perftest-server" 2>&1 &
    local server=$!
    sleep 0.3
    local out
    out=$(in_b env "${env_words[@]}" timeout 120 ucx_perftest "$ADDR_A" -p "$port" -t ucp_get -s "$size" \
        -n "$iterations" -w 10 -f "$@" 2>&1) || { kill "$server" 2>/dev/null; failed "ucx_perftest at $size: $out"; }
    wait "$server" || true
    awk '$1 ~ /^[0-9]+$/ && NF >= 6 { bw = $6 } END { if (bw == "") exit 1; printf "%.4f\n", bw * 1048576 / 1e9 }' \
        <<< "$out" || failed "no ucx_perftest figure at $size: $out"
}

# Our pull: bench-serve stands in A until its stdin (fd 3 here) closes; bench --connect pulls from B.
readonly SERVE_PORT=17000 PUSH_SERVE_PORT=17001
# Rings of 32 keys of the largest size, so that pull_caches (32 distinct keys per call) runs at every size.
largest=0
for s in "${served_list[@]}"; do b=$(bytes_of "$s"); (( b > largest )) && largest=$b; done
ring_bytes=$(( 32 * largest ))
largest_size=0
for s in "${size_list[@]}"; do b=$(bytes_of "$s"); (( b > largest_size )) && largest_size=$b; done
mkfifo "$work/serve-in"
in_a env DATADIST_TRANSPORT=ucx "$DATADIST" bench-serve --host "$ADDR_A" --port "$SERVE_PORT" --sizes "$served_sizes" \
    --ring-bytes "$ring_bytes" --blocks "$block_size" \
    < "$work/serve-in" > "$work/serve-out" 2> "$work/serve-err" &
server_pid=$!
exec 3> "$work/serve-in"
# The push target: remote cache access on (pulls by key then need the first one), its pull rings one slot each.
mkfifo "$work/push-serve-in"
# 3>&-: it must not hold the first bench-serve's stdin open.
in_a env DATADIST_TRANSPORT=ucx "$DATADIST" bench-serve --host "$ADDR_A" --port "$PUSH_SERVE_PORT" \
    --sizes "$sizes" --ring-bytes "$largest_size" --remote-accessible \
    < "$work/push-serve-in" > "$work/push-serve-out" 2> "$work/push-serve-err" 3>&- &
push_server_pid=$!
exec 4> "$work/push-serve-in"
for _ in $(seq 600); do
    grep -q READY "$work/serve-out" 2>/dev/null && grep -q READY "$work/push-serve-out" 2>/dev/null && break
    sleep 0.1
done
grep -q READY "$work/serve-out" || failed "bench-serve did not start: $(cat "$work/serve-err")"
grep -q READY "$work/push-serve-out" || failed "bench-serve --remote-accessible did not start: $(cat "$work/push-serve-err")"
read -r -a ours_env <<< "$DATADIST_UCX_DEFAULTS"
# Only our defaults the caller did not set, as UCXSettings does.
perftest_ours_env=()
for word in "${ours_env[@]}"; do
    name=${word%%=*}
    if [[ -z "${!name:-}" ]]; then perftest_ours_env+=("$word"); fi
done

# The "UCX defaults" column: without the caller's UCX_* (but UCX_TLS).
ucx_defaults_env=()
for name in $(env | sed -n 's/^\(UCX_[A-Z0-9_]*\)=.*/\1/p'); do
    if [[ "$name" != UCX_TLS ]]; then ucx_defaults_env+=(-u "$name"); fi
done

# Mooncake: one target in A (P2P handshake, no metadata server: the initiator fetches the target's segment from
# its RPC port), one initiator per size and pass in B, reading batches of MOONCAKE_BATCH blocks. Its --duration is
# whole seconds. Prints GB/s (its GB is 10^9 bytes).
mooncake_seconds=$(awk -v d="$duration" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }')
mooncake_port=""
if (( mooncake )); then
    mooncake_largest=0
    for s in "${mooncake_list[@]}"; do b=$(bytes_of "$s"); (( b > mooncake_largest )) && mooncake_largest=$b; done
    mooncake_buffer=$(( mooncake_largest * MOONCAKE_BATCH ))
    : > "$work/mooncake-target"
    # 3>&-: the target must not hold bench-serve's stdin open (bench-serve ends when fd 3 closes).
    # Not through in_a: a function run with & is a subshell, and $! would name it instead of the target.
    ip netns exec "$NS_A" "$mooncake_bin" --mode=target --protocol=tcp --metadata_server=P2PHANDSHAKE --local_server_name="$ADDR_A" \
        --buffer_size="$mooncake_buffer" --batch_size="$MOONCAKE_BATCH" --threads=1 > "$work/mooncake-target" 2>&1 3>&- 4>&- &
    mooncake_pid=$!
    for _ in $(seq 150); do
        mooncake_port=$(sed -n 's/.*P2P handshake, listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/mooncake-target" | head -n 1)
        [[ -n "$mooncake_port" ]] && break
        kill -0 "$mooncake_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$mooncake_port" ]] || peer_unavailable "the Mooncake target did not start: $(tail -3 "$work/mooncake-target")"
    sleep 0.3   # its buffers are registered after the listen line
fi
mooncake_read() {
    local size=$1 log="$work/mooncake-initiator" gbps
    in_b timeout $(( mooncake_seconds + 60 )) "$mooncake_bin" --mode=initiator --operation=read --protocol=tcp \
        --metadata_server=P2PHANDSHAKE --local_server_name="$ADDR_B" --buffer_size="$mooncake_buffer" \
        --batch_size="$MOONCAKE_BATCH" --threads=1 --segment_id="$ADDR_A:$mooncake_port" --block_size="$size" \
        --duration="$mooncake_seconds" --report_unit=GB --report_precision=4 > "$log" 2>&1 3>&- 4>&- \
        || peer_unavailable "the Mooncake initiator at $size bytes: $(tail -3 "$log")"
    gbps=$(sed -n 's/.*Test completed: duration [0-9.]*, batch count [0-9]*, throughput \([0-9.]*\) GB\/s.*/\1/p' "$log" | tail -n 1)
    [[ -n "$gbps" ]] || peer_unavailable "no Mooncake figure at $size bytes: $(tail -3 "$log")"
    echo "$gbps"
}

# Each pass measures every column once, in turn; the table shows each column's best pass, so a burst of load
# from other work on the machine does not land on one column only.
: > "$work/references"
: > "$work/blocks-tcp"
: > "$work/mooncake"
for pass in $(seq "$passes"); do
    echo "compare-cross-host: pass $pass of $passes" >&2
    in_b env DATADIST_TRANSPORT=ucx "$DATADIST" bench --connect "$ADDR_A:$SERVE_PORT" --sizes "$served_sizes" \
        --operations pull_cache,pull_caches,pull_blocks --duration "$duration" --json > "$work/ours-$pass.json" 2> "$work/bench-err" \
        || failed "bench --connect: $(tail -5 "$work/bench-err")"
    in_b env DATADIST_TRANSPORT=ucx "$DATADIST" bench --connect "$ADDR_A:$PUSH_SERVE_PORT" --remote-accessible \
        --sizes "$sizes" --operations push_cache --duration "$duration" --json > "$work/push-$pass.json" \
        2> "$work/bench-err" || failed "bench --connect --remote-accessible: $(tail -5 "$work/bench-err")"
    echo "$(tcp_stream "$block_bytes")" >> "$work/blocks-tcp"
    for s in "${size_list[@]}"; do
        size=$(bytes_of "$s")
        echo "$size $(tcp_stream "$size") $(perftest_get "$size" "${ucx_defaults_env[@]}" --)" \
            "$(perftest_get "$size" "${perftest_ours_env[@]}" --) $(perftest_get "$size" "${perftest_ours_env[@]}" -- -e)" \
            >> "$work/references"
    done
    for s in "${mooncake_list[@]}"; do
        size=$(bytes_of "$s")
        echo "$size $(mooncake_read "$size")" >> "$work/mooncake"
    done
done
if [[ -n "$mooncake_pid" ]]; then kill "$mooncake_pid" 2>/dev/null || true; wait "$mooncake_pid" 2>/dev/null || true; mooncake_pid=""; fi
exec 3>&- 4>&-
wait "$server_pid" || failed "bench-serve exited with an unclean audit: $(tail -3 "$work/serve-out")"
server_pid=""
wait "$push_server_pid" || failed "bench-serve --remote-accessible exited with an unclean audit: $(tail -3 "$work/push-serve-out")"
push_server_pid=""

echo "UCX_TLS=$UCX_TLS; DataDist's UCX defaults: ${perftest_ours_env[*]:-none}; caller's: $(env | grep '^UCX_' | grep -v '^UCX_TLS=' | tr '\n' ' ')"
echo "GB/s, best of $passes passes of ${duration} s; ratios: our pull over each reference"
named_sizes=()
for s in "${size_list[@]}"; do named_sizes+=("$s=$(bytes_of "$s")"); done
mooncake_named=""
for s in "${mooncake_list[@]}"; do mooncake_named+="$s=$(bytes_of "$s"),"; done
python3 - "$work" "$passes" "$mooncake_named" "$block_size" "${named_sizes[@]}" <<'PY' || failed "no verified pull_cache, pull_blocks or push_cache row"
import json, sys
work, passes = sys.argv[1], int(sys.argv[2])
mooncake_named = [(n, int(b)) for n, b in (a.split("=") for a in sys.argv[3].split(",") if a)]
block_name = sys.argv[4]
named = [(n, int(b)) for n, b in (a.split("=") for a in sys.argv[5:])]
ours, batches, pushes, blocks = {}, {}, {}, {}
for p in range(1, passes + 1):
    for row in json.load(open(f"{work}/ours-{p}.json")) + json.load(open(f"{work}/push-{p}.json")):
        if row["operation"] not in ("pull_cache", "pull_caches", "pull_blocks", "push_cache") \
                or row.get("p50us") is not None:
            continue
        if not row["verified"]:
            sys.exit(f"pass {p}: the {row['operation']} row at {row['bytes']} bytes moved wrong bytes")
        if row["transport"] != "ucx":
            sys.exit(f"pass {p}: the {row['operation']} row at {row['bytes']} bytes went over {row['transport']}")
        if row["operation"] == "pull_cache":
            ours[row["bytes"]] = max(ours.get(row["bytes"], 0), row["gbps"])
        elif row["operation"] == "push_cache":
            pushes[row["bytes"]] = max(pushes.get(row["bytes"], 0), row["gbps"])
        elif row["operation"] == "pull_blocks":
            kind = "scattered" if "scattered" in row["pattern"] else "adjacent"
            blocks[kind] = max(blocks.get(kind, 0), row["gbps"])
        else:
            size = row["bytes"] // row["batch"]
            batches[size] = max(batches.get(size, 0), row["gbps"])
blocks_tcp = max(float(line) for line in open(f"{work}/blocks-tcp"))
refs = {}
for line in open(f"{work}/references"):
    size, *values = line.split()
    best = refs.setdefault(int(size), [0.0] * 4)
    refs[int(size)] = [max(a, float(b)) for a, b in zip(best, values)]
print("%-8s %9s %11s %11s %11s %11s %9s %9s %9s %10s %9s %9s %9s" % (
    "size", "pull", "tcp stream", "perftest", "pt ours", "pt ours -e", "×tcp", "×pt ours", "×pt -e", "batch ×32",
    "batch×tcp", "push", "push×tcp"))
for name, size in named:
    if size not in ours:
        sys.exit(f"no pull_cache row at {name}")
    tcp, plain, tuned, tuned_e = refs[size]
    o = ours[size]
    b = batches.get(size)
    batch = ("%10.2f %8.2fx" % (b, b / tcp)) if b else "%10s %9s" % ("-", "-")
    if size not in pushes:
        sys.exit(f"no push_cache row at {name}")
    u = pushes[size]
    print("%-8s %9.2f %11.2f %11.2f %11.2f %11.2f %8.2fx %8.2fx %8.2fx %s %9.2f %8.2fx" % (
        name, o, tcp, plain, tuned, tuned_e, o / tcp, o / tuned, o / tuned_e, batch, u, u / tcp))
print()
print(f"pull_blocks: 61 layers × 2 tensors, 64 of 128 blocks of {block_name} per call (GB/s of the call), beside a")
print(f"TCP stream of {block_name} writes first → second; best of {passes} passes")
print("%-10s %12s %11s %10s" % ("blocks", "pull_blocks", "tcp stream", "blocks×tcp"))
for kind in ("scattered", "adjacent"):
    if kind not in blocks:
        sys.exit(f"no {kind} pull_blocks row")
    print("%-10s %12.2f %11.2f %9.2fx" % (kind, blocks[kind], blocks_tcp, blocks[kind] / blocks_tcp))
if mooncake_named:
    mooncake = {}
    for line in open(f"{work}/mooncake"):
        size, gbps = line.split()
        mooncake[int(size)] = max(mooncake.get(int(size), 0.0), float(gbps))
    print()
    print("Mooncake transfer engine (TCP, P2P handshake, READ, batch of 32, 1 thread) vs our pull_caches (32 keys per call),")
    print("same namespaces; GB/s of the whole batch, best of %d passes" % passes)
    print("%-8s %12s %14s %12s" % ("size", "Mooncake", "pull_caches", "×Mooncake"))
    for name, size in mooncake_named:
        b = batches.get(size)
        if b is None:
            sys.exit(f"no pull_caches row at {name}")
        print("%-8s %12.2f %14.2f %11.2fx" % (name, mooncake[size], b, b / mooncake[size]))
PY
