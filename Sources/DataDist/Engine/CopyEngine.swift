import Dispatch
import Synchronization

/// One contiguous copy of a transfer.
struct CopySegment: Sendable {
    var destination: UInt
    var source: UInt
    var count: Int
}

/// Runs the copies of one transfer. Below `parallelThreshold` bytes, or with one thread, or while another
/// transfer is using the workers, the calling thread copies everything itself (no hand-off latency). Above it,
/// the bytes are cut into one contiguous share per thread; the caller copies the first share and persistent
/// workers the others.
final class CopyEngine: Sendable {
    /// Threads that copy one large transfer, the caller included.
    let threads: Int
    /// Transfers smaller than this stay on the calling thread.
    let parallelThreshold: Int
    private let workers: [Worker]
    private let busy = Atomic<Bool>(false)

    /// The default split point, from `datadist bench`'s copy-engine rows on a 2-core host (README, Performance):
    /// below about 1 MiB, waking a worker costs more than the second core saves.
    static let defaultParallelThreshold = 1 << 20

    init(threads: Int, parallelThreshold: Int = CopyEngine.defaultParallelThreshold) {
        self.threads = max(1, threads)
        self.parallelThreshold = parallelThreshold
        self.workers = (1..<max(1, threads)).map { _ in Worker() }
    }

    deinit {
        for worker in workers { worker.stop() }
    }

    /// Whether a transfer of `totalBytes` stays on the calling thread.
    func runsInline(totalBytes: Int) -> Bool { threads == 1 || totalBytes < parallelThreshold }

    /// Copies every segment with `copy` (which moves `count` bytes from `source` to `destination`); the first
    /// error, if any, is thrown after all shares have finished.
    func run(_ segments: [CopySegment], _ copy: @escaping @Sendable (CopySegment) throws(LLMError) -> Void) throws(LLMError) {
        let total = segments.reduce(0) { $0 + $1.count }
        guard threads > 1, total >= parallelThreshold, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for segment in segments { try copy(segment) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        let shares = Self.split(segments, into: threads, total: total)
        let failures = Mutex<LLMError?>(nil)
        let finished = DispatchSemaphore(value: 0)
        for (worker, share) in zip(workers, shares.dropFirst()) {
            worker.submit {
                do throws(LLMError) {
                    for segment in share { try copy(segment) }
                } catch {
                    failures.withLock { if $0 == nil { $0 = error } }
                }
                finished.signal()
            }
        }
        var first: LLMError?
        do throws(LLMError) {
            for segment in shares[0] { try copy(segment) }
        } catch {
            first = error
        }
        for _ in shares.dropFirst() { finished.wait() }
        if let error = first ?? failures.withLock({ $0 }) { throw error }
    }

    /// Cuts `segments` into `parts` runs of about `total / parts` bytes each, splitting segments where needed.
    static func split(_ segments: [CopySegment], into parts: Int, total: Int) -> [[CopySegment]] {
        let quota = (total + parts - 1) / parts
        var shares: [[CopySegment]] = [[]]
        var room = quota
        for var segment in segments {
            while segment.count > 0 {
                if room == 0 {
                    shares.append([])
                    room = quota
                }
                let take = min(room, segment.count)
                shares[shares.count - 1].append(CopySegment(destination: segment.destination, source: segment.source, count: take))
                segment.destination += UInt(take)
                segment.source += UInt(take)
                segment.count -= take
                room -= take
            }
        }
        return shares
    }
}

/// A persistent thread that runs one submitted job at a time.
private final class Worker: Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let job = Mutex<(@Sendable () -> Void)?>(nil)
    private let stopping = Atomic<Bool>(false)

    init() {
        WorkerThread.detach { [self] in
            while true {
                wake.wait()
                if stopping.load(ordering: .acquiring) { return }
                job.withLock { job in defer { job = nil }; return job }?()
            }
        }
    }

    func submit(_ body: @escaping @Sendable () -> Void) {
        job.withLock { $0 = body }
        wake.signal()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
    }
}
