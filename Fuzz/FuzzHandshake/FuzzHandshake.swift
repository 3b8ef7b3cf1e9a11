import CLinuxSupport
import Glibc
import LinkLayer

/// libFuzzer entry point: the handshake's parsing of what a peer sends. The first byte picks the step, the rest
/// arrives on a socket as the peer's bytes (then the peer stops writing):
/// - 0: the server side of `LinkHandshake.accept` on the TCP connection (the hello; every hello is refused, so
///   no connection is made to the socket it names);
/// - 1: the client side, the reply to its hello (`checkWelcome`);
/// - 2: the region exchange's receiving side (no descriptor is attached, so no region may be accepted);
/// - 3: `FrameInbox` reassembling frames split over writes (`splitFrames`);
/// - 4: the region exchange's receiving side with real descriptors (`regionExchange`).
/// Every socket is closed after each input; a leaked descriptor would end the run with `EMFILE` (steps 3 and 4
/// check that every descriptor they opened is closed).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let step = data[0] % 5
    if step >= 3 {
        let input = Array(UnsafeBufferPointer(start: data + 1, count: min(size - 1, 1 << 16)))
        let before = openDescriptors()
        if step == 3 { splitFrames(input) } else { regionExchange(input) }
        precondition(openDescriptors() == before, "step \(step) leaked descriptors")
        return 0
    }
    // At most what a socket buffer holds, so the single write never blocks.
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: min(size - 1, 1 << 16)))
    let (peer, local) = socketPair()
    defer { peer.close() }
    if !bytes.isEmpty {
        do { try peer.sendAll(bytes) } catch { preconditionFailure("writing the input: \(error)") }
    }
    _ = Glibc.shutdown(peer.fd, Int32(SHUT_WR))
    let deadline = ContinuousClock.now.advanced(by: .seconds(5))
    switch step {
    case 0:
        let outcome = LinkHandshake.accept(
            on: local, offer: LinkOffer(clusterID: 1, remoteCacheAccessible: false, regions: []),
            admission: RefuseEveryone(), timeout: .seconds(5))
        if case .success = outcome { preconditionFailure("a hello was admitted") }
        precondition((outcome != nil) == isHello(bytes), "outcome \(String(describing: outcome))")
    case 1:
        defer { local.close() }
        var inbox = FrameInbox()
        guard let frame = try? inbox.receiveFrame(from: local, until: deadline) else { return 0 }
        let endpoint = SocketEndpoint(host: "127.0.0.1", port: 1)
        if (try? LinkHandshake.checkWelcome(frame, remoteID: 7, endpoint: endpoint)) != nil {
            precondition(frame.kind == .welcome && frame.payload == ClusterIdentifier(7).encoded(), "\(frame)")
        }
    default:
        defer { local.close() }
        if let regions = try? RegionExchange.receive(from: local, writable: false, until: deadline) {
            precondition(regions.isEmpty, "\(regions.count) regions accepted without a descriptor")
        }
    }
    return 0
}

/// Step 3. The first byte gives n = 1 + byte % 8 chunk lengths, the next n bytes the lengths (each + 1); the rest is
/// a byte stream written in chunks of those lengths, cycled. After each chunk the reader takes what arrived into
/// a `FrameInbox` of the smallest capacity (so it grows and compacts) and decodes what it can. The frames it
/// decodes, and whether it found the stream invalid, must equal decoding the whole stream at once.
private func splitFrames(_ input: [UInt8]) {
    guard let first = input.first else { return }
    let chunks = 1 + Int(first % 8)
    guard input.count > chunks else { return }
    let lengths = input[1...chunks].map { Int($0) + 1 }
    let stream = Array(input[(chunks + 1)...])
    let (writer, reader) = socketPair()
    defer {
        writer.close()
        reader.close()
    }
    var inbox = FrameInbox(capacity: Frame.headerSize)
    var frames: [Frame] = []
    var invalid = false
    func decodeInHand() {
        while !invalid {
            switch inbox.next() {
            case .frame(let frame, _): frames.append(frame)
            case .incomplete: return
            case .invalid: invalid = true
            }
        }
    }
    var offset = 0
    var chunk = 0
    while offset < stream.count, !invalid {
        let end = min(stream.count, offset + lengths[chunk % chunks])
        do { try writer.sendAll(Array(stream[offset..<end])) } catch { preconditionFailure("writing: \(error)") }
        (offset, chunk) = (end, chunk + 1)
        while !invalid {
            let received: Int?
            do { received = try inbox.fill(from: reader) } catch { preconditionFailure("reading: \(error)") }
            guard let received, received > 0 else { break }
            decodeInHand()
        }
    }
    var expected: [Frame] = []
    var expectedInvalid = false
    var position = 0
    whole: while true {
        switch Frame.decode(stream[position...]) {
        case .frame(let frame, let consumed):
            expected.append(frame)
            position += consumed
        case .incomplete: break whole
        case .invalid:
            expectedInvalid = true
            break whole
        }
    }
    precondition(frames == expected, "\(frames.count) frames reassembled, \(expected.count) in the whole stream")
    precondition(invalid == expectedInvalid, "invalid: reassembled \(invalid), whole stream \(expectedInvalid)")
}

