/// Which memory a cache or region lives in, as the control protocol names it.
package enum MemoryKind: UInt8, Sendable, Hashable {
    case host = 0
    case device = 1

    init(from reader: inout WireReader) throws(ProtocolError) {
        let raw = try reader.u8()
        guard let kind = MemoryKind(rawValue: raw) else { throw .malformed("memory kind \(raw)") }
        self = kind
    }
}
