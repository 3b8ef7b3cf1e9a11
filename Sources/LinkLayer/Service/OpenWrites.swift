import Synchronization
import ThreadSanitizerSupport

/// The deliveries an owner opened for a link's writes (`DataPlane.ownerReceivesWrites`), from the `accept` that
/// opened one until its `landed`, the release of its grant, or the link's close: each is finished then, so the
/// owner's memory takes no bytes after the write ended.
final class OpenWrites: Sendable {
    private struct Entry: Sendable {
        var pinID: UInt64
        var delivery: any IncomingDelivery
    }

    /// Token → its delivery.
    private let open = Lock<[UInt64: Entry]>([:])

    func add(_ delivery: any IncomingDelivery, pinID: UInt64) {
        open.withLock { $0[delivery.token] = Entry(pinID: pinID, delivery: delivery) }
    }

    /// Takes delivery `token` of grant `pinID` out (the caller finishes it), or nil when none is open.
    func take(_ token: UInt64, pinID: UInt64) -> (any IncomingDelivery)? {
        open.withLock { table in
            guard let entry = table[token], entry.pinID == pinID else { return nil }
            table[token] = nil
            return entry.delivery
        }
    }

    /// Finishes every delivery of grant `pinID`.
    func finish(pinID: UInt64) {
        let ended = open.withLock { table in
            let ended = table.filter { $0.value.pinID == pinID }
            for token in ended.keys { table[token] = nil }
            return Array(ended.values)
        }
        for entry in ended { entry.delivery.finish() }
    }

    /// Finishes every delivery.
    func finishAll() {
        let ended = open.withLock { table in
            defer { table.removeAll() }
            return Array(table.values)
        }
        for entry in ended { entry.delivery.finish() }
    }
}
