// swift-tools-version: 6.2
import PackageDescription

// The DataDist benchmark suite: a package of its own so the main package never depends on the benchmark
// library. Run with `swift package benchmark` from this directory, or `./ratios.sh` for the ratio table.
let benchmarkTarget: (String) -> Target = { name in
    .executableTarget(
        name: name,
        dependencies: [
            "BenchSupport",
            .product(name: "DataDist", package: "DataDist"),
            .product(name: "Benchmark", package: "benchmark"),
        ],
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}

let package = Package(
    name: "DataDistBenchmarks",
    dependencies: [
        .package(name: "DataDist", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .target(
            name: "BenchSupport",
            dependencies: [
                .product(name: "DataDist", package: "DataDist"),
                .product(name: "Benchmark", package: "benchmark"),
            ]),
        // Not a benchmark: one row's loop for valgrind --tool=callgrind (see its main.swift), without the
        // benchmark library's malloc interposer in the process.
        .executableTarget(
            name: "ProfileDriver", dependencies: [.product(name: "DataDist", package: "DataDist")]),
        benchmarkTarget("CacheAllocation"),
        benchmarkTarget("KeyIndex"),
        benchmarkTarget("CopyCache"),
    ]
)
