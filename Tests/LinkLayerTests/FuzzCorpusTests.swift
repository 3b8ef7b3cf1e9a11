import DataDistTestSupport
import Foundation
import LinkLayer
import Testing

/// The fuzz targets' seed corpus (`Fuzz/corpus/<target>/`), made by the encoders: every committed seed equals what
/// the encoders produce now, so a protocol change fails here until the corpus is regenerated with
/// `DATADIST_WRITE_FUZZ_CORPUS=1 swift test --filter FuzzCorpusTests`.
@Suite struct FuzzCorpusTests {
    /// One seed: its target's folder, its file name and its bytes.
    struct Seed: Sendable, CustomTestStringConvertible {
        var target: String
        var name: String
        var bytes: [UInt8]
        var testDescription: String { "\(target)/\(name)" }
    }

    static let hello = Hello(
        clusterID: 2, expectedClusterID: 1, remoteCacheAccessible: false, bootID: "0f6b3c1e-boot",
        unixSocket: "datadist.4242.2.77")
    static let grant = Grant(
        pinID: 9, kind: .host, isBlocks: false, stride: 4096, slots: 2, tensorCount: 2,
        extents: [.init(regionID: 0, offset: 0, length: 4096), .init(regionID: 0, offset: 65536, length: 4096)])
    static let batch = BatchResolveRequest(items: [
        .init(reqID: 1, prefixID: .max, modelID: 0, tensorCount: 2, bytesPerSlot: 4096, requesterKind: .host, label: 0),
        .init(
            reqID: .max, prefixID: 3, modelID: 0, tensorCount: 2, bytesPerSlot: 4096, requesterKind: .device, label: 1),
    ])

    /// A valid payload of every message kind.
    static let payloads: [(String, MessageKind, [UInt8])] = [
        ("hello", .hello, hello.encoded()),
        ("welcome", .welcome, ClusterIdentifier(1).encoded()),
        ("resolve-key", .resolve, resolve(.key(reqID: 5, prefixID: .max, modelID: 0), blocks: [])),
        ("resolve-slot", .resolve, resolve(.slot(cacheID: 3, batchIndex: 1), blocks: [])),
        ("resolve-blocks", .resolve, resolve(.blocks(modelID: 4), blocks: [0, 2, 5])),
        ("grant", .grant, grant.encoded()),
        ("release", .release, ReleaseNotice(pinID: 9, succeeded: true).encoded()),
        ("unlink", .unlink, ClusterIdentifier(2).encoded()),
        ("ping", .ping, []),
        ("ack", .ack, []),
        ("refusal", .refusal, Refusal(status: 4, message: "cache key (1, 5) does not exist").encoded()),
        ("batch-resolve", .batchResolve, batch.encoded()),
        ("challenge", .challenge, LinkChallenge(nonce: Array(0..<32)).encoded()),
        ("proof", .proof, LinkProof(nonce: Array(32..<64), mac: Array(64..<96)).encoded()),
        ("resolve-address", .resolve, resolve(.address(0x7f00_0000_1000), blocks: [])),
        (
            "resolve-delivering", .resolveDelivering,
            DeliveringResolve(
                resolve: ResolveRequest(
                    target: .key(reqID: 5, prefixID: .max, modelID: 0), write: false, tensors: 0..<2,
                    bytesPerSlot: 4096, requesterKind: .host, requesterIsBlocks: false, blocks: []),
                token: 3, tensorCount: 2, destinations: [0x7f00_0001_0000, 0x7f00_0002_0000]
            ).encoded()
        ),
    ]

    static func resolve(_ target: ResolveTarget, blocks: [UInt32]) -> [UInt8] {
        ResolveRequest(
            target: target, write: false, tensors: 0..<2, bytesPerSlot: 4096, requesterKind: .host,
            requesterIsBlocks: !blocks.isEmpty, blocks: blocks
        ).encoded()
    }

    static func frame(_ kind: MessageKind, _ payload: [UInt8]) -> [UInt8] {
        Frame(kind: kind, requestID: 1, payload: payload).encoded()
    }

    /// The first byte of a `FuzzMessages` input: the decoder's index in its `MessageDecoder` enumeration.
    static let messageSelectors: [MessageKind: UInt8] = [
        .hello: 0, .welcome: 1, .unlink: 1, .refusal: 2, .resolve: 3, .batchResolve: 4, .grant: 5, .release: 6,
        .challenge: 8, .proof: 9, .resolveDelivering: 12,
    ]

