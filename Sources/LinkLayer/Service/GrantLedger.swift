import Synchronization
import ThreadSanitizerSupport

/// The grants a link's peer holds, kept where the owner delivers reads or receives writes
/// (`DataPlane.ownerDeliversReads`, `ownerReceivesWrites`) so that a `deliver` or `accept` request is checked
/// against them: every move must lie inside one extent of the grant it names, a grant this link holds for that
/// direction and has not released. Kept from the grant until its release or the link's close.
final class GrantLedger: Sendable {
    private struct Entry {
        /// Sorted by region and offset.
        var extents: [Grant.Extent]
        var direction: TransferDirection
    }

    /// Pin id → its grant.
    private let grants = Lock<[UInt64: Entry]>([:])

    func record(_ grant: Grant, _ direction: TransferDirection) {
        let sorted = grant.extents.sorted { ($0.regionID, $0.offset) < ($1.regionID, $1.offset) }
        grants.withLock { $0[grant.pinID] = Entry(extents: sorted, direction: direction) }
    }

    func forget(pinID: UInt64) { grants.withLock { _ = $0.removeValue(forKey: pinID) } }

    func clear() { grants.withLock { $0.removeAll() } }

    /// Why `request` asks for more than its `direction` grant allows, or nil when every move lies inside it.
    func problem(with request: DeliveryRequest, _ direction: TransferDirection) -> String? {
        let kind = direction == .read ? "read" : "write"
        guard let entry = grants.withLock({ $0[request.pinID] }), entry.direction == direction else {
            return "pin \(request.pinID) is not a \(kind) grant this link holds"
        }
        for (index, move) in request.moves.enumerated() where !Self.covers(entry.extents, move) {
            return
                "move \(index) (\(move.count) bytes at offset \(move.offset) of pool \(move.regionID)) lies outside grant \(request.pinID)"
        }
        return nil
    }

    /// Whether one of `extents` (sorted) holds all of `move`: the last extent starting at or before it.
    private static func covers(_ extents: [Grant.Extent], _ move: DeliveryRequest.Move) -> Bool {
        var low = 0
        var high = extents.count
        while low < high {
            let middle = (low + high) / 2
            if (extents[middle].regionID, extents[middle].offset) <= (move.regionID, move.offset) {
                low = middle + 1
            } else {
                high = middle
            }
        }
        guard low > 0 else { return false }
        let extent = extents[low - 1]
        guard extent.regionID == move.regionID else { return false }
        let into = move.offset - extent.offset
        return into <= extent.length && move.count <= extent.length - into
    }
}
