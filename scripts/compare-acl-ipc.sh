#!/usr/bin/env bash
# Same-host pulls on the ACL backend (the fake vendor library: device pools exported and imported by IPC key,
# device-to-device aclrtMemcpy) beside the emulator's (memfd mapping), in one run: `datadist bench --operations
# pull_cache` (prefix keys, one tensor per size) with each backend in turn, PASSES times, so both see the same
# machine. Prints per size each backend's median GB/s (10^9 bytes/s), each beside its own median single-thread
# memcpy ceiling, and the ratio ACL ÷ emulator of the medians.
#
# With --cross-host: across two network namespaces joined by a veth pair, UCX on TCP (`datadist bench-serve
# --host` in the first, `bench --connect` in the second, pull_cache rows): the ACL backend's pulls, whose device
# memory is staged through pinned host buffers, beside the emulator's, whose host-memory pools UCX sends
# directly. Needs root (ip netns) and iproute2.
#
# Exit codes: 0 table printed; 1 a bench run failed; 2 usage or a missing binary.
set -euo pipefail

sizes="1MiB,4MiB,16MiB" duration=1 passes=3 cross_host=0
usage() {
    cat <<EOF
usage: $0 [--sizes LIST] [--duration SECONDS] [--passes N]
  --sizes LIST     sizes as datadist bench --sizes takes them (default $sizes)
  --duration S     seconds per measurement (default $duration)
  --passes N       bench runs per backend, alternating (default $passes)
  --cross-host     between two network namespaces over UCX on TCP (staged ACL pulls vs the emulator's)
environment:
  DATADIST   our binary (default .build/release/datadist)
  FAKE_ACL   the fake ACL library (default .build/release/lib_FakeAscendCL.so;
             swift build -c release --product datadist --product _FakeAscendCL)
EOF
}
die() { echo "compare-acl-ipc: $*" >&2; exit 2; }
while (( $# > 0 )); do
    case "$1" in
        --sizes) (( $# >= 2 )) || die "--sizes needs a value"; sizes="$2"; shift 2 ;;
        --duration) (( $# >= 2 )) || die "--duration needs a value"; duration="$2"; shift 2 ;;
        --passes) (( $# >= 2 )) || die "--passes needs a value"; passes="$2"; shift 2 ;;
        --cross-host) cross_host=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1'" ;;
    esac
done
[[ "$passes" =~ ^[1-9][0-9]*$ ]] || die "--passes $passes is not a count of 1 or more"
DATADIST=${DATADIST:-.build/release/datadist}
FAKE_ACL=${FAKE_ACL:-.build/release/lib_FakeAscendCL.so}
[[ -x "$DATADIST" ]] || die "no $DATADIST"
[[ -f "$FAKE_ACL" ]] || die "no $FAKE_ACL"
FAKE_ACL=$(realpath "$FAKE_ACL")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One pass of the cross-host comparison for one backend: bench-serve in A until its stdin closes, bench in B.
readonly NS_A="ddacl$$a" NS_B="ddacl$$b" ADDR_A=10.213.0.1 SERVE_PORT=17100
cross_host_pass() {
    local backend=$1 out=$2
    local env_words=(DATADIST_BACKEND="$backend" DATADIST_ACL_LIBRARY="$FAKE_ACL" FAKE_ACL_DEVICE_MEMORY=8589934592
        DATADIST_TRANSPORT=ucx UCX_TLS="${UCX_TLS:-tcp}")
    rm -f "$work/serve-in"; mkfifo "$work/serve-in"
    ip netns exec "$NS_A" env "${env_words[@]}" "$DATADIST" bench-serve --host "$ADDR_A" --port "$SERVE_PORT" \
        --sizes "$sizes" < "$work/serve-in" > "$work/serve-out" 2> "$work/serve-err" &
    local server=$!
    exec 3> "$work/serve-in"
    for _ in $(seq 600); do grep -q READY "$work/serve-out" 2>/dev/null && break; sleep 0.1; done
    grep -q READY "$work/serve-out" || { cat "$work/serve-err" >&2; echo "compare-acl-ipc: FAILED: bench-serve on $backend" >&2; exit 1; }
    ip netns exec "$NS_B" env "${env_words[@]}" "$DATADIST" bench --connect "$ADDR_A:$SERVE_PORT" --json \
        --operations pull_cache --sizes "$sizes" --duration "$duration" > "$out" 2> "$work/bench-err" \
        || { cat "$work/bench-err" >&2; echo "compare-acl-ipc: FAILED: bench --connect on $backend" >&2; exit 1; }
    exec 3>&-
    wait "$server" || { echo "compare-acl-ipc: FAILED: bench-serve on $backend exited unclean" >&2; exit 1; }
}
if (( cross_host )); then
    (( EUID == 0 )) || die "--cross-host needs root (network namespaces)"
    command -v ip >/dev/null || die "--cross-host needs iproute2"
    source "$(dirname "${BASH_SOURCE[0]}")/netns-pair.sh"
    trap 'netns_pair_down "$NS_A" "$NS_B"; rm -rf "$work"' EXIT
    netns_pair_up "$NS_A" "$NS_B" "$ADDR_A" 10.213.0.2
fi

for pass in $(seq "$passes"); do
    for backend in emulator acl; do
        echo "compare-acl-ipc: pass $pass, $backend" >&2
        if (( cross_host )); then
            cross_host_pass "$backend" "$work/$backend-$pass.json"
            continue
        fi
        # 8 GiB of fake device memory per device: the bench's pools and rings fit.
        DATADIST_BACKEND=$backend DATADIST_ACL_LIBRARY=$FAKE_ACL FAKE_ACL_DEVICE_MEMORY=8589934592 \
            "$DATADIST" bench --json --operations pull_cache --sizes "$sizes" --duration "$duration" \
            > "$work/$backend-$pass.json" 2> "$work/$backend-$pass.err" \
            || { cat "$work/$backend-$pass.err" >&2; echo "compare-acl-ipc: FAILED: bench on $backend" >&2; exit 1; }
    done
done

python3 - "$work" "$cross_host" <<'EOF'
import glob, json, statistics, sys
work, cross_host = sys.argv[1], sys.argv[2] == "1"
figures = {}  # (backend, bytes) -> [(gbps, ceiling)]
for backend in ("emulator", "acl"):
    for path in glob.glob(f"{work}/{backend}-*.json"):
        for row in json.load(open(path)):
            if row["operation"] != "pull_cache":
                continue
            if cross_host:
                if row.get("p50us") is not None:
                    continue
                if not row["verified"]:
                    sys.exit(f"{path}: the pull_cache row at {row['bytes']} bytes moved wrong bytes")
                figures.setdefault((backend, row["bytes"]), []).append((row["gbps"], 0.0))
            elif row["keys"] == "prefix":
                figures.setdefault((backend, row["bytes"]), []).append((row["gbps"], row["ceilingGBps"]))
def median(backend, size, index):
    return statistics.median(value[index] for value in figures[(backend, size)])
if cross_host:
    print("across two network namespaces, UCX on TCP; median GB/s of the passes")
    print(f"{'size':>10}  {'emulator (host memory) GB/s':>27}  {'ACL staged GB/s':>15}  ACL ÷ emulator")
    for size in sorted({size for _, size in figures}):
        emulator, acl = median("emulator", size, 0), median("acl", size, 0)
        label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
        print(f"{label:>10}  {emulator:27.2f}  {acl:15.2f}  {acl / emulator:.2f}×")
    sys.exit(0)
print(f"{'size':>10}  {'emulator GB/s':>13}  {'memcpy':>7}  {'ACL GB/s':>9}  {'memcpy':>7}  ACL ÷ emulator")
for size in sorted({size for _, size in figures}):
    emulator, acl = median("emulator", size, 0), median("acl", size, 0)
    label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
    print(f"{label:>10}  {emulator:13.2f}  {median('emulator', size, 1):7.2f}  {acl:9.2f}  "
          f"{median('acl', size, 1):7.2f}  {acl / emulator:.2f}×")
EOF
