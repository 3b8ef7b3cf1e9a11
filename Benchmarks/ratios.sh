#!/usr/bin/env bash
# Runs the benchmark suite (release build) and prints DataDist's ratio to each row's ceiling, measured in the
# same run. Extra arguments go to `swift package benchmark`, e.g. `./ratios.sh --target CopyCache`.
# The raw export stays in $RESULTS (default: a new temporary directory) for later inspection.
set -euo pipefail
cd "$(dirname "$0")"
RESULTS=${RESULTS:-$(mktemp -d)}
mkdir -p "$RESULTS"
swift package --allow-writing-to-directory "$RESULTS" benchmark --format jmh --path "$RESULTS" --no-progress "$@" >&2
echo "results: $RESULTS" >&2
python3 ratios.py "$RESULTS"/*.json