    static var seeds: [Seed] {
        var seeds: [Seed] = []
        for (name, kind, payload) in payloads {
            seeds.append(Seed(target: "frame", name: "\(name).bin", bytes: frame(kind, payload)))
            if let selector = messageSelectors[kind] {
                seeds.append(Seed(target: "messages", name: "\(name).bin", bytes: [selector] + payload))
            }
        }
        var region = WireWriter()
        RegionDescriptor(regionID: 0, kind: .host, size: 64 << 20).encode(into: &region)
        var noRegions = WireWriter()
        noRegions.u32(0)
        let wrongVersion = frame(.hello, hello.encoded()).enumerated().map { $0 == 4 ? 1 : $1 }
        seeds += [
            Seed(target: "messages", name: "region-descriptor.bin", bytes: [7] + region.bytes),
            Seed(target: "frame", name: "bad-magic.bin", bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8)),
            Seed(target: "frame", name: "truncated.bin", bytes: Array(frame(.grant, grant.encoded()).dropLast(5))),
            Seed(target: "frame", name: "oversized.bin", bytes: Array(frame(.ping, []).prefix(16)) + [1, 0, 16, 0]),
            Seed(target: "frame", name: "wrong-version.bin", bytes: wrongVersion),
            Seed(target: "messages", name: "grant-short.bin", bytes: [5] + grant.encoded().dropLast(3)),
            Seed(target: "messages", name: "hello-trailing.bin", bytes: [0] + hello.encoded() + [0]),
            Seed(target: "handshake", name: "hello.bin", bytes: [0] + frame(.hello, hello.encoded())),
            Seed(target: "handshake", name: "hello-wrong-version.bin", bytes: [0] + wrongVersion),
            Seed(target: "handshake", name: "ping-not-hello.bin", bytes: [0] + frame(.ping, [])),
            Seed(
                target: "handshake", name: "welcome.bin", bytes: [1] + frame(.welcome, ClusterIdentifier(7).encoded())),
            Seed(target: "handshake", name: "refusal.bin", bytes: [1] + frame(.refusal, payloads[10].2)),
            Seed(target: "handshake", name: "no-regions.bin", bytes: [2] + noRegions.bytes),
            Seed(target: "handshake", name: "one-region-no-fd.bin", bytes: [2, 1, 0, 0, 0] + region.bytes),
            // Step 3, frames split over writes: 3 chunk lengths (7, 1, 30 bytes, cycled), then the stream.
            Seed(
                target: "handshake", name: "split-frames.bin",
                bytes: [3, 3, 6, 0, 29] + frame(.hello, hello.encoded()) + frame(.ping, [])
                    + frame(.grant, grant.encoded())),
            // Step 4, a scripted region exchange: 2 regions announced; a sealed memfd of 2 pages announced exactly,
            // its descriptor split over two writes; then an unsealed one.
            Seed(target: "handshake", name: "regions-sealed-unsealed.bin", bytes: [4, 2, 0, 0, 2, 6, 2, 2, 2]),
        ]
        return seeds
    }

    static let corpus = TestPaths.packageRoot.appendingPathComponent("Fuzz/corpus")

    @Test(arguments: seeds) func committedSeedMatchesTheEncoders(_ seed: Seed) throws {
        let url = Self.corpus.appendingPathComponent(seed.target).appendingPathComponent(seed.name)
        if ProcessInfo.processInfo.environment["DATADIST_WRITE_FUZZ_CORPUS"] == "1" {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(seed.bytes).write(to: url)
        }
        let committed = try #require(FileManager.default.contents(atPath: url.path), "missing \(url.path)")
        #expect([UInt8](committed) == seed.bytes)
    }

    @Test(arguments: payloads) func validFrameSeedsDecode(_ name: String, _ kind: MessageKind, _ payload: [UInt8]) {
        let bytes = Self.frame(kind, payload)
        #expect(
            Frame.decode(bytes[...]) == .frame(Frame(kind: kind, requestID: 1, payload: payload), consumed: bytes.count)
        )
    }

    @Test(arguments: ["bad-magic.bin", "truncated.bin", "oversized.bin", "wrong-version.bin"])
    func malformedFrameSeedsDoNotDecode(_ name: String) throws {
        let seed = try #require(Self.seeds.first { $0.target == "frame" && $0.name == name })
        guard case .frame = Frame.decode(seed.bytes[...]) else { return }
        Issue.record("\(name) decoded as a frame")
    }
}
