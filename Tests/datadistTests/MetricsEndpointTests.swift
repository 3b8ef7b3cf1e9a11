import Foundation
import Testing

/// `datadist serve --metrics-port`: Prometheus text on `/metrics` over HTTP, and `pull --json`'s final metrics.
@Suite("datadist serve --metrics-port / pull metrics", .serialized, .timeLimit(.minutes(2)))
struct MetricsEndpointTests {
    @Test("serve --metrics-port 0 serves Prometheus text on /metrics; pull --json reports its transfers")
    func scrapeServeAndReadPullMetrics() throws {
        let serve = try SpawnedCLI(
            ["serve", "--json", "--requests", "3", "--remove", "1", "--metrics-port", "0"]
                + TransferCommandTests.smallShape)
        let ready = try serve.nextJSON()
        let port = try #require(ready["port"] as? Int, "\(ready)")
        let metricsPort = try #require(ready["metricsPort"] as? Int, "ready line without metricsPort: \(ready)")

        let before = try Prometheus.parse(Self.get(port: metricsPort, path: "/metrics", expecting: 200))
        #expect(before[#"datadist_keys_bound{cluster="1"}"#] == 2)
        #expect(before[#"datadist_audit_orphans{cluster="1"}"#] == 0)
        #expect(before[#"datadist_pool_pages_in_use{cluster="1",pool="device"}"#].map { $0 > 0 } == true)

        let (status, report) = try TransferCommandTests.runPull(
            ["--port", "\(port)", "--requests", "3", "--removed", "1", "--layer-wise", "none"]
                + TransferCommandTests.smallShape)
        #expect(status == 0, "\(report)")
        let metrics = try #require(report["metrics"] as? [String: Any], "pull report without metrics: \(report)")
        let links = try #require(metrics["links"] as? [[String: Any]])
        #expect(links.count == 1)
        let link = try #require(links.first)
        // Requests 0 and 2 pulled, each then refused as consumed; request 1 refused as removed.
        #expect(link["peerClusterID"] as? Int == 1 && link["transport"] as? String == "shm")
        #expect(link["transfersStarted"] as? Int == 5 && link["transfersSucceeded"] as? Int == 2)
        #expect(link["transfersFailed"] as? [String: Int] == ["LLM_KV_CACHE_NOT_EXIST": 3])
        #expect(link["bytes"] as? Int == 2 * TransferCommandTests.smallRequestBytes)
        #expect(link["linksEstablished"] as? Int == 1 && link["linksClosed"] as? Int == 1)
        #expect(metrics["auditOrphans"] as? Int == 0)

        let peer = #"cluster="1",peer_cluster="2",transport="shm""#
        var after: [String: Double] = [:]
        let deadline = ContinuousClock.now + .seconds(5)
        repeat {
            after = try Prometheus.parse(Self.get(port: metricsPort, path: "/metrics", expecting: 200))
            if after["datadist_links_closed_total{\(peer)}"] == 1 { break }
            usleep(20_000)
        } while ContinuousClock.now < deadline
        #expect(after["datadist_links_established_total{\(peer)}"] == 1)
        #expect(after["datadist_links_closed_total{\(peer)}"] == 1)
        #expect(after[#"datadist_links_open{cluster="1"}"#] == 0)
        #expect(after[#"datadist_keys_bound{cluster="1"}"#] == 0, "both remaining keys were pulled")
        #expect(after[#"datadist_audit_orphans{cluster="1"}"#] == 0)
        #expect(after["datadist_transfers_started_total{\(peer)}"] == 0, "the prompt only serves")
        #expect(after["datadist_served_grants_total{\(peer)}"] == 2)
        #expect(after[#"datadist_served_refusals_total{\#(peer),status="LLM_KV_CACHE_NOT_EXIST"}"#] == 3)
        #expect(after[#"datadist_served_refusals_total{\#(peer),status="LLM_TIMEOUT"}"#] == 0, "every status is listed")
        _ = try Self.get(port: metricsPort, path: "/other", expecting: 404)

        serve.closeStandardInput()
        #expect(try serve.nextJSON()["event"] as? String == "exit")
        #expect(try serve.wait() == 0)
    }

