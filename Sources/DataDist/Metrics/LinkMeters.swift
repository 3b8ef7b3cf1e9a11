import CoreMetrics
import DeviceRuntime
import Synchronization

/// The transfer figures of this instance's links to one peer cluster over one transport (as requester, and as
/// owner: what it granted and refused the peer). Kept twice: in atomics that `LLMDataDist.metrics()` reads, and
/// in swift-metrics objects made once, when the first link to that peer over that transport is set up (a relink
/// adds to the same figures). Nothing here takes a lock or allocates while a transfer runs: the counters are
/// atomics here and, in swift-prometheus, atomics too. swift-prometheus's histograms take a lock, so the two
/// durations are handed to the backend only once the transfer is over (`finish`), when its release was already
/// posted and the caller has its bytes.
final class LinkMeters: Sendable {
    let peerClusterID: UInt64
    let transport: String

    private let started = Atomic<Int>(0)
    private let succeeded = Atomic<Int>(0)
    private let bytes = Atomic<Int>(0)
    private let transferCount = Atomic<Int>(0)
    private let transferNanoseconds = Atomic<Int>(0)
    private let roundTripCount = Atomic<Int>(0)
    private let roundTripNanoseconds = Atomic<Int>(0)
    private let established = Atomic<Int>(0)
    private let closed = Atomic<Int>(0)
    private let grants = Atomic<Int>(0)
    /// One per status in `Self.failureStatuses`, in that order.
    private let failures: [StatusTally]
    private let refusals: [StatusTally]

    private let startedCounter: Counter
    private let succeededCounter: Counter
    private let bytesCounter: Counter
    private let transferTimer: Timer
    private let roundTripTimer: Timer
    private let establishedCounter: Counter
    private let closedCounter: Counter
    private let grantsCounter: Counter

    init(clusterID: UInt64, peerClusterID: UInt64, transport: String, factory: any MetricsFactory) {
        self.peerClusterID = peerClusterID
        self.transport = transport
        let dimensions = [("cluster", "\(clusterID)"), ("peer_cluster", "\(peerClusterID)"), ("transport", transport)]
        func counter(_ name: String) -> Counter { Counter(label: name, dimensions: dimensions, factory: factory) }
        startedCounter = counter(MetricName.transfersStarted)
        succeededCounter = counter(MetricName.transfersSucceeded)
        bytesCounter = counter(MetricName.transferBytes)
        establishedCounter = counter(MetricName.linksEstablished)
        closedCounter = counter(MetricName.linksClosed)
        grantsCounter = counter(MetricName.grantsServed)
        transferTimer = Timer(label: MetricName.transferSeconds, dimensions: dimensions, factory: factory)
        roundTripTimer = Timer(label: MetricName.roundTripSeconds, dimensions: dimensions, factory: factory)
        func tallies(_ name: String) -> [StatusTally] {
            Self.failureStatuses.map { status in
                StatusTally(
                    status: status,
                    counter: Counter(label: name, dimensions: dimensions + [("status", status.name)], factory: factory))
            }
        }
        failures = tallies(MetricName.transfersFailed)
        refusals = tallies(MetricName.refusalsServed)
    }

    /// The statuses a failed transfer is counted under (every named one but success); any other counts as
    /// `LLM_FAILED`, the name `LLMStatusCode` gives it.
    static let failureStatuses = LLMStatusCode.allKnown.filter { $0 != .success }
    private static let failureIndex = Dictionary(
        uniqueKeysWithValues: failureStatuses.enumerated().map { ($1.rawValue, $0) })
    private static let failedIndex = failureIndex[LLMStatusCode.failed.rawValue]!

    func transferStarted() {
        started.add(1, ordering: .relaxed)
        startedCounter.increment()
    }

    /// Bytes the data plane moved for a transfer (counted once the move succeeded).
    func moved(bytes count: Int) {
        bytes.add(count, ordering: .relaxed)
        bytesCounter.increment(by: count)
    }

    /// Ends a transfer: nil `failure` for a success. `roundTrip` is nil when no answer came (a timeout, a
    /// closed link).
    func finish(failure: LLMStatusCode?, elapsed: Duration, roundTrip: Duration?) {
        if let failure {
            failures[Self.failureIndex[failure.rawValue] ?? Self.failedIndex].add()
        } else {
            succeeded.add(1, ordering: .relaxed)
            succeededCounter.increment()
        }
        let nanoseconds = elapsed.clampedNanoseconds
        transferCount.add(1, ordering: .relaxed)
        transferNanoseconds.add(nanoseconds, ordering: .relaxed)
        transferTimer.recordNanoseconds(Int64(nanoseconds))
        if let roundTrip {
            roundTripCount.add(1, ordering: .relaxed)
            roundTripNanoseconds.add(roundTrip.clampedNanoseconds, ordering: .relaxed)
            roundTripTimer.recordNanoseconds(Int64(roundTrip.clampedNanoseconds))
        }
    }

    /// The owner answered one of the peer's requests: nil `refusal` for a grant.
    func served(refusal: LLMStatusCode?) {
        if let refusal {
            refusals[Self.failureIndex[refusal.rawValue] ?? Self.failedIndex].add()
        } else {
            grants.add(1, ordering: .relaxed)
            grantsCounter.increment()
        }
    }

    func linkEstablished() {
        established.add(1, ordering: .relaxed)
        establishedCounter.increment()
    }

    func linkClosed() {
        closed.add(1, ordering: .relaxed)
        closedCounter.increment()
    }

    var snapshot: LinkMetricsSnapshot {
        func byStatus(_ tallies: [StatusTally]) -> [String: Int] {
            var counts: [String: Int] = [:]
            for tally in tallies {
                let count = tally.count.load(ordering: .relaxed)
                if count > 0 { counts[tally.status.name] = count }
            }
            return counts
        }
        return LinkMetricsSnapshot(
            peerClusterID: peerClusterID, transport: transport,
            transfersStarted: started.load(ordering: .relaxed),
            transfersSucceeded: succeeded.load(ordering: .relaxed), transfersFailed: byStatus(failures),
            bytes: bytes.load(ordering: .relaxed),
            transfers: DurationSummary(
                count: transferCount.load(ordering: .relaxed),
                nanoseconds: transferNanoseconds.load(ordering: .relaxed)),
            roundTrips: DurationSummary(
                count: roundTripCount.load(ordering: .relaxed),
                nanoseconds: roundTripNanoseconds.load(ordering: .relaxed)),
            linksEstablished: established.load(ordering: .relaxed), linksClosed: closed.load(ordering: .relaxed),
            grantsServed: grants.load(ordering: .relaxed), refusalsServed: byStatus(refusals))
    }
}

/// The failures of one status on one link's meters.
private final class StatusTally: Sendable {
    let status: LLMStatusCode
    let count = Atomic<Int>(0)
    let counter: Counter

    init(status: LLMStatusCode, counter: Counter) {
        self.status = status
        self.counter = counter
    }

    func add() {
        count.add(1, ordering: .relaxed)
        counter.increment()
    }
}
