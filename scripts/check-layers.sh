#!/usr/bin/env bash
# Each target under Sources/ may import only the modules listed for it here: the layers below it, the C bindings
# it owns, and the toolchain and package dependencies it declares. `make lint` runs this; it prints every import
# that breaks the rule and fails if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain="Glibc Synchronization Dispatch FoundationEssentials"
declare -A allowed=(
    [ThreadSanitizerSupport]="$toolchain"
    [DeviceCaps]=""
    [DeviceRuntime]="$toolchain CAscendCL CLinuxSupport CNuma CHwloc DeviceCaps ThreadSanitizerSupport Logging SystemPackage"
    [BlockPool]="$toolchain DeviceRuntime ThreadSanitizerSupport"
    [LinkLayer]="$toolchain CLinuxSupport CCrypto CUCX DeviceRuntime ThreadSanitizerSupport Logging"
    # The public library: no C module and no Glibc; swift-metrics' API, never a backend.
    [DataDist]="Synchronization Dispatch FoundationEssentials BlockPool LinkLayer DeviceRuntime DeviceCaps ThreadSanitizerSupport Logging CoreMetrics"
    # The C ABI: the public library only, and its own C header.
    [DataDistC]="Synchronization FoundationEssentials CDataDist DataDist ThreadSanitizerSupport"
    # The CLI: the public library only (DeviceCaps is a public product too), plus its own dependencies (the
    # Prometheus backend and the NIO listener of --metrics-port among them).
    [datadist]="Synchronization Dispatch Foundation DataDist DeviceCaps ThreadSanitizerSupport ArgumentParser Logging SystemPackage CoreMetrics Prometheus NIOCore NIOPosix NIOHTTP1"
)

status=0
for directory in Sources/*/; do
    target=$(basename "$directory")
    if [[ -z "${allowed[$target]+set}" ]] && find "$directory" -name "*.swift" | grep -q .; then
        echo "Sources/$target: a Swift target this script does not know; list what it may import"
        status=1
    fi
done
for target in "${!allowed[@]}"; do
    while IFS=: read -r file line statement; do
        module=$(sed -E 's/^(@_exported |public |internal |package )*import (struct |enum |class |func )?//; s/\..*//; s/ .*//' <<<"$statement")
        if [[ " ${allowed[$target]} " != *" $module "* ]]; then
            echo "$file:$line: $target may not import $module"
            status=1
        fi
    done < <(grep -rnE '^(@_exported |public |internal |package )*import ' "Sources/$target" --include='*.swift' || true)
done
exit $status
