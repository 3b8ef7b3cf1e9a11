"""Builds c_pull_latency.c against datadist.h and .build/release/libdatadist_c.so and runs it against
`datadist bench-serve` (run from the repository root after `make python`; prints one line to stderr)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
release = os.path.join(ROOT, ".build", "release")
program = os.path.join(release, "c_pull_latency")
subprocess.check_call(
    ["cc", "-O2", "-I", os.path.join(ROOT, "Sources", "CDataDist", "include"),
     os.path.join(os.path.dirname(os.path.abspath(__file__)), "c_pull_latency.c"), "-o", program,
     "-L", release, "-ldatadist_c", "-Wl,-rpath," + release]
)
serve = subprocess.Popen(
    [os.path.join(release, "datadist"), "bench-serve", "--pool-bytes", str(384 << 20)],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
)
port = json.loads(serve.stdout.readline())["port"]
harness = subprocess.Popen([program, str(port)], stdin=serve.stdout, stdout=serve.stdin)
status = harness.wait()
serve.stdin.close()
serve.wait(timeout=30)
sys.exit(status)
