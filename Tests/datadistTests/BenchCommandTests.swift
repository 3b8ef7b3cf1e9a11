import Foundation
import Testing

/// `datadist bench`: a short run of the real two-process path prints rows a script can read.
@Suite("datadist bench")
struct BenchCommandTests {
    @Test("bench --json: pull_cache and copy_cache rows with positive figures, latency only where measured, exit 0")
    func shortJSONRun() throws {
        let (output, rows) = try Self.jsonRun(sizes: "16KiB,64KiB", operations: "pull_cache,copy_cache")
        for row in rows {
            for field in [
                "operation", "bytes", "gbps", "ceilingGBps", "ratio", "allCoresCeilingGBps", "iterations", "verified",
            ] {
                #expect(row[field] != nil, "row without \(field): \(row)")
            }
            for field in ["gbps", "ceilingGBps", "ratio", "allCoresCeilingGBps"] {
                let value = try #require(row[field] as? Double, "\(field) is not a number: \(row)")
                #expect(value > 0 && value.isFinite, "\(field) = \(value) in \(row)")
            }
            #expect(row["verified"] as? Bool == true)
            #expect((row["iterations"] as? Int ?? 0) >= 2)
        }
        let bandwidth = rows.filter { $0["operation"] as? String == "pull_cache" && $0["p50us"] == nil }
        #expect(bandwidth.compactMap { $0["bytes"] as? Int }.sorted() == [16 << 10, 64 << 10])
        #expect(bandwidth.allSatisfy { $0["p99us"] == nil && $0["keys"] as? String == "prefix" })
        // Latency is measured at 16 KiB (of the latency sizes 16 KiB and 1 MiB), with request keys.
        let latency = rows.filter { $0["operation"] as? String == "pull_cache" && $0["p50us"] != nil }
        #expect(latency.count == 1)
        if let row = latency.first {
            #expect(row["bytes"] as? Int == 16 << 10)
            #expect(row["keys"] as? String == "request")
            let p50 = try #require(row["p50us"] as? Double)
            let p99 = try #require(row["p99us"] as? Double)
            #expect(p50 > 0 && p99 >= p50)
        }
        let copies = rows.filter { $0["operation"] as? String == "copy_cache" }
        #expect(copies.compactMap { $0["bytes"] as? Int }.sorted() == [16 << 10, 64 << 10])
        #expect(rows.count == 5)
        #expect(output.stderr.contains("bench: pull_cache 16 KiB"), "no progress on stderr: \(output.stderr)")
    }

    @Test(
        "bench --connect: the pull_cache and pull_caches rows against a bench-serve --host started on its own; its audit clean"
    )
    func connectToAStandaloneBenchServe() throws {
        let serve = try SpawnedCLI(
            ["bench-serve", "--host", "127.0.0.1", "--sizes", "16KiB,64KiB,256KiB", "--ring-bytes", "2MiB"])
        let ready = try serve.nextLine().split(separator: " ")
        let port = try #require(ready.count == 2 && ready[0] == "READY" ? UInt16(ready[1]) : nil, "\(ready)")
        let output = try CLI.run(
            [
                "bench", "--json", "--connect", "127.0.0.1:\(port)", "--sizes", "16KiB,64KiB,256KiB", "--duration",
                "0.05",
            ],
            timeout: .seconds(60))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        let single = rows.filter { $0["operation"] as? String == "pull_cache" }
        let batched = rows.filter { $0["operation"] as? String == "pull_caches" }
        #expect(single.compactMap { $0["bytes"] as? Int }.sorted() == [16 << 10, 64 << 10, 256 << 10])
        // pull_caches: 32 distinct prefix keys per call; the 256 KiB ring holds only 8, so that size has no row.
        #expect(batched.compactMap { $0["bytes"] as? Int }.sorted() == [32 * (16 << 10), 32 * (64 << 10)])
        #expect(single.count + batched.count == rows.count)
        for row in rows {
            #expect(row["keys"] as? String == "prefix")
            #expect(row["verified"] as? Bool == true && (row["gbps"] as? Double ?? 0) > 0, "\(row)")
        }
        // A size the server does not hold fails the run, naming what it serves; the server serves on.
        let missing = try CLI.run(
            ["bench", "--connect", "127.0.0.1:\(port)", "--sizes", "1MiB", "--duration", "0.05"],
            timeout: .seconds(60))
        #expect(missing.status != 0 && missing.stderr.contains("serves no 1 MiB ring"), "\(missing.stderr)")
        // pull_blocks needs a bench-serve started with --blocks, push_cache one with --remote-accessible.
        for (more, named) in [
            (["--operations", "pull_blocks"], "start it with --blocks"),
            (["--remote-accessible", "--operations", "push_cache"], "enableRemoteCacheAccessible differs"),
        ] {
            let refused = try CLI.run(
                ["bench", "--connect", "127.0.0.1:\(port)", "--sizes", "16KiB", "--duration", "0.05"] + more,
                timeout: .seconds(60))
            #expect(refused.status != 0 && refused.stderr.contains(named), "\(more): \(refused.stderr)")
        }
        serve.closeStandardInput()
        #expect(try serve.wait() == 0, "\(serve.standardError)")
        #expect(try serve.nextLine().hasPrefix("EXIT audit caches 0, keys 0, pages in use 0"))
    }

