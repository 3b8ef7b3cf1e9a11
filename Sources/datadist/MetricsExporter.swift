import ArgumentParser
import CoreMetrics
import DataDist
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization
import ThreadSanitizerSupport

/// `--metrics-port` and `--metrics-host` of `serve` and `bench-serve`.
struct MetricsOptions: ParsableArguments {
    @Option(help: "Serve Prometheus metrics over HTTP at /metrics on this port (0 picks a free one). Default: off.")
    var metricsPort: UInt16?

    @Option(help: "With --metrics-port: the address the metrics endpoint listens on (default 127.0.0.1).")
    var metricsHost: String?

    func validate() throws {
        if metricsHost != nil, metricsPort == nil { throw ValidationError("--metrics-host needs --metrics-port") }
        if let metricsHost, !BenchServeCommand.isNumericAddress(metricsHost) {
            throw ValidationError("--metrics-host \(metricsHost) is not a numeric IPv4 or IPv6 address")
        }
    }

    /// Bootstraps swift-prometheus as the process's metrics backend and starts the endpoint, when asked for; call
    /// before making the instance whose `metrics()` `sample` reads (it takes the backend when it is made).
    func startExporter() throws -> MetricsExporter? {
        guard let metricsPort else { return nil }
        return try MetricsExporter(host: metricsHost ?? "127.0.0.1", port: Int(metricsPort))
    }
}

/// The process's Prometheus registry (the swift-metrics backend of this CLI process) and the HTTP listener that
/// serves it in the Prometheus text format on `GET /metrics`.
final class MetricsExporter: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let channel: any Channel
    /// Sets the sampled gauges before each scrape (the instance's `metrics()`).
    private let sampler = SamplerBox()

    /// The port the endpoint actually listens on.
    let port: Int

    /// Buckets of the duration histograms: transfers take microseconds to seconds.
    static let durationBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    init(host: String, port: Int) throws {
        var factory = PrometheusMetricsFactory(registry: registry)
        for name in MetricName.durationHistograms { factory.durationHistogramBuckets[name] = Self.durationBuckets }
        MetricsSystem.bootstrap(factory)
        let (registry, sampler) = (registry, sampler)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHTTPHandler {
                            sampler.sample()
                            return registry.emitToBuffer()
                        })
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw ValidationError("--metrics-port \(port) on \(host): \(error)")
        }
        self.port = channel.localAddress?.port ?? port
    }

    /// Runs `sample` before each scrape.
    func sampleBeforeScrapes(_ sample: @escaping @Sendable () -> Void) { sampler.set(sample) }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// The sampler a scrape runs, set once the instance exists.
private final class SamplerBox: Sendable {
    private let sampler = Lock<(@Sendable () -> Void)?>(nil)

    func set(_ sample: @escaping @Sendable () -> Void) { sampler.withLock { $0 = sample } }

    func sample() { sampler.withLock { $0 }?() }
}

/// Answers `GET /metrics` with the registry's text; any other path 404, any other method 405.
private final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var request: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, body): (HTTPResponseStatus, [UInt8]) =
            head.method != .GET && head.method != .HEAD
            ? (.methodNotAllowed, Array("only GET /metrics\n".utf8))
            : path == "/metrics" ? (.ok, render()) : (.notFound, Array("only GET /metrics\n".utf8))
        var headers = HTTPHeaders()
        headers.add(
            name: "Content-Type",
            value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.count)")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
