"""pull_cache through Python (llm_datadist) beside the same pulls through Swift (`datadist bench`), in one run.

    python3 python/bench/bench_pull.py [--datadist .build/release/datadist] [--duration 1.0] [--rounds 2]

Rows, each measured the way `datadist bench` measures its pull_cache rows: 16 KiB latency (request keys,
consumed by the pull; p50/p99 of the whole pull_cache call, the key built beforehand), and 1 MiB / 16 MiB
bandwidth (one tensor per pull through prefix keys, never consumed; source and destination rotate over 128 MiB
rings). Both decoders pull from the same prompt program, `datadist bench-serve`; the decoder is this Python
process or the Swift bench.
Rounds alternate Swift and Python so both see the same machine load; the ratios use each side's median over the
rounds. The first and last pull of every row are verified byte for byte. `make python-bench` builds and runs it.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

import llm_datadist as ld

PROMPT, DECODER = 1, 2
RING = 128 << 20
UINT64_MAX = (1 << 64) - 1


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


def python_rows(datadist: str, duration: float) -> dict:
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
    rows, base, verified = {}, 1, True

    # 16 KiB latency: generations of 1024 request keys, each consumed by its pull.
    size, slots = 16 << 10, 1024
    destination_slots = RING // size
    destination = manager.allocate_cache(ld.CacheDesc(1, [destination_slots, size // 2], ld.DataType.DT_FLOAT16))
    samples, generation, began = [], 0, time.monotonic()
    while generation < 2 or (sum(samples) / 1e9 < duration and time.monotonic() - began < 4 * duration + 2):
        base += slots
        prompt.send("cache", "latency", size, slots, "request", base, "pattern")
        pull = manager.pull_cache
        for slot in range(slots):
            key = ld.CacheKey(PROMPT, base + slot)
            start = time.perf_counter_ns()
            pull(key, destination, slot % destination_slots)
            if generation > 0:
                samples.append(time.perf_counter_ns() - start)
        verified &= check(destination, (slots - 1) % destination_slots, base + slots - 1)
        prompt.send("free", "latency")
        generation += 1
    samples.sort()
    rows["pull_cache 16KiB p50 us"] = samples[len(samples) // 2] / 1e3
    rows["pull_cache 16KiB p99 us"] = samples[int(len(samples) * 0.99)] / 1e3
    manager.deallocate_cache(destination)

    # Bandwidth: prefix keys over rings.
    for size in (1 << 20, 16 << 20):
        slots = RING // size
        base += slots
        prompt.send("cache", "ring", size, slots, "prefix", base, "pattern")
        destination = manager.allocate_cache(ld.CacheDesc(1, [slots, size // 2], ld.DataType.DT_FLOAT16))
        keys = [ld.CacheKey(PROMPT, UINT64_MAX, 0, base + i) for i in range(slots)]
        pull = manager.pull_cache
        pull(keys[0], destination, 0)
        verified &= check(destination, 0, base)
        for i in range(1, slots):  # warm-up: one pass maps the peer's pages
            pull(keys[i], destination, i)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < duration:
            pull(keys[count % slots], destination, count % slots)
            count += 1
        seconds = time.perf_counter() - start
        last = (count - 1) % slots
        verified &= check(destination, last, base + last)
        rows[f"pull_cache {size >> 20}MiB GB/s"] = count * size / seconds / 1e9
        manager.deallocate_cache(destination)
        prompt.send("free", "ring")
    decoder.unlink_clusters([info])
    clean = manager.audit().orphans == 0
    decoder.finalize()
    clean &= prompt.close()
    if not (verified and clean):
        raise SystemExit(f"python rows: verified={verified} audits clean={clean}")
    return rows


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
    swift, python = [], []
    for round_ in range(arguments.rounds):
        print(f"round {round_ + 1}/{arguments.rounds}: swift", file=sys.stderr, flush=True)
        swift.append(swift_rows(arguments.datadist, arguments.duration))
        print(f"round {round_ + 1}/{arguments.rounds}: python", file=sys.stderr, flush=True)
        python.append(python_rows(arguments.datadist, arguments.duration))
    report = []
    for name in python[0]:
        s = statistics.median(r[name] for r in swift)
        p = statistics.median(r[name] for r in python)
        latency = name.endswith(" us")
        report.append(
            {
                "row": name,
                "swift": s,
                "python": p,
                # Latency: Python over Swift (goal ≤ 1.3 at p50). Bandwidth: Python over Swift (goal ≥ 0.95).
                "ratio": p / s,
                "swift_rounds": [r[name] for r in swift],
                "python_rounds": [r[name] for r in python],
                "goal": ("<= 1.3" if "p50" in name else "") if latency else ">= 0.95",
            }
        )
    if arguments.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{'row':<26}{'swift':>10}{'python':>10}{'python/swift':>14}  goal")
    for row in report:
        print(f"{row['row']:<26}{row['swift']:>10.2f}{row['python']:>10.2f}{row['ratio']:>14.2f}  {row['goal']}")


if __name__ == "__main__":
    main()
