#!/usr/bin/env bash
# Side by side on loopback: Mooncake's transfer engine (TCP, `transfer_engine_bench`, READ, batch 32) against
# `datadist bench` at the same sizes, in one invocation: our `pull_caches` row (pullCaches, 32 request keys per
# call: batch against batch) and our single `pull_cache` row. Prints per size: Mooncake GB/s, pull_caches GB/s and
# its ratio to Mooncake, pull_cache GB/s and its ratio. Optional to CI: needs PyPI (and apt for libibverbs1) the
# first time.
#
# Exit codes: 0 table printed; 1 our side failed (build, bench, JSON); 2 usage;
#             3 the peer (Mooncake) could not be installed or run — see scripts/README.md.
# Facts about the peer's flags, output and units: scripts/README.md.
set -euo pipefail

readonly EXIT_OURS_FAILED=1
readonly EXIT_USAGE=2
readonly EXIT_PEER_UNAVAILABLE=3
readonly MOONCAKE_PACKAGE="mooncake-transfer-engine-non-cuda==0.3.13.post1"

readonly DEFAULT_SIZES="16KiB,64KiB,256KiB,1MiB,4MiB"
readonly DEFAULT_DURATION=3   # seconds per size for Mooncake's initiator (its --duration is an integer)
readonly DEFAULT_THREADS=1    # Mooncake submission threads (our pull_cache is called from one thread)
readonly DEFAULT_BATCH=32     # Mooncake requests per batch (our pull_caches row always pulls 32 keys per call)
sizes=$DEFAULT_SIZES duration=$DEFAULT_DURATION threads=$DEFAULT_THREADS batch=$DEFAULT_BATCH peer_only=0 print_peer=0

usage() {
    cat <<EOF
usage: $0 [--sizes LIST] [--duration SECONDS] [--threads N] [--batch N] [--peer-only]
  --sizes LIST      comma-separated sizes, suffix KiB/MiB/GiB or plain bytes (default $DEFAULT_SIZES)
  --duration S      seconds per size for Mooncake's initiator, integer >= 1 (default $DEFAULT_DURATION)
  --threads N       Mooncake submission threads (default $DEFAULT_THREADS)
  --batch N         Mooncake requests per batch (default $DEFAULT_BATCH)
  --peer-only       run only Mooncake (DataDist column shows "-")
  --print-peer      install Mooncake if needed, print the path of its transfer_engine_bench and exit
                    (scripts/compare-cross-host.sh --mooncake uses it)
environment:
  DATADIST             our binary (default .build/release/datadist, built with 'swift build -c release' if missing)
  DATADIST_BENCH_ARGS  extra arguments for 'datadist bench' (word-split), e.g. "--duration 2"
  MOONCAKE_CACHE_DIR   venv location (default \${XDG_CACHE_HOME:-\$HOME/.cache}/datadist-mooncake)
  PYTHON               interpreter that creates the venv (default python3)
exit codes: 0 ok, 1 our side failed, 2 usage, 3 Mooncake could not be installed or run
EOF
}

