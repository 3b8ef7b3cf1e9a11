internal import CUCX
import DeviceRuntime
internal import Glibc
import Synchronization
import ThreadSanitizerSupport

/// Where the bytes owners deliver to this worker land (active message `messageID`, eager). Each expected
/// delivery lists exactly the local ranges one read of this process takes; a message naming no open delivery,
/// or a range outside its moves, is dropped. Messages are copied by whichever thread progresses the worker,
/// outside the lock; `finish` waits for a copy in progress, so nothing is written after it returns. A move into
/// device memory (`Move.toDevice`) is copied by the runtime of the delivery's `UCXStaging` (host → device), never
/// by host code; a failed copy fails the delivery.
final class UCXInbox: Sendable {
    static let messageID: UInt32 = 1

    /// A message's header: token (u64), move index (u32), offset in the move (u64), little-endian.
    struct Header {
        static let size = 20
        var token: UInt64
        var move: UInt32
        var offset: UInt64

        func write(to destination: UnsafeMutableRawPointer) {
            destination.storeBytes(of: token.littleEndian, toByteOffset: 0, as: UInt64.self)
            destination.storeBytes(of: move.littleEndian, toByteOffset: 8, as: UInt32.self)
            destination.storeBytes(of: offset.littleEndian, toByteOffset: 12, as: UInt64.self)
        }

        init(token: UInt64, move: UInt32, offset: UInt64) {
            self.token = token
            self.move = move
            self.offset = offset
        }

        init?(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count == Self.size else { return nil }
            token = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            move = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            offset = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt64.self))
        }
    }

    /// One move of a delivery: local address and length, and whether it is device memory.
    struct Move {
        var local: UInt
        var count: Int
        var toDevice = false
    }

    private struct Expected {
        var moves: [Move]
        var staging: UCXStaging?
        var received: [Int]
        var missing: Int
        var copying = 0
        var open = true
        /// Why a copy into device memory failed, once one did.
        var failure: String?
    }

    private let expected = Lock<[UInt64: Expected]>([:])

    /// Registers `self` as the handler of `messageID` on `worker` (which must not outlive it).
    func install(on worker: OpaquePointer) throws(LinkError) {
        let status = datadist_ucp_set_am_handler(
            worker, Self.messageID,
            { argument, header, headerLength, data, length, parameters in
                guard let argument, let parameters else { return UCS_OK }
                // A rendezvous message would need an answer; senders here always send eagerly.
                guard datadist_ucp_am_is_rndv(parameters) == 0, let header, let data else { return UCS_OK }
                Unmanaged<UCXInbox>.fromOpaque(argument).takeUnretainedValue().receive(
                    UnsafeRawBufferPointer(start: header, count: headerLength), data, length)
                return UCS_OK
            }, Unmanaged.passUnretained(self).toOpaque())
        guard status == UCS_OK else {
            throw LinkError(.io, "UCX: setting the delivery handler failed: \(ucxDescription(status))")
        }
    }

    /// Opens a delivery of `moves`, those into device memory copied by `staging`'s runtime; returns its token.
    func open(_ moves: [Move], staging: UCXStaging? = nil) -> UInt64 {
        let entry = Expected(
            moves: moves, staging: staging, received: Array(repeating: 0, count: moves.count),
            missing: moves.reduce(0) { $0 + $1.count })
        return expected.withLock { table in
            var token = UInt64.random(in: 1...UInt64.max)
            while table[token] != nil { token = UInt64.random(in: 1...UInt64.max) }
            table[token] = entry
            return token
        }
    }

    /// Whether every byte of delivery `token` arrived (true as well for one that is not open).
    func isComplete(_ token: UInt64) -> Bool {
        expected.withLock { table in (table[token]?.missing ?? 0) == 0 }
    }

    /// Why delivery `token` cannot complete (a copy into device memory failed), or nil.
    func failure(_ token: UInt64) -> String? {
        expected.withLock { table in table[token]?.failure }
    }

    /// Closes delivery `token`: later messages for it are dropped; returns once no copy into it is running.
    func close(_ token: UInt64) {
        expected.withLock { $0[token]?.open = false }
        while expected.withLock({ table in (table[token]?.copying ?? 0) > 0 }) { sched_yield() }
        expected.withLock { _ = $0.removeValue(forKey: token) }
    }

    private func receive(_ headerBytes: UnsafeRawBufferPointer, _ data: UnsafeMutableRawPointer, _ length: Int) {
        guard let header = Header(headerBytes), length > 0 else { return }
        let index = Int(header.move)
        let landing = expected.withLock { table -> (UInt, UCXStaging?)? in
            guard let entry = table[header.token], entry.open, entry.failure == nil, index < entry.moves.count
            else { return nil }
            let move = entry.moves[index]
            guard header.offset <= UInt64(move.count), UInt64(length) <= UInt64(move.count) - header.offset,
                entry.received[index] + length <= move.count
            else { return nil }
            // Reserved before the copy; mutated in place (no copy of the entry's arrays per message).
            table[header.token]!.received[index] += length
            table[header.token]!.copying += 1
            return (move.local + UInt(header.offset), move.toDevice ? entry.staging : nil)
        }
        guard let (destination, staging) = landing, let target = UnsafeMutableRawPointer(bitPattern: destination)
        else { return }
        var failure: String?
        if let staging {
            do throws(DeviceError) {
                try staging.runtime.copy(
                    to: destination, capacity: length, from: UInt(bitPattern: data), count: length,
                    kind: .hostToDevice, device: staging.device)
            } catch {
                failure = "copying \(length) bytes into device memory failed: \(error)"
            }
        } else {
            target.copyMemory(from: data, byteCount: length)
        }
        expected.withLock { table in
            guard table[header.token] != nil else { return }
            table[header.token]!.copying -= 1
            if let failure {
                if table[header.token]!.failure == nil { table[header.token]!.failure = failure }
            } else {
                table[header.token]!.missing -= length
            }
        }
    }
}