    @Test(
        "bench --connect: pull_blocks from a bench-serve --blocks and push_cache into its --remote-accessible push rings, verified, each row naming its transport"
    )
    func connectPullsBlocksAndPushes() throws {
        let serve = try SpawnedCLI(
            [
                "bench-serve", "--host", "127.0.0.1", "--sizes", "64KiB", "--ring-bytes", "1MiB", "--blocks", "8KiB",
                "--remote-accessible",
            ])
        let ready = try serve.nextLine().split(separator: " ")
        let port = try #require(ready.count == 2 && ready[0] == "READY" ? UInt16(ready[1]) : nil, "\(ready)")
        // Twice: the second run's pushes must land again (its pattern differs from what the first left).
        for _ in 0..<2 {
            let output = try CLI.run(
                [
                    "bench", "--json", "--connect", "127.0.0.1:\(port)", "--remote-accessible", "--sizes", "64KiB",
                    "--operations", "pull_blocks,push_cache", "--duration", "0.05",
                ], timeout: .seconds(60))
            #expect(output.status == 0, "stderr: \(output.stderr)")
            let rows = try #require(
                try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
            #expect(
                rows.compactMap { $0["operation"] as? String }.sorted() == ["pull_blocks", "pull_blocks", "push_cache"])
            let blocks = rows.filter { $0["operation"] as? String == "pull_blocks" }
            #expect(blocks.allSatisfy { $0["bytes"] as? Int == 122 * 64 * (8 << 10) }, "\(blocks)")
            for row in rows {
                #expect(row["verified"] as? Bool == true && (row["gbps"] as? Double ?? 0) > 0, "\(row)")
                #expect(["shm", "ucx"].contains(row["transport"] as? String ?? ""), "\(row)")
            }
        }
        serve.closeStandardInput()
        #expect(try serve.wait() == 0, "\(serve.standardError)")
        #expect(try serve.nextLine().hasPrefix("EXIT audit caches 0, keys 0, pages in use 0"))
    }

    @Test(
        "bench --connect against a bench-serve --host whose sources are corrupted: pull_cache and pull_caches rows say so",
        arguments: ["pull_cache", "pull_caches"])
    func connectDetectsCorruptedSources(operation: String) throws {
        let serve = try SpawnedCLI(
            ["bench-serve", "--host", "127.0.0.1", "--sizes", "16KiB", "--ring-bytes", "1MiB", "--corrupt"])
        let ready = try serve.nextLine().split(separator: " ")
        let port = try #require(ready.count == 2 && ready[0] == "READY" ? UInt16(ready[1]) : nil, "\(ready)")
        let output = try CLI.run(
            [
                "bench", "--json", "--connect", "127.0.0.1:\(port)", "--sizes", "16KiB", "--operations", operation,
                "--duration", "0.05",
            ], timeout: .seconds(60))
        #expect(output.status != 0, "stdout: \(output.stdout)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1 && rows.first?["operation"] as? String == operation, "\(rows)")
        #expect(rows.first?["verified"] as? Bool == false, "\(rows)")
        serve.closeStandardInput()
        #expect(try serve.wait() == 0, "\(serve.standardError)")
    }

    @Test(
        "bad --connect and --host values are refused, naming the value",
        arguments: [
            (["bench", "--connect", "127.0.0.1"], "--connect 127.0.0.1 is not HOST:PORT"),
            (["bench", "--connect", "127.0.0.1:0"], "port 0"),
            (["bench", "--connect", "localhost:7"], "localhost is not a numeric"),
            (
                ["bench", "--connect", "127.0.0.1:7", "--operations", "transfer_cache_async"],
                "only pull_blocks, pull_cache"
            ),
            (
                ["bench", "--connect", "127.0.0.1:7", "--operations", "push_cache"],
                "push_cache with --connect 127.0.0.1:7 needs --remote-accessible"
            ),
            (["bench", "--remote-accessible"], "--remote-accessible needs --connect"),
            (
                ["bench", "--connect", "127.0.0.1:7", "--remote-accessible", "--operations", "pull_cache"],
                "--operations pull_cache with --remote-accessible"
            ),
            (["bench-serve", "--blocks", "8KiB"], "--blocks 8KiB needs --host"),
            (["bench-serve", "--host", "127.0.0.1", "--blocks", "12"], "--blocks 12 is not a block size"),
            (["bench-serve", "--host", "127.0.0.1", "--blocks", "2MiB"], "--blocks 2MiB is not a block size"),
            (["bench-serve", "--host", "no.such.host"], "--host no.such.host is not a numeric"),
            (["bench-serve", "--host", "127.0.0.1", "--sizes", "12"], "--sizes 12"),
            (["bench-serve", "--host", "127.0.0.1", "--ring-bytes", "0"], "--ring-bytes 0"),
            (["bench-serve", "--listen", "nowhere"], "--listen nowhere is not a numeric"),
        ])
    func refusesBadEndpoints(_ arguments: [String], _ named: String) throws {
        let output = try CLI.run(arguments, timeout: .seconds(20))
        #expect(output.status != 0 && output.stderr.contains(named), "\(arguments): \(output.stderr)")
    }

    /// A short `bench --json` run (`duration` seconds per measurement) that must exit 0, and the rows it printed.
    static func jsonRun(sizes: String, operations: String, duration: String = "0.2") throws -> (
        output: CLI.Output, rows: [[String: Any]]
    ) {
        let output = try CLI.run(
            ["bench", "--json", "--sizes", sizes, "--duration", duration, "--operations", operations],
            timeout: .seconds(120))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        return (output, rows)
    }

    @Test(
        "bad arguments are refused before anything runs",
        arguments: [
            ["--sizes", "16KB"], ["--sizes", "12"], ["--sizes", "1GiB"], ["--duration", "0"],
            ["--operations", "pull_cache,teleport"], ["--transport", "rdma"], ["--transport", "UCX"],
        ])
    func refusesBadArguments(_ arguments: [String]) throws {
        let output = try CLI.run(["bench"] + arguments, timeout: .seconds(20))
        #expect(output.status != 0)
        #expect(output.stdout.isEmpty)
        #expect(output.stderr.contains(arguments[1]), "stderr does not name \(arguments[1]): \(output.stderr)")
    }
}

