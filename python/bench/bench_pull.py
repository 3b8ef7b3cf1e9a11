"""pull_cache through Python (llm_datadist) beside the same pulls through Swift and through C, in one run.

    python3 python/bench/bench_pull.py [--datadist .build/release/datadist] [--duration 1.0] [--rounds 2]

Rows, each measured the way `datadist bench` measures its pull_cache rows: 16 KiB latency (request keys,
consumed by the pull; p50/p99 of the whole pull_cache call, the key built beforehand), and 1 MiB / 16 MiB
bandwidth (one tensor per pull through prefix keys, never consumed; source and destination rotate over 128 MiB
rings). Every decoder pulls from the same prompt program, `datadist bench-serve`:

- Python: this process, through llm_datadist;
- Swift: `datadist bench-pull`, a decoder process making the same pull_cache calls through the Swift API, told on
  stdin when to pull;
- C: pull_loop.c, built here with `cc` against datadist.h and the package's libdatadist_c.so, making the same
  calls in this process on the same link and caches (without a C compiler that column is left out).

- control: a second `datadist bench-pull`, identical to the first: Swift over it is the spread of the method
  itself (two processes doing the same thing) under the machine's load.

They take turns under the same load: bandwidth in bursts of 20 ms (the ratios are medians over each run of
adjacent bursts, whose order rotates), latency in blocks of 64 keys (each side's p50 over all its blocks of the
round; the ratio is the median over the rounds). Python over Swift is the goal's ratio; Python over C is what
the Python layer and ctypes cost per pull. The first and last pull of every row are verified byte for byte, and
every audit must be clean. `make python-bench` builds and runs it.
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import llm_datadist as ld
from llm_datadist import _native

PROMPT, DECODER, SWIFT_DECODER, CONTROL_DECODER = 1, 2, 3, 4
RING = 128 << 20
UINT64_MAX = (1 << 64) - 1
BURST = 0.02  # seconds per bandwidth burst of one side
BLOCK = 64  # request keys per latency block of one side


def kv_pattern(request: int, nbytes: int) -> np.ndarray:
    """The bytes `datadist bench-serve` writes into a slot (KVPattern.word for tensor 0), as uint8."""
    with np.errstate(over="ignore"):
        index = np.arange(nbytes // 8, dtype=np.uint64)
        x = np.uint64(((request + 1) * 0x9E3779B97F4A7C15) % (1 << 64)) ^ np.uint64(0xC2B2AE3D27D4EB4F) ^ index
        x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(29))
    return x.view(np.uint8)


def check(cache: ld.Cache, slot: int, request: int) -> bool:
    view = cache.as_numpy()[0]
    row = view[slot].reshape(-1).view(np.uint8)
    return bool(np.array_equal(row, kv_pattern(request, row.size)))


def build_native():
    """pull_loop.c as a shared library over the loaded libdatadist_c.so (the same instance: same handles), or None
    when it cannot be built (no C compiler)."""
    library = _native.library_path()
    lib_dir = os.path.dirname(library)
    include = os.path.join(lib_dir, "include")
    if not os.path.isdir(include):  # DATADIST_C_LIBRARY pointing into .build: the header of the checkout
        include = os.path.join(os.path.dirname(__file__), "..", "..", "Sources", "CDataDist", "include")
    output = os.path.join(tempfile.mkdtemp(prefix="bench_pull"), "libpull_loop.so")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pull_loop.c")
    command = [os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-I", include, source, "-o", output,
               "-L", lib_dir, "-l:" + os.path.basename(library), "-Wl,-rpath," + lib_dir]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"no C reference column: {' '.join(command)} failed: {getattr(error, 'stderr', error)}",
              file=sys.stderr)
        return None
    native = ctypes.CDLL(output)
    i64, p = ctypes.c_int64, ctypes.c_void_p
    native.bench_pull_ring.restype = i64
    native.bench_pull_ring.argtypes = [p, p, p, i64, i64, i64, ctypes.POINTER(i64)]
    native.bench_pull_each.restype = ctypes.c_uint32
    native.bench_pull_each.argtypes = [p, p, p, p, i64, p]
    return native


def c_keys(keys) -> ctypes.Array:
    return (_native.CacheKeyC * len(keys))(*[key._to_c() for key in keys])


class Child:
    """A `datadist` subcommand driven over stdin, answering each command line with one JSON line."""

    def __init__(self, arguments) -> None:
        self.name = arguments[1]
        self.process = subprocess.Popen(arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.first = self.read()

    def read(self) -> dict:
        reply = json.loads(self.process.stdout.readline())
        if reply["event"] == "error" or (reply["event"] == "exit" and reply.get("error")):
            raise SystemExit(f"{self.name}: {reply}")
        return reply

    def send(self, *words) -> dict:
        self.process.stdin.write(" ".join(str(word) for word in words) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> bool:
        """Closes stdin; whether the child exited 0 with a clean audit."""
        self.process.stdin.close()
        reply = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return bool(reply.get("audit", {}).get("clean")) and self.process.returncode == 0


class Prompt(Child):
    """`datadist bench-serve`, the prompt process `datadist bench` itself uses."""

    def __init__(self, datadist: str) -> None:
        super().__init__([datadist, "bench-serve", "--cluster-id", str(PROMPT), "--pool-bytes", str(3 * RING)])
        self.port = self.first["port"]


class SwiftDecoder(Child):
    """`datadist bench-pull`: a Swift decoder of the same prompt, pulling when told."""

    def __init__(self, datadist: str, port: int, cluster_id: int) -> None:
        super().__init__([datadist, "bench-pull", "--port", str(port), "--cluster-id", str(cluster_id)])


def one_round(datadist: str, duration: float, native) -> dict:
    """One round's rows for each side ("python", "swift", and with `native` "c"), and the adjacent-burst ratios."""
    prompt = Prompt(datadist)
    config = ld.LLMConfig()
    config.mem_pool_cfg = json.dumps({"memory_size": 2 * RING})
    config.sync_kv_timeout = 30000
    decoder = ld.LLMDataDist(ld.LLMRole.DECODER, DECODER)
    decoder.init(config.generate_options())
    manager = decoder.cache_manager
    info = ld.LLMClusterInfo()
    info.remote_cluster_id = PROMPT
    info.append_local_ip_info("127.0.0.1", 0)
    info.append_remote_ip_info("127.0.0.1", prompt.port)
    assert decoder.link_clusters([info])[0] == ld.LLMStatusCode.LLM_SUCCESS
    swifts = {"swift": SwiftDecoder(datadist, prompt.port, SWIFT_DECODER),
              "control": SwiftDecoder(datadist, prompt.port, CONTROL_DECODER)}
    sides = ["python", "swift", "control"] + (["c"] if native is not None else [])
    rows = {side: {} for side in sides}
    pairs = {}  # row name -> {"swift": [python/swift of adjacent bursts], "c": [...]}
    base, verified = 1, True
    handle = manager._handle

    # 16 KiB latency: generations of 1024 request keys, each consumed by its pull; blocks of BLOCK keys take turns
    # between the sides (which side starts rotates by generation).
    size, slots = 16 << 10, 1024
    destination_slots = RING // size
    destination = manager.allocate_cache(ld.CacheDesc(1, [destination_slots, size // 2], ld.DataType.DT_FLOAT16))
    for swift in swifts.values():
        swift.send("requests", size, destination_slots)
    samples = {side: [] for side in sides}
    generation, began = 0, time.monotonic()
    c_block = (ctypes.c_int64 * BLOCK)()
    while generation < 2 or (sum(samples["python"]) / 1e9 < duration and time.monotonic() - began < 12 * duration + 2):
        base += slots
        prompt.send("cache", "latency", size, slots, "request", base, "pattern")
        pull = manager.pull_cache
        for first in range(0, slots, BLOCK):
            side = sides[(first // BLOCK + generation) % len(sides)]
            taken = samples[side] if generation > 0 else []
            if side == "c":
                keys = c_keys([ld.CacheKey(PROMPT, base + slot) for slot in range(first, first + BLOCK)])
                where = (ctypes.c_uint32 * BLOCK)(*[slot % destination_slots for slot in range(first, first + BLOCK)])
                _native.check(native.bench_pull_each(handle, keys, destination._handle, where, BLOCK, c_block))
                taken.extend(c_block)
            elif side in swifts:
                taken.extend(swifts[side].send("pull", base + first, BLOCK, first % destination_slots)["samples"])
            else:
                for slot in range(first, first + BLOCK):
                    key = ld.CacheKey(PROMPT, base + slot)
                    start = time.perf_counter_ns()
                    pull(key, destination, slot % destination_slots)
                    taken.append(time.perf_counter_ns() - start)
        # The last block of a generation is someone's; check the last Python block and the Swift side's last pull.
        last_python = max(first for first in range(0, slots, BLOCK)
                          if sides[(first // BLOCK + generation) % len(sides)] == "python")
        verified &= check(destination, (last_python + BLOCK - 1) % destination_slots, base + last_python + BLOCK - 1)
        verified &= all(swift.send("check")["event"] == "ok" for swift in swifts.values())
        prompt.send("free", "latency")
        generation += 1
    for side in sides:
        values = sorted(samples[side])
        rows[side]["pull_cache 16KiB p50 us"] = values[len(values) // 2] / 1e3
        rows[side]["pull_cache 16KiB p99 us"] = values[int(len(values) * 0.99)] / 1e3
    manager.deallocate_cache(destination)
    for swift in swifts.values():
        swift.send("free")

    # Bandwidth: prefix keys over rings; bursts of BURST seconds take turns between the sides (the order rotates),
    # each going on round the ring where it left off.
    for size in (1 << 20, 16 << 20):
        slots = RING // size
        base += slots
        prompt.send("cache", "ring", size, slots, "prefix", base, "pattern")
        destination = manager.allocate_cache(ld.CacheDesc(1, [slots, size // 2], ld.DataType.DT_FLOAT16))
        keys = [ld.CacheKey(PROMPT, UINT64_MAX, 0, base + i) for i in range(slots)]
        native_keys = c_keys(keys)
        pull = manager.pull_cache
        pull(keys[0], destination, 0)
        verified &= check(destination, 0, base)
        for i in range(1, slots):  # warm-up: one pass maps the peer's pages
            pull(keys[i], destination, i)
        for swift in swifts.values():
            swift.send("ring", size, slots, base)
            swift.send("burst", int(0.2e9))  # its warm-up
        totals = {side: [0, 0.0] for side in sides}
        name = f"pull_cache {size >> 20}MiB GB/s"
        pairs[name] = {other: [] for other in sides if other != "python"}
        pairs[name]["swift/control"] = []
        pulled = 1
        for burst in range(max(3, round(duration / BURST))):
            order = sides[burst % len(sides):] + sides[:burst % len(sides)]
            rates = {}
            for side in order:
                if side == "c":
                    elapsed = ctypes.c_int64()
                    count = native.bench_pull_ring(
                        handle, native_keys, destination._handle, slots, pulled, int(BURST * 1e9), ctypes.byref(elapsed))
                    if count < 0:
                        _native.check(-count)
                    pulled += count
                    seconds = elapsed.value / 1e9
                elif side in swifts:
                    reply = swifts[side].send("burst", int(BURST * 1e9))
                    count, seconds = reply["count"], reply["nanoseconds"] / 1e9
                else:
                    count, start = 0, time.perf_counter()
                    while time.perf_counter() - start < BURST:
                        slot = (pulled + count) % slots
                        pull(keys[slot], destination, slot)
                        count += 1
                    seconds = time.perf_counter() - start
                    pulled += count
                totals[side][0] += count
                totals[side][1] += seconds
                rates[side] = count / seconds
            for other in sides[1:]:
                pairs[name][other].append(rates["python"] / rates[other])
            pairs[name]["swift/control"].append(rates["swift"] / rates["control"])
        last = (pulled - 1) % slots
        verified &= check(destination, last, base + last)
        verified &= all(swift.send("check")["event"] == "ok" for swift in swifts.values())
        for side in sides:
            rows[side][name] = totals[side][0] * size / totals[side][1] / 1e9
        manager.deallocate_cache(destination)
        for swift in swifts.values():
            swift.send("free")
        prompt.send("free", "ring")
    decoder.unlink_clusters([info])
    clean = manager.audit().orphans == 0
    decoder.finalize()
    clean &= all([swift.close() for swift in swifts.values()])
    clean &= prompt.close()
    if not (verified and clean):
        raise SystemExit(f"round: verified={verified} audits clean={clean}")
    return {"rows": rows, "pairs": pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadist", default=".build/release/datadist")
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    native = build_native()
    rounds = []
    for round_ in range(arguments.rounds):
        print(f"round {round_ + 1}/{arguments.rounds}", file=sys.stderr, flush=True)
        rounds.append(one_round(arguments.datadist, arguments.duration, native))
    others = ["swift"] + (["c"] if native is not None else [])
    report = []
    for name in rounds[0]["rows"]["python"]:
        latency = name.endswith(" us")
        row = {"row": name, "goal": ("<= 1.3" if "p50" in name else "") if latency else ">= 0.95"}
        for side in ["python", "control"] + others:
            row[side] = statistics.median(r["rows"][side][name] for r in rounds)
            row[f"{side}_rounds"] = [r["rows"][side][name] for r in rounds]
        # Bandwidth: the median over every pair of adjacent bursts of all rounds. Latency: the median of the rounds'
        # ratios of p50s (each round's blocks interleave). swift/control: two identical Swift decoders, the spread
        # of the method itself under this load.
        for label, (mine, other) in [(o, ("python", o)) for o in others] + [("control", ("swift", "control"))]:
            key = other if mine == "python" else "swift/control"
            row[f"ratio_{label}"] = (
                statistics.median(ratio for r in rounds for ratio in r["pairs"][name][key]) if not latency
                else statistics.median(r["rows"][mine][name] / r["rows"][other][name] for r in rounds)
            )
        report.append(row)
    if arguments.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'row':<26}{'swift':>9}{'python':>9}{'python/swift':>14}{'C':>9}{'python/C':>10}{'swift/swift':>13}"
          "  goal (python/swift)")
    for row in report:
        line = f"{row['row']:<26}{row['swift']:>9.2f}{row['python']:>9.2f}{row['ratio_swift']:>14.2f}"
        line += f"{row['c']:>9.2f}{row['ratio_c']:>10.2f}" if "c" in row else f"{'-':>9}{'-':>10}"
        print(f"{line}{row['ratio_control']:>13.2f}  {row['goal']}")

if __name__ == "__main__":
    main()
