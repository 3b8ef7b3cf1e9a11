import LinkLayer

/// libFuzzer entry point: every control-message decoder. The first byte picks the decoder, the rest is the
/// payload. The decoders are canonical: whatever one accepts must re-encode to exactly the bytes it read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let payload = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let decoders = MessageDecoder.allCases
    let decoder = decoders[Int(data[0]) % decoders.count]
    if let encoded = decoder.roundTrip(payload) {
        precondition(encoded == decoder.consumedPart(of: payload), "\(decoder): re-encoding differs")
    }
    return 0
}

/// The message types of the control protocol, one case per decoder.
enum MessageDecoder: CaseIterable {
    case hello, clusterIdentifier, refusal, resolve, batchResolve, grant, release, regionDescriptor, challenge, proof,
        ucxOffer, deliver, resolveDelivering

    /// Decodes `payload` and encodes the result again; nil when the decoder refused it.
    func roundTrip(_ payload: [UInt8]) -> [UInt8]? {
        switch self {
        case .hello: (try? Hello(payload: payload))?.encoded()
        case .clusterIdentifier: (try? ClusterIdentifier(payload: payload))?.encoded()
        case .refusal: (try? Refusal(payload: payload))?.encoded()
        case .resolve: (try? ResolveRequest(payload: payload))?.encoded()
        case .batchResolve: (try? BatchResolveRequest(payload: payload))?.encoded()
        case .grant: (try? Grant(payload: payload))?.encoded()
        case .release: (try? ReleaseNotice(payload: payload))?.encoded()
        case .regionDescriptor: regionDescriptor(payload)
        case .challenge: (try? LinkChallenge(payload: payload))?.encoded()
        case .proof: (try? LinkProof(payload: payload))?.encoded()
        case .ucxOffer: (try? UCXOffer(payload: payload))?.encoded()
        case .deliver: (try? DeliveryRequest(payload: payload))?.encoded()  // accept and landed use the same decoder
        case .resolveDelivering: (try? DeliveringResolve(payload: payload))?.encoded()
        }
    }

    /// The bytes a successful decode read: all of them, except for a region descriptor (a fixed-size prefix).
    func consumedPart(of payload: [UInt8]) -> [UInt8] {
        self == .regionDescriptor ? Array(payload.prefix(RegionDescriptor.encodedSize)) : payload
    }

    private func regionDescriptor(_ payload: [UInt8]) -> [UInt8]? {
        var reader = WireReader(payload[...])
        guard let descriptor = try? RegionDescriptor(from: &reader) else { return nil }
        var writer = WireWriter()
        descriptor.encode(into: &writer)
        return writer.bytes
    }
}