    @Test("bench-serve --host --metrics-port 0: a METRICS line before READY, and /metrics with the rings' keys")
    func benchServeMetrics() throws {
        let serve = try SpawnedCLI(
            ["bench-serve", "--host", "127.0.0.1", "--sizes", "16KiB", "--ring-bytes", "64KiB", "--metrics-port", "0"])
        let first = try serve.nextLine()
        let metricsPort = try #require(Int(first.dropFirst("METRICS ".count)), "first line: \(first)")
        #expect(first.hasPrefix("METRICS "))
        #expect(try serve.nextLine().hasPrefix("READY "))
        let samples = try Prometheus.parse(Self.get(port: metricsPort, path: "/metrics", expecting: 200))
        #expect(samples[#"datadist_keys_bound{cluster="1"}"#].map { $0 > 0 } == true, "\(samples)")
        #expect(samples[#"datadist_audit_orphans{cluster="1"}"#] == 0)
        serve.closeStandardInput()
        #expect(try serve.nextLine().hasPrefix("EXIT audit"))
        #expect(try serve.wait() == 0)
    }

    @Test("--metrics-host without --metrics-port, or a bad address, is refused")
    func badMetricsOptions() throws {
        let alone = try CLI.run(["serve", "--metrics-host", "127.0.0.1"], timeout: .seconds(20))
        #expect(alone.status != 0 && alone.stderr.contains("--metrics-host needs --metrics-port"), "\(alone.stderr)")
        let bad = try CLI.run(["serve", "--metrics-port", "0", "--metrics-host", "nowhere"], timeout: .seconds(20))
        #expect(
            bad.status != 0 && bad.stderr.contains("--metrics-host nowhere is not a numeric IPv4 or IPv6 address"),
            "\(bad.stderr)")
    }

    /// `GET path` on 127.0.0.1:`port` (HTTP/1.1, `Connection: close`); the body, after checking the status.
    static func get(port: Int, path: String, expecting status: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw CLI.Failure(description: "connect to port \(port): errno \(errno)") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == request.count)
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            response += buffer[..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else {
            throw CLI.Failure(description: "no HTTP response from port \(port): \(text)")
        }
        let statusLine = text[..<split.lowerBound].split(separator: "\r\n").first ?? ""
        #expect(statusLine.hasPrefix("HTTP/1.1 \(status) "), "\(statusLine)")
        return String(text[split.upperBound...])
    }
}

/// A strict reader of the Prometheus text format (version 0.0.4) as far as these tests need it.
enum Prometheus {
    /// Every sample as `name{labels}` → value; throws on a line that is neither a comment, nor blank, nor a
    /// well-formed sample, and on a sample whose metric has no `# TYPE` line before it.
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        var typed: Set<String> = []
        let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
        let sample = try Regex(#"^(\#(name))(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? (\S+)$"#)
        let type = try Regex(#"^# TYPE (\#(name)) (counter|gauge|histogram|summary|untyped)$"#)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") {
                if line.hasPrefix("# TYPE") {
                    guard let match = try type.wholeMatch(in: line), let metric = match[1].substring else {
                        throw CLI.Failure(description: "malformed TYPE line: \(line)")
                    }
                    typed.insert(String(metric))
                }
                continue
            }
            guard let match = try sample.wholeMatch(in: line), let metric = match[1].substring,
                let valueText = match[match.count - 1].substring, let value = Double(valueText)
            else { throw CLI.Failure(description: "malformed sample line: \(line)") }
            let family = ["_bucket", "_sum", "_count"].reduce(String(metric)) { family, suffix in
                family.hasSuffix(suffix) && typed.contains(String(family.dropLast(suffix.count)))
                    ? String(family.dropLast(suffix.count)) : family
            }
            guard typed.contains(family) else { throw CLI.Failure(description: "sample before its TYPE: \(line)") }
            samples[String(line[..<line.lastIndex(of: " ")!])] = value
        }
        return samples
    }
}