/// Step 4, a scripted peer of the region exchange with real descriptors. Byte 0: the count announced (% 20, so
/// beyond the limit of 16 too); byte 1, bit 0: a stray memfd attached to the count. Then two bytes per region
/// (until the count or the input ends): a kind and a page count (1 + byte % 32; its bit 0 the memory kind, bit 7
/// an invalid one). Kinds (% 8): 0 a size-sealed memfd announced exactly; 1 the same, its descriptor split over
/// two writes; 2 an unsealed memfd; 3 a sealed memfd announced one page larger than it is; 4 no descriptor;
/// 5 a pipe; 6 a sealed memfd announced as 0 bytes; 7 a sealed memfd, its descriptor over three writes (1, 5, 7
/// bytes). The exchange must succeed exactly when every announced region came, sealed, as large as announced, of
/// a valid kind, and map each as announced.
private func regionExchange(_ input: [UInt8]) {
    guard input.count >= 2 else { return }
    let count = Int(input[0] % 20)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let (peer, local) = socketPair()
    defer { local.close() }
    var valid = count <= RegionExchange.maxRegions
    var announced: [UInt64] = []
    do {
        defer { peer.close() }
        let stray = input[1] & 1 == 1 ? memfd(pages: 1, sealed: true) : -1
        defer { if stray >= 0 { close(stray) } }
        var header = WireWriter()
        header.u32(UInt32(count))
        try peer.send(header.bytes, passing: stray)
        var index = 2
        for region in 0..<min(count, RegionExchange.maxRegions) {
            guard index + 1 < input.count else {
                valid = false  // the peer stops early
                break
            }
            let (kind, shape) = (input[index] % 8, input[index + 1])
            index += 2
            let pages = 1 + Int(shape % 32)
            let memoryKind: UInt8 = shape & 0x80 != 0 ? 7 : shape & 1
            var size = UInt64(pages * page)
            let fd: Int32
            switch kind {
            case 0, 1, 7: fd = memfd(pages: pages, sealed: true)
            case 2: fd = memfd(pages: pages, sealed: false)
            case 3:
                fd = memfd(pages: pages, sealed: true)
                size += UInt64(page)
            case 4: fd = -1
            case 5:
                var ends: [Int32] = [-1, -1]
                precondition(pipe(&ends) == 0, "pipe: errno \(errno)")
                close(ends[1])
                fd = ends[0]
            default:
                fd = memfd(pages: pages, sealed: true)
                size = 0
            }
            defer { if fd >= 0 { close(fd) } }
            if !([0, 1, 7].contains(kind) && memoryKind <= 1) { valid = false }
            announced.append(size)
            var writer = WireWriter()
            writer.u32(UInt32(region))
            writer.u8(memoryKind)
            writer.u64(size)
            let bytes = writer.bytes
            switch kind {
            case 1:
                try peer.send(Array(bytes[..<5]), passing: fd)
                try peer.send(Array(bytes[5...]), passing: -1)
            case 7:
                try peer.send([bytes[0]], passing: fd)
                try peer.send(Array(bytes[1..<6]), passing: -1)
                try peer.send(Array(bytes[6...]), passing: -1)
            default:
                try peer.send(bytes, passing: fd)
            }
        }
    } catch {
        valid = false  // the receiver gave up and closed its end first
    }
    let deadline = ContinuousClock.now.advanced(by: .seconds(5))
    do {
        let mappings = try RegionExchange.receive(from: local, writable: false, until: deadline)
        precondition(valid, "a region exchange that breaks a rule was accepted")
        precondition(
            mappings.map { UInt64($0.size) } == announced, "mapped \(mappings.map(\.size)), announced \(announced)")
    } catch {
        precondition(!valid, "a valid region exchange was refused: \(error)")
    }
}

/// A memfd of `pages` pages, sealed against shrinking and growing or not.
private func memfd(pages: Int, sealed: Bool) -> Int32 {
    let fd = datadist_memfd_create("datadist-fuzz")
    precondition(fd >= 0, "memfd_create: errno \(errno)")
    precondition(ftruncate(fd, off_t(pages * Int(sysconf(Int32(_SC_PAGESIZE))))) == 0, "ftruncate: errno \(errno)")
    if sealed { precondition(datadist_memfd_seal_size(fd) == 0, "sealing: errno \(errno)") }
    return fd
}

/// The open descriptors among the first 64: new descriptors take the lowest free numbers, and the fuzzer keeps few
/// open, so a descriptor an input leaks shows among them.
private func openDescriptors() -> [Int32] {
    (0..<64).filter { fcntl($0, F_GETFD) >= 0 }
}

/// Whether `bytes` start with a hello frame whose payload decodes.
private func isHello(_ bytes: [UInt8]) -> Bool {
    guard case .frame(let frame, _) = Frame.decode(bytes[...]), frame.kind == .hello else { return false }
    return (try? Hello(payload: frame.payload)) != nil
}

private func socketPair() -> (Socket, Socket) {
    var fds: [Int32] = [-1, -1]
    let result = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    precondition(result == 0, "socketpair: errno \(errno)")
    return (Socket(fd: fds[0]), Socket(fd: fds[1]))
}

/// An admission that refuses every hello, as a server that links with no one.
private struct RefuseEveryone: LinkAdmission {
    func screen(_ hello: Hello) -> Refusal? { Refusal(status: 1, message: "cluster \(hello.clusterID) refused") }
    func register(_ link: EstablishedLink) -> Result<PeerChannel, Refusal> {
        preconditionFailure("register after a refused hello")
    }
    func refusal(forFailedSetup problem: String) -> Refusal { Refusal(status: 1, message: problem) }
    var mappingBudget: MappingBudget { .process }
}
