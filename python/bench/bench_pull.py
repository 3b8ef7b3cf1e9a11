"""pull_cache through Python (llm_datadist) beside the same pulls through Swift (`datadist bench`), in one run.

    python3 python/bench/bench_pull.py [--datadist .build/release/datadist] [--duration 1.0] [--rounds 2]

Rows, each measured the way `datadist bench` measures its pull_cache rows: 16 KiB latency (request keys,
consumed by the pull; p50/p99 of the whole pull_cache call, the key built beforehand), and 1 MiB / 16 MiB
bandwidth (one tensor per pull through prefix keys, never consumed; source and destination rotate over 128 MiB
rings). Both decoders pull from the same prompt program, `datadist bench-serve`; the decoder is this Python
process or the Swift bench.
Rounds alternate Swift and Python so both see the same machine load; the ratios use each side's median over the
rounds. The first and last pull of every row are verified byte for byte. `make python-bench` builds and runs it.

Swift's rows come from another process seconds away, so on a shared machine the load between the two decides much
of that ratio. Each Python row is therefore also measured beside a C loop (pull_loop.c, built here with `cc`
against datadist.h and the package's libdatadist_c.so) making the same pull_cache calls in this process, on the
same link and caches, alternating with the Python loop in bursts of 20 ms (bandwidth: the ratio is the median
over pairs of adjacent bursts) or blocks of 64 keys (latency): Python over C is what the Python layer and ctypes
cost per pull. Without a C compiler that column is left out.
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

PROMPT, DECODER = 1, 2
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


class Prompt:
    """`datadist bench-serve`, the prompt process `datadist bench` itself uses, driven over stdin."""

    def __init__(self, datadist: str) -> None:
        self.process = subprocess.Popen(
            [datadist, "bench-serve", "--cluster-id", str(PROMPT), "--pool-bytes", str(3 * RING)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.port = json.loads(self.process.stdout.readline())["port"]

    def send(self, *words) -> dict:
        self.process.stdin.write(" ".join(str(word) for word in words) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if reply["event"] == "error":
            raise SystemExit(f"bench-serve: {reply}")
        return reply

    def close(self) -> bool:
        self.process.stdin.close()
        reply = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return bool(reply.get("audit", {}).get("clean")) and self.process.returncode == 0


def python_rows(datadist: str, duration: float, native) -> tuple:
    """This process's rows through Python, and (with `native`) the same rows through the C loop beside them."""
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
    rows, c_rows, base, verified = {}, {}, 1, True
    handle = manager._handle

    # 16 KiB latency: generations of 1024 request keys, each consumed by its pull; blocks of BLOCK keys alternate
    # between the Python loop and the C loop (which side starts alternates by generation).
    size, slots = 16 << 10, 1024
    destination_slots = RING // size
    destination = manager.allocate_cache(ld.CacheDesc(1, [destination_slots, size // 2], ld.DataType.DT_FLOAT16))
    samples, c_samples, generation, began = [], [], 0, time.monotonic()
    c_block = (ctypes.c_int64 * BLOCK)()
    while generation < 2 or (sum(samples) / 1e9 < duration and time.monotonic() - began < 8 * duration + 2):
        base += slots
        prompt.send("cache", "latency", size, slots, "request", base, "pattern")
        pull = manager.pull_cache
        for first in range(0, slots, BLOCK):
            if native is not None and (first // BLOCK + generation) % 2:
                keys = c_keys([ld.CacheKey(PROMPT, base + slot) for slot in range(first, first + BLOCK)])
                where = (ctypes.c_uint32 * BLOCK)(*[slot % destination_slots for slot in range(first, first + BLOCK)])
                status = native.bench_pull_each(handle, keys, destination._handle, where, BLOCK, c_block)
                _native.check(status)
                if generation > 0:
                    c_samples.extend(c_block)
                continue
            for slot in range(first, first + BLOCK):
                key = ld.CacheKey(PROMPT, base + slot)
                start = time.perf_counter_ns()
                pull(key, destination, slot % destination_slots)
                if generation > 0:
                    samples.append(time.perf_counter_ns() - start)
        verified &= check(destination, (slots - 1) % destination_slots, base + slots - 1)
        verified &= check(destination, (slots - BLOCK - 1) % destination_slots, base + slots - BLOCK - 1)
        prompt.send("free", "latency")
        generation += 1
    for name, values, into in (("16KiB", samples, rows), ("16KiB", c_samples, c_rows)):
        if values:
            values.sort()
            into[f"pull_cache {name} p50 us"] = values[len(values) // 2] / 1e3
            into[f"pull_cache {name} p99 us"] = values[int(len(values) * 0.99)] / 1e3
    manager.deallocate_cache(destination)

    # Bandwidth: prefix keys over rings; bursts of BURST seconds alternate between the Python and the C loop, each
    # going on round the ring where it left off.
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
        sides = {"python": [0, 0.0], "c": [0, 0.0]}
        pulled, pairs = 1, []
        for burst in range(max(3, round(duration / BURST))):
            rates = {}
            for side in (("python", "c") if burst % 2 == 0 else ("c", "python")):
                if side == "c" and native is None:
                    continue
                if side == "c":
                    elapsed = ctypes.c_int64()
                    count = native.bench_pull_ring(
                        handle, native_keys, destination._handle, slots, pulled, int(BURST * 1e9), ctypes.byref(elapsed))
                    if count < 0:
                        _native.check(-count)
                    seconds = elapsed.value / 1e9
                else:
                    count, start = 0, time.perf_counter()
                    while time.perf_counter() - start < BURST:
                        slot = (pulled + count) % slots
                        pull(keys[slot], destination, slot)
                        count += 1
                    seconds = time.perf_counter() - start
                pulled += count
                sides[side][0] += count
                sides[side][1] += seconds
                rates[side] = count / seconds
            if native is not None:
                pairs.append(rates["python"] / rates["c"])
        last = (pulled - 1) % slots
        verified &= check(destination, last, base + last)
        rows[f"pull_cache {size >> 20}MiB GB/s"] = sides["python"][0] * size / sides["python"][1] / 1e9
        if native is not None:
            c_rows[f"pull_cache {size >> 20}MiB GB/s"] = sides["c"][0] * size / sides["c"][1] / 1e9
            c_rows[f"pull_cache {size >> 20}MiB pairs"] = pairs
        manager.deallocate_cache(destination)
        prompt.send("free", "ring")
    decoder.unlink_clusters([info])
    clean = manager.audit().orphans == 0
    decoder.finalize()
    clean &= prompt.close()
    if not (verified and clean):
        raise SystemExit(f"python rows: verified={verified} audits clean={clean}")
    return rows, c_rows


def swift_rows(datadist: str, duration: float) -> dict:
    output = subprocess.run(
        [datadist, "bench", "--json", "--operations", "pull_cache", "--sizes", "16KiB,1MiB,16MiB", "--duration",
         str(duration)],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = {}
    for row in json.loads(output):
        if row["operation"] != "pull_cache" or not row["verified"]:
            continue
        if row["keys"] == "request" and row["bytes"] == 16 << 10:
            rows["pull_cache 16KiB p50 us"] = row["p50us"]
            rows["pull_cache 16KiB p99 us"] = row["p99us"]
        elif row["keys"] == "prefix" and row["bytes"] in (1 << 20, 16 << 20):
            rows[f"pull_cache {row['bytes'] >> 20}MiB GB/s"] = row["gbps"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datadist", default=".build/release/datadist")
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    native = build_native()
    swift, python, c = [], [], []
    for round_ in range(arguments.rounds):
        print(f"round {round_ + 1}/{arguments.rounds}: swift", file=sys.stderr, flush=True)
        swift.append(swift_rows(arguments.datadist, arguments.duration))
        print(f"round {round_ + 1}/{arguments.rounds}: python" + (" and C" if native else ""), file=sys.stderr,
              flush=True)
        rows, c_rows = python_rows(arguments.datadist, arguments.duration, native)
        python.append(rows)
        c.append(c_rows)
    report = []
    for name in python[0]:
        s = statistics.median(r[name] for r in swift)
        p = statistics.median(r[name] for r in python)
        latency = name.endswith(" us")
        row = {
            "row": name,
            "swift": s,
            "python": p,
            # Latency: Python over Swift (goal ≤ 1.3 at p50). Bandwidth: Python over Swift (goal ≥ 0.95).
            "ratio": p / s,
            "swift_rounds": [r[name] for r in swift],
            "python_rounds": [r[name] for r in python],
            "goal": ("<= 1.3" if "p50" in name else "") if latency else ">= 0.95",
        }
        if native is not None:
            # Python over the C loop in the same process: bandwidth, the median over every pair of adjacent bursts
            # of all rounds; latency, the median of the rounds' ratios (each round's blocks interleave).
            row["c"] = statistics.median(r[name] for r in c)
            row["c_rounds"] = [r[name] for r in c]
            pairs = name.replace("GB/s", "pairs")
            row["ratio_c"] = (
                statistics.median(ratio for r in c for ratio in r[pairs]) if name.endswith("GB/s")
                else statistics.median(pr[name] / cr[name] for pr, cr in zip(python, c))
            )
        report.append(row)
    if arguments.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'row':<26}{'swift':>10}{'python':>10}{'python/swift':>14}{'C':>10}{'python/C':>10}  goal")
    for row in report:
        line = f"{row['row']:<26}{row['swift']:>10.2f}{row['python']:>10.2f}{row['ratio']:>14.2f}"
        line += f"{row['c']:>10.2f}{row['ratio_c']:>10.2f}" if "c" in row else f"{'-':>10}{'-':>10}"
        print(f"{line}  {row['goal']}")


if __name__ == "__main__":
    main()
