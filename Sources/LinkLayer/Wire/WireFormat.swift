/// Little-endian encoding of the control protocol's fields.
package struct WireWriter {
    package private(set) var bytes: [UInt8] = []

    package init() {}

    /// A writer whose buffer holds `capacity` bytes before it grows (a message's exact size saves the reallocations
    /// of growing byte by byte).
    package init(capacity: Int) { bytes.reserveCapacity(capacity) }

    package mutating func u8(_ value: UInt8) { bytes.append(value) }
    package mutating func u16(_ value: UInt16) { append(value) }
    package mutating func u32(_ value: UInt32) { append(value) }
    package mutating func u64(_ value: UInt64) { append(value) }
    package mutating func i32(_ value: Int32) { append(UInt32(bitPattern: value)) }
    package mutating func i64(_ value: Int64) { append(UInt64(bitPattern: value)) }
    package mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    /// A length-prefixed (u16) UTF-8 string, truncated to `WireReader.maxStringLength` bytes.
    package mutating func string(_ value: String) {
        let utf8 = Array(value.utf8.prefix(WireReader.maxStringLength))
        u16(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Bytes as they are (a field of fixed length, such as a nonce).
    package mutating func raw(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        // Byte by byte: into reserved capacity that is a few instructions each, where appending the value's
        // bytes as a buffer goes through the generic sequence append (hundreds per field).
        for index in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}

/// Bounds-checked decoding: every read checks what is left and throws instead of trapping.
package struct WireReader {
    package static let maxStringLength = 4096
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    package init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    package var remaining: Int { bytes.endIndex - position }

    package mutating func u8() throws(ProtocolError) -> UInt8 { try integer() }
    package mutating func u16() throws(ProtocolError) -> UInt16 { try integer() }
    package mutating func u32() throws(ProtocolError) -> UInt32 { try integer() }
    package mutating func u64() throws(ProtocolError) -> UInt64 { try integer() }
    package mutating func i32() throws(ProtocolError) -> Int32 { Int32(bitPattern: try integer()) }
    package mutating func i64() throws(ProtocolError) -> Int64 { Int64(bitPattern: try integer()) }

    package mutating func bool() throws(ProtocolError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw .malformed("boolean byte \(other)")
        }
    }

    package mutating func string() throws(ProtocolError) -> String {
        let count = Int(try u16())
        guard count <= Self.maxStringLength else { throw .malformed("string of \(count) bytes") }
        guard count <= remaining else { throw .malformed("string of \(count) bytes, \(remaining) left") }
        let slice = bytes[position..<position + count]
        position += count
        guard let text = String(validating: slice, as: UTF8.self) else { throw .malformed("string is not UTF-8") }
        return text
    }

    /// A u32 element count, checked against what the remaining bytes can hold and against `limit`.
    package mutating func count(elementSize: Int, limit: Int) throws(ProtocolError) -> Int {
        let count = Int(try u32())
        guard count <= limit else { throw .malformed("count \(count) exceeds \(limit)") }
        guard count * elementSize <= remaining else { throw .malformed("count \(count) but \(remaining) bytes left") }
        return count
    }

    /// The next `count` bytes as they are.
    package mutating func raw(count: Int) throws(ProtocolError) -> [UInt8] {
        guard remaining >= count else { throw .malformed("needs \(count) bytes, \(remaining) left") }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    package func expectEnd() throws(ProtocolError) {
        guard remaining == 0 else { throw .malformed("\(remaining) trailing bytes") }
    }

    private mutating func integer<T: FixedWidthInteger>() throws(ProtocolError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .malformed("needs \(size) bytes, \(remaining) left") }
        // One unaligned load inside the bytes just checked, instead of a bounds-checked read per byte.
        let offset = position - bytes.startIndex
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        position += size
        return T(littleEndian: value)
    }
}

/// A frame or message that does not follow the protocol.
package enum ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    case malformed(String)

    package var description: String {
        switch self {
        case .malformed(let reason): "malformed control message: \(reason)"
        }
    }
}