extension BenchCommandTests {
    @Test(
        "bench --transport: every pull row says which transport moved it, and it is the one asked for",
        arguments: ["shm", "ucx"])
    func rowsSayTheirTransport(transport: String) throws {
        let output = try CLI.run(
            [
                "bench", "--json", "--sizes", "64KiB", "--duration", "0.1", "--operations", "pull_cache",
                "--transport", transport,
            ], timeout: .seconds(60))
        #expect(output.status == 0, "stderr: \(output.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(!rows.isEmpty)
        for row in rows { #expect(row["transport"] as? String == transport, "\(row)") }
    }

    @Test(
        "bench --operations pull_small: 16 KiB pulls beside their round-trip floor (two processes with 1 K, 1 M and again 1 K keys, one process) and 32-block pullBlocks rows, all verified"
    )
    func smallTransferRows() throws {
        let (output, rows) = try Self.jsonRun(sizes: "16KiB", operations: "pull_small", duration: "0.05")
        let pulls = rows.filter { $0["operation"] as? String == "pull_small" }
        let patterns = pulls.compactMap { $0["pattern"] as? String }
        #expect(pulls.count == 4, "\(rows)")
        for (place, keys) in [
            ("two processes", "1 K"), ("two processes", "1 M"), ("two processes", "1 K (after the 1 M row)"),
            ("two engines in one process", "1 K"),
        ] {
            #expect(patterns.contains { $0.contains("\(place), \(keys) keys bound") }, "\(patterns)")
        }
        for row in pulls {
            #expect(row["verified"] as? Bool == true, "\(row)")
            #expect(row["keys"] as? String == "request" && row["bytes"] as? Int == 16 << 10)
            let values = ["p50us", "p99us", "ceilingP50us", "ceilingP99us"].map { row[$0] as? Double ?? 0 }
            #expect(values.allSatisfy { $0 > 0 && $0.isFinite }, "\(row)")
            #expect(values[1] >= values[0] && values[3] >= values[2], "\(row)")
        }
        let blocks = rows.filter { $0["operation"] as? String == "pull_blocks" }
        #expect(blocks.compactMap { $0["bytes"] as? Int } == [32 * (16 << 10), 32 * (64 << 10)], "\(blocks)")
        #expect(blocks.allSatisfy { $0["verified"] as? Bool == true && ($0["ratio"] as? Double ?? 0) > 0 })
        #expect(output.stderr.contains("bench: pull_small 16 KiB"), "no progress on stderr: \(output.stderr)")
    }

    @Test("bench --operations pull_caches: one verified row per size, the whole batch of 32 request keys per call")
    func batchedPullRows() throws {
        let (output, rows) = try Self.jsonRun(sizes: "16KiB,32MiB", operations: "pull_caches")
        #expect(rows.count == 1, "32 MiB is above the batched row's largest size: \(rows)")
        let row = try #require(rows.first)
        #expect(row["operation"] as? String == "pull_caches")
        #expect(row["batch"] as? Int == 32)
        #expect(row["bytes"] as? Int == 32 * (16 << 10))
        #expect(row["keys"] as? String == "request")
        #expect(row["verified"] as? Bool == true)
        #expect((row["gbps"] as? Double ?? 0) > 0 && (row["ratio"] as? Double ?? 0) > 0)
        #expect(row["p50us"] == nil)
        #expect(output.stderr.contains("bench: pull_caches 512 KiB"), "no progress on stderr: \(output.stderr)")
    }

    @Test("a corrupted source byte makes the run fail and the row say so")
    func corruptedSourceFails() throws {
        let output = try CLI.run(
            [
                "bench", "--json", "--sizes", "16KiB", "--duration", "0.1", "--operations", "pull_cache",
                "--corrupt-source",
            ],
            timeout: .seconds(60))
        #expect(output.status == 1, "stderr: \(output.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        let bandwidth = try #require(rows.first { $0["operation"] as? String == "pull_cache" && $0["p50us"] == nil })
        #expect(bandwidth["verified"] as? Bool == false)
        #expect((bandwidth["notes"] as? String)?.contains("differs") == true, "\(bandwidth)")
        #expect(output.stderr.contains("FAILED"))
    }
}
