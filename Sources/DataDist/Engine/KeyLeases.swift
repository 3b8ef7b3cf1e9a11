import DeviceRuntime
import Dispatch

/// The leases of request keys (`LLMConfig.requestKeyLease`): every lease given, in the order given, which is
/// also the order of their deadlines (all leases last as long). A lease is identified by a stamp the key's
/// binding carries; a lease whose key was pulled, removed or leased again meanwhile no longer matches its
/// binding's stamp and is skipped when it comes due.
struct KeyLeases: Sendable {
    /// One lease given: `key` may expire at `deadline` if its binding still carries `stamp`.
    struct Lease: Sendable {
        let deadline: UInt64
        let key: IndexKey
        let stamp: UInt64
    }

    /// How long a lease lasts, in nanoseconds.
    let duration: UInt64
    /// Leases given and not yet due or skipped: `queue[head...]`, oldest first.
    private var queue: [Lease] = []
    private var head = 0
    private var nextStamp: UInt64 = 1
    /// Keys expired so far.
    private(set) var expired = 0

    init(duration: Duration) {
        self.duration = UInt64(duration.clampedNanoseconds)
    }

    /// The clock leases run on (monotonic nanoseconds, as `DispatchTime`).
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Leases still queued (some of them may be stale).
    var pending: Int { queue.count - head }

    /// The deadline of the oldest lease queued, nil when none is.
    var nextDeadline: UInt64? { head < queue.count ? queue[head].deadline : nil }

    /// Gives `key` a lease from `now`; returns the stamp its binding must carry.
    mutating func grant(_ key: IndexKey, now: UInt64) -> UInt64 {
        defer { nextStamp += 1 }
        queue.append(Lease(deadline: now + duration, key: key, stamp: nextStamp))
        return nextStamp
    }

    /// Takes the oldest lease if it is due at `now`.
    mutating func takeDue(now: UInt64) -> Lease? {
        guard head < queue.count, queue[head].deadline <= now else { return nil }
        defer {
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1024, head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
        }
        return queue[head]
    }

    /// Drops the queued leases `isLive` rejects (stale ones), keeping the order.
    mutating func compact(keeping isLive: (Lease) -> Bool) {
        queue = queue[head...].filter(isLive)
        head = 0
    }

    mutating func countExpired() { expired += 1 }

    /// Forgets every lease (finalize); the count stays.
    mutating func removeAll() {
        queue.removeAll()
        head = 0
    }
}
