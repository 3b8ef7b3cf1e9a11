import DeviceRuntime
import Synchronization
import ThreadSanitizerSupport

/// Runs the copies of one transfer. Below `parallelThreshold` bytes, or with one thread, or while another
/// transfer is using the workers, the calling thread copies everything itself (no hand-off latency). Above it,
/// the bytes are cut into contiguous chunks that the caller and the woken workers claim one at a time, so a
/// worker that wakes late takes less and a transfer never waits for a sleeping thread to do a fixed share.
final class CopyEngine: Sendable {
    /// Threads that copy one large transfer, the caller included.
    let threads: Int
    /// Transfers smaller than this stay on the calling thread.
    let parallelThreshold: Int
    private let workers: [JobThread]
    private let busy = Atomic<Bool>(false)

    /// The default split point, from `datadist bench`'s copy-engine rows on a 2-core host (README, Performance):
    /// below about 2 MiB, waking a worker costs more than the second core saves (the emulator's streaming copy
    /// already runs one thread near the memory bus's limit).
    static let defaultParallelThreshold = 2 << 20
    /// Bytes per claimed chunk: large enough that claiming costs nothing next to the copy, small enough that a
    /// late worker still finds work.
    static let chunkBytes = 256 << 10

    init(threads: Int, parallelThreshold: Int = CopyEngine.defaultParallelThreshold) {
        // Threads the process cannot start are left out: the engine then splits over fewer.
        self.workers = (1..<max(1, threads)).compactMap { _ in try? JobThread() }
        self.threads = workers.count + 1
        self.parallelThreshold = parallelThreshold
    }

    deinit {
        for worker in workers { worker.stop() }
    }

    /// Whether a transfer of `totalBytes` stays on the calling thread.
    func runsInline(totalBytes: Int) -> Bool { threads == 1 || totalBytes < parallelThreshold }

    /// Copies every segment with `copy` (which moves `count` bytes from `source` to `destination`); the first
    /// error, if any, is thrown after every chunk has finished.
    func run(_ segments: [CopySegment], _ copy: @escaping @Sendable (CopySegment) throws(LLMError) -> Void)
        throws(LLMError)
    {
        let total = segments.reduce(0) { $0 + $1.count }
        guard !runsInline(totalBytes: total),
            busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for segment in segments { try copy(segment) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        let job = ChunkedCopy(Self.split(segments, into: max(threads, total / Self.chunkBytes), total: total), copy)
        for worker in workers.prefix(job.chunks.count - 1) { worker.submit { job.work() } }
        job.work()
        // Only chunks a worker is still copying remain; each is short, so wait on the core.
        while !job.isFinished { JoinableThread.yield() }
        if let error = job.failure.withLock({ $0 }) { throw error }
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
                shares[shares.count - 1].append(
                    CopySegment(destination: segment.destination, source: segment.source, count: take))
                segment.destination += UInt(take)
                segment.source += UInt(take)
                segment.count -= take
                room -= take
            }
        }
        return shares
    }
}

/// The chunks of one parallel transfer and who has claimed and finished which. A worker that wakes after the
/// last chunk was claimed finds nothing to do.
private final class ChunkedCopy: Sendable {
    let chunks: [[CopySegment]]
    let failure = Lock<LLMError?>(nil)
    private let copy: @Sendable (CopySegment) throws(LLMError) -> Void
    private let nextChunk = Atomic<Int>(0)
    private let finishedChunks = Atomic<Int>(0)

    init(_ chunks: [[CopySegment]], _ copy: @escaping @Sendable (CopySegment) throws(LLMError) -> Void) {
        self.chunks = chunks
        self.copy = copy
    }

    var isFinished: Bool { finishedChunks.load(ordering: .acquiring) == chunks.count }

    /// Claims and copies chunks until none is left.
    func work() {
        while true {
            let index = nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
            guard index < chunks.count else { return }
            do throws(LLMError) {
                for segment in chunks[index] { try copy(segment) }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
            finishedChunks.wrappingAdd(1, ordering: .releasing)
        }
    }
}
