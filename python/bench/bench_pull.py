"""pull_cache through Python (llm_datadist) beside the same pulls through Swift (`datadist bench`), in one run.

    python3 python/bench/bench_pull.py [--datadist .build/release/datadist] [--duration 1.0] [--rounds 2]

Rows, each measured the way `datadist bench` measures its pull_cache rows: 16 KiB latency (request keys,
consumed by the pull; p50/p99 of the whole pull_cache call, the key built beforehand), and 1 MiB / 16 MiB
bandwidth (one tensor per pull through prefix keys, never consumed; source and destination rotate over 128 MiB
rings). The prompt is another process in both cases; the decoder is this Python process or the Swift bench.
Rounds alternate Swift and Python so both see the same machine load; the ratios use each side's median over the
rounds. The first and last pull of every row are verified byte for byte. `make python-bench` builds and runs it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import llm_datadist as ld

PROMPT, DECODER = 1, 2
RING = 128 << 20
UINT64_MAX = (1 << 64) - 1


def fill(cache: ld.Cache, seed: int) -> None:
    """Slot i of every tensor holds the byte (seed + i) % 251."""
    for view in cache.as_numpy():
        flat = view.reshape(view.shape[0], -1).view(np.uint8)
        flat[:] = ((seed + np.arange(view.shape[0])) % 251).astype(np.uint8)[:, None]


def check(cache: ld.Cache, slot: int, expected: int) -> bool:
    view = cache.as_numpy()[0]
    return bool((view.reshape(view.shape[0], -1).view(np.uint8)[slot] == expected % 251).all())


def serve() -> None:
    """The prompt: JSON lines on stdin ("cache", "free", "exit"), one reply line each."""
    config = ld.LLMConfig()
    config.listen_ip_info = "127.0.0.1:0"
    config.mem_pool_cfg = json.dumps({"memory_size": 3 * RING})
    config.sync_kv_timeout = 30000
    engine = ld.LLMDataDist(ld.LLMRole.PROMPT, PROMPT)
    engine.init(config.generate_options())
    manager = engine.cache_manager
    caches = {}
    print(json.dumps({"port": engine.listen_port()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "cache":
            size, slots, base = request["size"], request["slots"], request["base"]
            desc = ld.CacheDesc(1, [slots, size // 2], ld.DataType.DT_FLOAT16)
            if request["prefix"]:
                keys = [ld.CacheKey(PROMPT, UINT64_MAX, 0, base + i) for i in range(slots)]
            else:
                keys = [ld.CacheKey(PROMPT, base + i) for i in range(slots)]
            cache = manager.allocate_cache(desc, keys)
            fill(cache, base)
            caches[request["name"]] = (cache, keys)
        elif request["op"] == "free":
            cache, keys = caches.pop(request["name"])
            for key in keys:
                manager.remove_cache_key(key)
            manager.deallocate_cache(cache)
        elif request["op"] == "exit":
            clean = manager.audit()
            engine.finalize()
            print(json.dumps({"clean": clean.orphans == 0}), flush=True)
            return
        print(json.dumps({"ok": True}), flush=True)


class Prompt:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        self.port = json.loads(self.process.stdout.readline())["port"]

    def send(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())


def python_rows(duration: float) -> dict:
    prompt = Prompt()
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
        prompt.send(op="cache", name="latency", size=size, slots=slots, base=base, prefix=False)
        pull = manager.pull_cache
        for slot in range(slots):
            key = ld.CacheKey(PROMPT, base + slot)
            start = time.perf_counter_ns()
            pull(key, destination, slot % destination_slots)
            if generation > 0:
                samples.append(time.perf_counter_ns() - start)
        verified &= check(destination, (slots - 1) % destination_slots, base + slots - 1)
        prompt.send(op="free", name="latency")
        generation += 1
    samples.sort()
    rows["pull_cache 16KiB p50 us"] = samples[len(samples) // 2] / 1e3
    rows["pull_cache 16KiB p99 us"] = samples[int(len(samples) * 0.99)] / 1e3
    manager.deallocate_cache(destination)

    # Bandwidth: prefix keys over rings.
    for size in (1 << 20, 16 << 20):
        slots = RING // size
        base += slots
        prompt.send(op="cache", name="ring", size=size, slots=slots, base=base, prefix=True)
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
        prompt.send(op="free", name="ring")
    decoder.unlink_clusters([info])
    clean = manager.audit().orphans == 0
    decoder.finalize()
    clean &= prompt.send(op="exit")["clean"]
    prompt.process.wait(timeout=30)
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
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--datadist", default=".build/release/datadist")
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    if arguments.serve:
        serve()
        return
    swift, python = [], []
    for round_ in range(arguments.rounds):
        print(f"round {round_ + 1}/{arguments.rounds}: swift", file=sys.stderr, flush=True)
        swift.append(swift_rows(arguments.datadist, arguments.duration))
        print(f"round {round_ + 1}/{arguments.rounds}: python", file=sys.stderr, flush=True)
        python.append(python_rows(arguments.duration))
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
