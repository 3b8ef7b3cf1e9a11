import Synchronization
import ThreadSanitizerSupport

/// The read grants a link's peer holds, kept where the owner delivers reads (`DataPlane.ownerDeliversReads`)
/// so that a `deliver` request is checked against them: every move must lie inside one extent of the grant it
/// names, a grant this link holds and has not released. Kept from the grant until its release or the link's
/// close.
final class GrantLedger: Sendable {
    /// Pin id → its grant's extents, sorted by region and offset.
    private let grants = Lock<[UInt64: [Grant.Extent]]>([:])

    func record(_ grant: Grant) {
        let sorted = grant.extents.sorted { ($0.regionID, $0.offset) < ($1.regionID, $1.offset) }
        grants.withLock { $0[grant.pinID] = sorted }
    }

    func forget(pinID: UInt64) { grants.withLock { _ = $0.removeValue(forKey: pinID) } }

    func clear() { grants.withLock { $0.removeAll() } }

    /// Why `request` asks for more than its grant allows, or nil when every move lies inside it.
    func problem(with request: DeliveryRequest) -> String? {
        guard let extents = grants.withLock({ $0[request.pinID] }) else {
            return "pin \(request.pinID) is not a read grant this link holds"
        }
        for (index, move) in request.moves.enumerated() where !Self.covers(extents, move) {
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
