#!/usr/bin/env bash
# Same-host pulls on the ACL backend (the fake vendor library: device pools exported and imported by IPC key,
# device-to-device aclrtMemcpy) beside the emulator's (memfd mapping), in one run: `datadist bench --operations
# pull_cache` (prefix keys, one tensor per size) with each backend in turn, PASSES times, so both see the same
# machine. Prints per size each backend's median GB/s (10^9 bytes/s), each beside its own median single-thread
# memcpy ceiling, and the ratio ACL ÷ emulator of the medians.
#
# Exit codes: 0 table printed; 1 a bench run failed; 2 usage or a missing binary.
set -euo pipefail

sizes="1MiB,4MiB,16MiB" duration=1 passes=3
usage() {
    cat <<EOF
usage: $0 [--sizes LIST] [--duration SECONDS] [--passes N]
  --sizes LIST     sizes as datadist bench --sizes takes them (default $sizes)
  --duration S     seconds per measurement (default $duration)
  --passes N       bench runs per backend, alternating (default $passes)
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
for pass in $(seq "$passes"); do
    for backend in emulator acl; do
        echo "compare-acl-ipc: pass $pass, $backend" >&2
        # 8 GiB of fake device memory per device: the bench's pools and rings fit.
        DATADIST_BACKEND=$backend DATADIST_ACL_LIBRARY=$FAKE_ACL FAKE_ACL_DEVICE_MEMORY=8589934592 \
            "$DATADIST" bench --json --operations pull_cache --sizes "$sizes" --duration "$duration" \
            > "$work/$backend-$pass.json" 2> "$work/$backend-$pass.err" \
            || { cat "$work/$backend-$pass.err" >&2; echo "compare-acl-ipc: FAILED: bench on $backend" >&2; exit 1; }
    done
done

python3 - "$work" <<'EOF'
import glob, json, statistics, sys
work = sys.argv[1]
figures = {}  # (backend, bytes) -> [(gbps, ceiling)]
for backend in ("emulator", "acl"):
    for path in glob.glob(f"{work}/{backend}-*.json"):
        for row in json.load(open(path)):
            if row["operation"] == "pull_cache" and row["keys"] == "prefix":
                figures.setdefault((backend, row["bytes"]), []).append((row["gbps"], row["ceilingGBps"]))
def median(backend, size, index):
    return statistics.median(value[index] for value in figures[(backend, size)])
print(f"{'size':>10}  {'emulator GB/s':>13}  {'memcpy':>7}  {'ACL GB/s':>9}  {'memcpy':>7}  ACL ÷ emulator")
for size in sorted({size for _, size in figures}):
    emulator, acl = median("emulator", size, 0), median("acl", size, 0)
    label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
    print(f"{label:>10}  {emulator:13.2f}  {median('emulator', size, 1):7.2f}  {acl:9.2f}  "
          f"{median('acl', size, 1):7.2f}  {acl / emulator:.2f}×")
EOF
