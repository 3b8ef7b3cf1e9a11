#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets of Fuzz/ (DATADIST_FUZZ=1 adds them to the package) with the fuzzer
# and AddressSanitizer (LeakSanitizer included) in their own scratch path, then runs each for FUZZ_SECONDS
# (default 60) in one process, starting from the seeds in Fuzz/corpus/<target>/. New inputs go to
# .build-fuzz/corpus/, a crashing, hanging or leaking input to .build-fuzz/artifacts/, each target's log to
# .build-fuzz/<target>.log; the first finding fails.
# Extra libFuzzer options: FUZZ_ARGS (e.g. FUZZ_ARGS=-runs=400000 for a fixed number of inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=(FuzzFrame FuzzMessages FuzzHandshake)
scratch=.build-fuzz
mkdir -p "$scratch"
# SwiftPM passes each --sanitize to swiftc as its own -sanitize= option and the last one wins, so the Swift code
# gets both (coverage for libFuzzer, ASan) in one option; the --sanitize flags cover the C code and the link.
for target in "${targets[@]}"; do
    DATADIST_FUZZ=1 ${SWIFT:-swift} build --sanitize=address --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address \
        --scratch-path "$scratch" --product "$target" >"$scratch/build.log" 2>&1 \
        || { grep -v "Cannot export local symbol" "$scratch/build.log"; echo "building $target failed"; exit 1; }
done
mkdir -p "$scratch/artifacts"
for target in "${targets[@]}"; do
    seeds=$(tr '[:upper:]' '[:lower:]' <<<"${target#Fuzz}")
    mkdir -p "$scratch/corpus/$seeds"
    echo "== $target for ${seconds} s"
    # The Swift runtime's backtracer would hold a crashing input for minutes; libFuzzer reports it instead.
    status=0
    SWIFT_BACKTRACE=enable=no "$scratch/debug/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$scratch/artifacts/$target-" ${FUZZ_ARGS:-} \
        "$scratch/corpus/$seeds" "Fuzz/corpus/$seeds" >"$scratch/$target.log" 2>&1 || status=$?
    grep -E "INITED|DONE|ERROR|SUMMARY|Fatal error|stat::number_of_executed_units|Test unit written" \
        "$scratch/$target.log" || true
    test "$status" -eq 0 || { echo "$target found a problem: $scratch/$target.log, $scratch/artifacts/"; exit 1; }
done