die_usage() { echo "compare-mooncake: $*" >&2; echo "see: $0 --help" >&2; exit "$EXIT_USAGE"; }
peer_unavailable() {
    echo "compare-mooncake: PEER UNAVAILABLE: $*" >&2
    echo "compare-mooncake: Mooncake could not be installed or run; no comparison made (exit $EXIT_PEER_UNAVAILABLE)." >&2
    exit "$EXIT_PEER_UNAVAILABLE"
}
ours_failed() { echo "compare-mooncake: DataDist side failed: $*" >&2; exit "$EXIT_OURS_FAILED"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && (( 10#$1 >= 1 )); }

while (( $# > 0 )); do
    case "$1" in
        --sizes) (( $# >= 2 )) || die_usage "--sizes needs a value"; sizes="$2"; shift 2 ;;
        --duration) (( $# >= 2 )) || die_usage "--duration needs a value"; duration="$2"; shift 2 ;;
        --threads) (( $# >= 2 )) || die_usage "--threads needs a value"; threads="$2"; shift 2 ;;
        --batch) (( $# >= 2 )) || die_usage "--batch needs a value"; batch="$2"; shift 2 ;;
        --peer-only) peer_only=1; shift ;;
        --print-peer) print_peer=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die_usage "unknown argument '$1'" ;;
    esac
done
is_uint "$duration" || die_usage "--duration must be an integer >= 1, got '$duration'"
is_uint "$threads" || die_usage "--threads must be an integer >= 1, got '$threads'"
is_uint "$batch" || die_usage "--batch must be an integer >= 1, got '$batch'"

# "16KiB" -> 16384; rejects anything else.
to_bytes() {
    local s="$1" n unit
    [[ "$s" =~ ^([0-9]+)(KiB|MiB|GiB|B)?$ ]] || return 1
    n=$((10#${BASH_REMATCH[1]})); unit="${BASH_REMATCH[2]}"
    case "$unit" in
        KiB) echo $((n << 10)) ;; MiB) echo $((n << 20)) ;; GiB) echo $((n << 30)) ;; *) echo "$n" ;;
    esac
}
IFS=',' read -r -a size_labels <<< "$sizes"
size_bytes=()
for label in "${size_labels[@]}"; do
    b=$(to_bytes "$label") && (( b > 0 )) || die_usage "bad size '$label' in --sizes (want e.g. 16KiB, 1MiB, 4096)"
    size_bytes+=("$b")
done
(( ${#size_bytes[@]} > 0 )) || die_usage "--sizes is empty"

invocation_dir=$(pwd)
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
command -v "$python" >/dev/null || peer_unavailable "'$python' not found (needed for the venv and the table)"

work=$(mktemp -d "${TMPDIR:-/tmp}/compare-mooncake.XXXXXX")
target_pid=""
stop_target() {
    [[ -n "$target_pid" ]] || return 0
    if kill -0 "$target_pid" 2>/dev/null; then
        kill -TERM "$target_pid" 2>/dev/null || true      # the target exits its sleep loop on SIGTERM
        for _ in $(seq 1 30); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$target_pid" 2>/dev/null || true
    fi
    wait "$target_pid" 2>/dev/null || true
    target_pid=""
}
cleanup() { stop_target; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------------------
# 1. The peer: venv + wheel, shared libraries, binary.
cache_dir=${MOONCAKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/datadist-mooncake}
venv="$cache_dir/venv"

# Prints the path of transfer_engine_bench inside the installed wheel (without importing mooncake: its
# __init__ pulls in more than the path lookup needs).
locate_bench() {
    "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.util, os, sys
spec = importlib.util.find_spec("mooncake")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
for d in spec.submodule_search_locations:
    p = os.path.join(d, "transfer_engine_bench")
    if os.path.isfile(p):
        print(p)
        sys.exit(0)
sys.exit(1)
PY
}

bench_bin=""
if [[ -x "$venv/bin/python" ]]; then bench_bin=$(locate_bench || true); fi
if [[ -z "$bench_bin" ]]; then
    echo "compare-mooncake: installing $MOONCAKE_PACKAGE into $venv (PyPI)" >&2
    mkdir -p "$cache_dir" || peer_unavailable "cannot create $cache_dir"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$python" -m venv "$venv" >"$work/venv.log" 2>&1 \
            || { tail -n 5 "$work/venv.log" >&2; peer_unavailable "'$python -m venv $venv' failed (Debian: apt-get install python3-venv)"; }
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "$MOONCAKE_PACKAGE" >"$work/pip.log" 2>&1 \
        || { tail -n 5 "$work/pip.log" >&2; peer_unavailable "pip could not install $MOONCAKE_PACKAGE (is PyPI reachable? is there a wheel for $(uname -m)?)"; }
    bench_bin=$(locate_bench || true)
    [[ -n "$bench_bin" ]] || peer_unavailable "the wheel has no mooncake/transfer_engine_bench"
fi
[[ -x "$bench_bin" ]] || chmod +x "$bench_bin" 2>/dev/null || peer_unavailable "$bench_bin is not executable"

# Shared libraries the wheel does not bundle. Known ones map to Debian packages (apt-get, as root or with sudo -n).
missing_libs() { ldd "$bench_bin" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u; }
debian_package_for() {
    case "$1" in
        libibverbs.so.1) echo libibverbs1 ;; libnuma.so.1) echo libnuma1 ;; libcurl.so.4) echo libcurl4 ;;
        libstdc++.so.6) echo libstdc++6 ;; *) echo "" ;;
    esac
}
if command -v ldd >/dev/null; then
    missing=$(missing_libs)
    if [[ -n "$missing" ]]; then
        packages=""; unknown=""
        for lib in $missing; do
            p=$(debian_package_for "$lib"); if [[ -n "$p" ]]; then packages="$packages $p"; else unknown="$unknown $lib"; fi
        done
        [[ -z "$unknown" ]] || peer_unavailable "transfer_engine_bench needs shared libraries with no known package:$unknown"
        if [[ "$(id -u)" -eq 0 ]]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo="none"; fi
        command -v apt-get >/dev/null && [[ "$sudo" != none ]] \
            || peer_unavailable "transfer_engine_bench needs:$missing — install the Debian packages:$packages"
        echo "compare-mooncake: installing Debian packages:$packages" >&2
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages; } \
            >"$work/apt.log" 2>&1 || { tail -n 5 "$work/apt.log" >&2; peer_unavailable "apt-get install$packages failed"; }
        missing=$(missing_libs)
        [[ -z "$missing" ]] || peer_unavailable "still missing after apt-get:$missing"
    fi
fi
if (( print_peer )); then echo "$bench_bin"; exit 0; fi

# ---------------------------------------------------------------------------------------------------------------
# 2. Our binary, resolved (and built) before anything is timed.
datadist=""
if (( peer_only == 0 )); then
    if [[ -n "${DATADIST:-}" ]]; then
        datadist=$DATADIST
        [[ "$datadist" = /* ]] || datadist="$invocation_dir/$datadist"
        [[ -x "$datadist" ]] || ours_failed "DATADIST=$DATADIST is not an executable"
    else
        datadist="$repo_root/.build/release/datadist"
        if [[ ! -x "$datadist" ]]; then
            echo "compare-mooncake: building $datadist (swift build -c release)" >&2
            (cd "$repo_root" && swift build -c release --product datadist >&2) || ours_failed "swift build -c release failed"
        fi
    fi
fi

# ---------------------------------------------------------------------------------------------------------------
# 3. Mooncake: one target for all sizes, one initiator per size.
max_bytes=0
for b in "${size_bytes[@]}"; do if (( b > max_bytes )); then max_bytes=$b; fi; done
# The initiator addresses block_size * (i * threads + thread) for i < batch in the target's buffer.
buffer_size=$(( max_bytes * batch * threads ))
common=(--protocol=tcp --metadata_server=P2PHANDSHAKE --local_server_name=127.0.0.1
        --buffer_size="$buffer_size" --batch_size="$batch" --threads="$threads")

: >"$work/target.log"   # exists before the background child opens it
"$bench_bin" --mode=target "${common[@]}" >"$work/target.log" 2>&1 &
target_pid=$!
port=""
for _ in $(seq 1 150); do
    port=$(sed -n 's/.*P2P handshake, listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$work/target.log" | head -n 1 || true)
    [[ -n "$port" ]] && break
    kill -0 "$target_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$port" ]]; then
    tail -n 8 "$work/target.log" >&2
    peer_unavailable "the Mooncake target did not start (no 'P2P handshake, listening on' line within 15 s)"
fi
sleep 0.3   # buffers registered after the listen line; the initiator's handshake fetches them
kill -0 "$target_pid" 2>/dev/null || { tail -n 8 "$work/target.log" >&2; peer_unavailable "the Mooncake target exited"; }
echo "compare-mooncake: Mooncake target on 127.0.0.1:$port (TCP, buffer $buffer_size B); $duration s per size" >&2

: >"$work/mooncake.tsv"
peer_failures=0
for idx in "${!size_bytes[@]}"; do
    b=${size_bytes[$idx]}; label=${size_labels[$idx]}
    log="$work/initiator-$b.log"
    echo "compare-mooncake: Mooncake read $label x batch $batch ..." >&2
    rc=0
    timeout $(( duration + 60 )) "$bench_bin" --mode=initiator --operation=read "${common[@]}" \
        --segment_id="127.0.0.1:$port" --block_size="$b" --duration="$duration" \
        --report_unit=GB --report_precision=4 >"$log" 2>&1 || rc=$?
    # glog line on stderr: "... Test completed: duration 3.01, batch count 832, throughput 0.1450 GB/s"
    gbps=$(sed -n 's/.*Test completed: duration [0-9.]*, batch count [0-9]*, throughput \([0-9.]*\) GB\/s.*/\1/p' "$log" | tail -n 1 || true)
    if (( rc != 0 )) || [[ -z "$gbps" ]]; then
        echo "compare-mooncake: Mooncake initiator failed at $label (exit $rc):" >&2
        tail -n 4 "$log" >&2
        gbps="failed"; peer_failures=$((peer_failures + 1))
    fi
    printf '%s\t%s\t%s\n' "$b" "$label" "$gbps" >>"$work/mooncake.tsv"
done
stop_target
(( peer_failures < ${#size_bytes[@]} )) || peer_unavailable "the Mooncake initiator failed at every size"

# ---------------------------------------------------------------------------------------------------------------
# 4. Ours, same sizes.
echo "[]" >"$work/datadist.json"
if (( peer_only == 0 )); then
    # shellcheck disable=SC2086  # DATADIST_BENCH_ARGS is word-split on purpose
    "$datadist" bench --json --sizes "$sizes" --operations pull_cache,pull_caches ${DATADIST_BENCH_ARGS:-} >"$work/datadist.json" \
        || ours_failed "'$datadist bench --json --sizes $sizes --operations pull_cache,pull_caches' exited with $?"
fi

# ---------------------------------------------------------------------------------------------------------------
# 5. The table.
"$python" - "$work/mooncake.tsv" "$work/datadist.json" "$batch" "$threads" "$peer_only" <<'PY' || exit "$EXIT_OURS_FAILED"
import json, sys

tsv, ours_path, batch, threads, peer_only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1"
peer = []
with open(tsv) as f:
    for line in f:
        b, label, gbps = line.rstrip("\n").split("\t")
        peer.append((int(b), label, None if gbps == "failed" else float(gbps)))

try:
    with open(ours_path) as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError("top level is not an array")
except (OSError, ValueError) as e:
    sys.exit(f"compare-mooncake: datadist bench --json output unreadable: {e}")

# Per size: the single pull_cache bandwidth row (latency rows, with p50us, only if nothing else is there) and
# the pull_caches row (bytes = batch x size; GB/s of the whole batch; skipped by the bench above 16 MiB).
single, batched = {}, {}
for r in rows:
    if not isinstance(r, dict):
        continue
    try:
        op, b, gbps = r.get("operation"), int(r["bytes"]), float(r["gbps"])
    except (KeyError, TypeError, ValueError):
        continue
    if op == "pull_cache":
        latency = "p50us" in r
        if b not in single or (single[b][2] and not latency):
            single[b] = (gbps, r.get("ratio"), latency)
    elif op == "pull_caches" and isinstance(r.get("batch"), int) and r["batch"] > 0:
        batched[b // r["batch"]] = (gbps, r.get("ratio"), r["batch"])

def fmt(x, spec, suffix=""):
    return "-" if x is None else format(x, spec) + suffix

def vs(ours, mc):
    return ours / mc if (ours is not None and mc) else None

missing = []
our_batches = sorted({v[2] for v in batched.values()})
print(f"pull / READ on 127.0.0.1; GB/s = 10^9 bytes/s; Mooncake: TCP transport, batch {batch}, {threads} thread(s); "
      f"pull_caches: {', '.join(map(str, our_batches)) or '-'} keys per call, one thread; pull_cache: one key per call; "
      f"ceiling = pull_caches GB/s / single-thread memcpy")
if our_batches and our_batches != [int(batch)]:
    print(f"note: Mooncake ran batch {batch}, our pull_caches row pulls {our_batches[0]} keys per call")
header = ("size", "Mooncake GB/s", "pull_caches GB/s", "vs Mooncake", "pull_cache GB/s", "vs Mooncake", "ceiling")
print(f"{header[0]:>8} {header[1]:>14} {header[2]:>17} {header[3]:>12} {header[4]:>16} {header[5]:>12} {header[6]:>8}")
for b, label, mc in peer:
    one, many = single.get(b), batched.get(b)
    if not peer_only:
        if one is None:
            missing.append(f"pull_cache {label}")
        if many is None and b <= 16 << 20:
            missing.append(f"pull_caches {label}")
    one_gbps = one[0] if one else None
    many_gbps = many[0] if many else None
    ceiling = float(many[1]) if many and isinstance(many[1], (int, float)) else None
    mc_text = "failed" if mc is None else format(mc, ".3f")
    print(f"{label:>8} {mc_text:>14} {fmt(many_gbps, '.3f'):>17} {fmt(vs(many_gbps, mc), '.1f', 'x'):>12}"
          f" {fmt(one_gbps, '.3f'):>16} {fmt(vs(one_gbps, mc), '.1f', 'x'):>12} {fmt(ceiling, '.2f'):>8}")
if missing:
    sys.exit(f"compare-mooncake: datadist bench printed no row for: {', '.join(missing)}")
PY

if (( peer_failures > 0 )); then
    peer_unavailable "the Mooncake initiator failed at $peer_failures of ${#size_bytes[@]} sizes (marked 'failed' above)"
fi
