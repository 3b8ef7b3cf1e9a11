internal import Glibc
import Synchronization
import ThreadSanitizerSupport

/// How many bytes of peers' regions this process maps: at most `perPeer` for one link, at most `total` for all
/// links together. A link whose peer announces more is refused before anything beyond the budget is mapped;
/// what a link mapped returns to the budget when its mappings are unmapped (the link went).
package final class MappingBudget: Sendable {
    /// The most one link's peer regions may take.
    package let perPeer: UInt64
    /// The most all links' peer regions together may take.
    package let total: UInt64
    private let mapped = Lock<UInt64>(0)

    /// Per peer 1 TiB (more than a host's device memory), in all 4 TiB: far below what the address space
    /// holds, which a peer announcing sparse pools of any size could otherwise exhaust.
    package static let defaultPerPeer: UInt64 = 1 << 40
    package static let defaultTotal: UInt64 = 4 << 40

    /// The budget of every link in this process that was given no other.
    package static let process = MappingBudget(perPeer: defaultPerPeer, total: defaultTotal)

    package init(perPeer: UInt64, total: UInt64) {
        self.perPeer = perPeer
        self.total = total
    }

    /// Bytes of peer regions mapped now under this budget.
    package var mappedBytes: UInt64 { mapped.withLock { $0 } }

    /// Takes `size` bytes for a region of a peer whose earlier regions on this link took `peerBytes`, or throws
    /// naming the sizes and the limit exceeded.
    func reserve(_ size: UInt64, peerBytes: UInt64, what region: String) throws(Socket.Failure) -> Reservation {
        let (peerTotal, overflow) = peerBytes.addingReportingOverflow(size)
        guard !overflow, peerTotal <= perPeer else {
            throw Socket.Failure(
                operation:
                    "map \(region) of \(size) bytes: the peer's pools would take \(peerBytes) + \(size) bytes, above the per-peer mapping limit of \(perPeer) bytes",
                errno: ENOMEM)
        }
        let refusal: UInt64? = mapped.withLock { mapped in
            guard size <= total, mapped <= total - size else { return mapped }
            mapped += size
            return nil
        }
        if let already = refusal {
            throw Socket.Failure(
                operation:
                    "map \(region) of \(size) bytes: peers' pools already take \(already) bytes, and the mapping limit of all peers together is \(total) bytes",
                errno: ENOMEM)
        }
        return Reservation(budget: self, size: size)
    }

    fileprivate func give(_ size: UInt64) { mapped.withLock { $0 -= size } }

    /// Bytes taken from a budget for one mapped region; given back when the reservation goes.
    final class Reservation: Sendable {
        private let budget: MappingBudget
        let size: UInt64

        fileprivate init(budget: MappingBudget, size: UInt64) {
            self.budget = budget
            self.size = size
        }

        deinit { budget.give(size) }
    }
}
