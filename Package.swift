// swift-tools-version: 6.2
import PackageDescription

/// Every target's settings. CI (`DATADIST_WARNINGS_AS_ERRORS=1`, set by `.ci/run`) makes warnings errors in this
/// package's own targets, not in its dependencies.
let strict: [SwiftSetting] =
    [.enableUpcomingFeature("MemberImportVisibility")]
    + (Context.environment["DATADIST_WARNINGS_AS_ERRORS"] == "1" ? [.treatAllWarnings(as: .error)] : [])

/// The libFuzzer targets (`Fuzz/`), only in `make fuzz`'s build (`DATADIST_FUZZ=1`): they have no `main` (libFuzzer
/// supplies it under `--sanitize=fuzzer`), so the normal build must not see them. Inside this package they reach
/// the link layer's `package` decoders.
let fuzzTargets: [Target] =
    Context.environment["DATADIST_FUZZ"] == "1"
    ? ["FuzzFrame", "FuzzMessages", "FuzzHandshake"].map { name in
        // FuzzHandshake makes real memfds (CLinuxSupport) to pass in the region exchange.
        .executableTarget(
            name: name, dependencies: name == "FuzzHandshake" ? ["LinkLayer", "CLinuxSupport"] : ["LinkLayer"],
            path: "Fuzz/\(name)", swiftSettings: strict)
    } : []

let package = Package(
    name: "DataDist",
    products: [
        .library(name: "DataDist", targets: ["DataDist"]),
        .library(name: "DeviceCaps", targets: ["DeviceCaps"]),
        .executable(name: "datadist", targets: ["datadist"]),
        // A real shared object implementing the ACL entry points over host memory; tests dlopen it.
        .library(name: "_FakeAscendCL", type: .dynamic, targets: ["CFakeAscendCL"]),
        // The C ABI (Sources/CDataDist/include/datadist/datadist.h) for C and Python callers.
        .library(name: "datadist_c", type: .dynamic, targets: ["DataDistC"]),
        // The same fake without aclrtMemset: a library lacking one required symbol.
        .library(name: "_FakeAscendCLNoMemset", type: .dynamic, targets: ["CFakeAscendCLNoMemset"]),
        // The same fake without the IPC entry points: a library on which device sharing is not available.
        .library(name: "_FakeAscendCLNoIPC", type: .dynamic, targets: ["CFakeAscendCLNoIPC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // The CLI's /metrics endpoint only (`datadist serve --metrics-port`): the library picks no backend.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // C bindings
        .systemLibrary(
            name: "CNuma", path: "modulemaps/CNuma", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(
            name: "CHwloc", path: "modulemaps/CHwloc", pkgConfig: "hwloc", providers: [.apt(["libhwloc-dev"])]),
        // OpenSSL's libcrypto, for the link authentication's HMAC-SHA256 (nothing to compile, unlike swift-crypto).
        .systemLibrary(
            name: "CCrypto", path: "modulemaps/CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // UCX (UCP): the data plane between hosts, and to memory no memfd covers.
        .systemLibrary(
            name: "CUCX", path: "modulemaps/CUCX", pkgConfig: "ucx", providers: [.apt(["libucx-dev"])]),
        // The ACL function table and its dlopen loader; Linux system calls the runtime and the link layer need.
        .target(name: "CAscendCL", cSettings: [.define("_GNU_SOURCE")], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "CLinuxSupport", cSettings: [.define("_GNU_SOURCE")]),
        // The C ABI's header and its thread-local last error.
        .target(name: "CDataDist"),
        .target(name: "CFakeAscendCL", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "CFakeAscendCLNoMemset", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "CFakeAscendCLNoIPC", cSettings: [.define("_GNU_SOURCE")]),
        // A peer process for the sharing tests: imports keys through the fake library or the emulator's protocol.
        .executableTarget(
            name: "datadist-ipc-peer", dependencies: ["CLinuxSupport"], path: "Tests/IPCPeer",
            cSettings: [.define("_GNU_SOURCE")], linkerSettings: [.linkedLibrary("dl")]),

        // Swift layers, bottom up. ThreadSanitizerSupport is empty except in `make tsan`'s build (see its one file).
        .target(name: "ThreadSanitizerSupport", swiftSettings: strict),
        .target(name: "DeviceCaps", swiftSettings: strict),
        .target(
            name: "DeviceRuntime",
            dependencies: [
                "CAscendCL", "CLinuxSupport", "CNuma", "CHwloc", "DeviceCaps", "ThreadSanitizerSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(
            name: "BlockPool",
            dependencies: ["DeviceRuntime", "ThreadSanitizerSupport"],
            swiftSettings: strict),
        .target(
            name: "LinkLayer",
            dependencies: [
                "DeviceRuntime", "CLinuxSupport", "CCrypto", "CUCX", "ThreadSanitizerSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "DataDist",
            dependencies: [
                "BlockPool", "LinkLayer", "DeviceRuntime", "DeviceCaps", "ThreadSanitizerSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        // The C ABI over DataDist's public API (the `datadist_c` dynamic library).
        .target(
            name: "DataDistC", dependencies: ["CDataDist", "DataDist", "ThreadSanitizerSupport"],
            swiftSettings: strict),
        .executableTarget(
            name: "datadist",
            dependencies: [
                "DataDist", "DeviceCaps", "ThreadSanitizerSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),

        // Tests: helpers shared by the test targets (not a product), then one target per module
        .target(name: "DataDistTestSupport", path: "Tests/DataDistTestSupport", swiftSettings: strict),
        .testTarget(
            name: "DeviceCapsTests", dependencies: ["DeviceCaps", "DataDistTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "DeviceRuntimeTests",
            dependencies: [
                "DeviceRuntime", "DeviceCaps", "CFakeAscendCL", "DataDistTestSupport", "ThreadSanitizerSupport",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BlockPoolTests",
            dependencies: [
                "BlockPool", "DeviceRuntime", "DataDistTestSupport", "ThreadSanitizerSupport",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "LinkLayerTests",
            dependencies: [
                "LinkLayer", "DeviceRuntime", "CLinuxSupport", "DataDistTestSupport", "ThreadSanitizerSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "DataDistTests",
            dependencies: [
                "DataDist", "LinkLayer", "DeviceCaps", "BlockPool", "DeviceRuntime", "DataDistTestSupport",
                "ThreadSanitizerSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "DataDistCTests",
            dependencies: ["DataDistC", "CDataDist", "DataDist", "DataDistTestSupport", "ThreadSanitizerSupport"],
            swiftSettings: strict),
        .testTarget(name: "datadistTests", dependencies: ["datadist", "DataDistTestSupport"], swiftSettings: strict),
    ] + fuzzTargets
)
