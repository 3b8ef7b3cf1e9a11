import Dispatch
internal import Glibc
import DeviceRuntime
import Logging
import Synchronization

/// One control connection to a linked peer. Whoever reads decodes frames: replies complete the request waiting
/// for them, requests go to the handler and its reply is sent back. Any thread may send requests concurrently;
/// no lock is held while waiting for the peer.
///
/// Reading is shared (leader/follower): a requester waiting for its reply reads the socket itself, so a reply
/// costs no thread wake-up; otherwise the reader thread reads. Whoever holds `readToken` owns the inbox. After
/// serving requests the reader thread keeps polling for `serveSpin` before it sleeps, so a peer issuing
/// requests back to back does not pay a wake-up per request either.
final class PeerConnection: Sendable {
    /// What the handler wants done with an incoming request.
    struct Reply: Sendable {
        var frame: Frame?
        /// Close the connection once the reply is sent (unlink).
        var closeAfterwards = false
        /// Whether the peer's next request is expected soon, so the reader thread keeps polling for it. False
        /// after a grant that keeps the peer copying for longer than the polling window: polling through the
        /// copy would take a core its copy threads need.
        var expectsMore = true
    }

    let socket: Socket
    let peerClusterID: UInt64
    private let logger: Logger
    /// Guards the descriptor: true once it is closed, so no send can hit a reused descriptor.
    private let sendLock = Mutex(false)
    private let state = Mutex(State())
    private let handler: @Sendable (Frame) -> Reply
    private let onClose: @Sendable (String) -> Void
    /// Signalled when the reader thread has finished and closed the descriptor.
    private let readerFinished = DispatchSemaphore(value: 0)
    /// Held (true) by whoever is reading the socket and decoding the inbox.
    private let readToken = Atomic<Bool>(false)
    private let inbox: InboxBox
    /// Mirrors `state.closedReason != nil` for the polling loops, which must not take the lock per turn.
    private let closed = Atomic<Bool>(false)
    /// Requesters polling the socket for their replies right now; while there are any, the reader thread
    /// leaves the socket to them instead of waking for every reply.
    private let pollingRequesters = Atomic<Int>(0)
    /// Wakes a parked reader thread: a requester stops polling without its reply and is about to sleep.
    private let readerWake = DispatchSemaphore(value: 0)

    /// `@unchecked`: only the holder of `readToken` touches the inbox, and taking and dropping the token
    /// (acquiring / releasing) orders those accesses.
    private final class InboxBox: @unchecked Sendable {
        var inbox: FrameInbox
        init(_ inbox: FrameInbox) { self.inbox = inbox }
    }

    private struct State {
        var nextRequestID: UInt64 = 1
        var waiters: [UInt64: Waiter] = [:]
        var closedReason: String?
        var readerID: UInt?
    }

    /// A request waiting for its reply.
    private final class Waiter: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let result = Mutex<Result<Frame, LLMError>?>(nil)
        /// Set (after `result`) when the reply is in, for a requester that spins before sleeping.
        let ready = Atomic<Bool>(false)

        func complete(_ outcome: Result<Frame, LLMError>) {
            result.withLock { $0 = outcome }
            ready.store(true, ordering: .releasing)
            semaphore.signal()
        }
    }

    /// How long a requester polls for its reply before it sleeps. Waking a sleeping thread costs tens of
    /// microseconds on virtual machines, more than a whole small transfer (a C ping-pong over a Unix socket on
    /// the 2-core VM: 45 µs round trip when both sides sleep, 3.3 µs when both poll).
    static let replySpin: Duration = .microseconds(200)
    /// How long the reader thread keeps polling after it served a request, for the peer's next one. Replies
    /// alone do not start it: a requester reads those itself.
    static let serveSpin: Duration = .microseconds(100)
    /// How long the reader thread parks at most while requesters poll; it then looks again, so frames that
    /// arrive after the last requester stopped wait at most this long.
    private static let parkWhileRequestersPoll = DispatchTimeInterval.microseconds(200)

    init(
        socket: Socket, peerClusterID: UInt64, logger: Logger, handler: @escaping @Sendable (Frame) -> Reply,
        inbox: FrameInbox = FrameInbox(), onClose: @escaping @Sendable (String) -> Void
    ) {
        self.socket = socket
        self.peerClusterID = peerClusterID
        self.logger = logger
        self.handler = handler
        self.onClose = onClose
        self.inbox = InboxBox(inbox)
    }

    /// Starts the reader thread.
    func start() {
        WorkerThread.detach { [self] in
            state.withLock { $0.readerID = WorkerThread.currentID }
            readLoop()
            readerFinished.signal()
        }
    }

    var isOpen: Bool { state.withLock { $0.closedReason == nil } }

    /// Sends a request and waits up to `timeout` for its reply. A `failure` reply is thrown as its error.
    func request(_ kind: MessageKind, _ payload: [UInt8], timeout: Duration, what: String) throws(LLMError) -> Frame {
        let waiter = Waiter()
        let id: UInt64 = try state.withLock { state throws(LLMError) in
            if let reason = state.closedReason {
                throw LLMError(.linkFailed, "\(what): the link to cluster \(peerClusterID) is closed (\(reason))")
            }
            defer { state.nextRequestID += 1 }
            state.waiters[state.nextRequestID] = waiter
            return state.nextRequestID
        }
        do {
            try send(Frame(kind: kind, requestID: id, payload: payload))
        } catch {
            _ = state.withLock { $0.waiters.removeValue(forKey: id) }
            throw LLMError(.linkFailed, "\(what): sending to cluster \(peerClusterID) failed: \(error)")
        }
        let (seconds, attoseconds) = timeout.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let nanoseconds = overflow ? Int64.max : max(0, scaled &+ attoseconds / 1_000_000_000)
        pollForReply(waiter, for: min(Self.replySpin, timeout))
        if !waiter.ready.load(ordering: .acquiring),
            waiter.semaphore.wait(timeout: .now() + .nanoseconds(Int(clamping: nanoseconds))) == .timedOut
        {
            let stillWaiting = state.withLock { $0.waiters.removeValue(forKey: id) } != nil
            if stillWaiting {
                throw LLMError(.timeout, "\(what): cluster \(peerClusterID) did not answer within \(timeout)")
            }
            waiter.semaphore.wait()  // the reply (or the close) arrived just now
        }
        let frame = try waiter.result.withLock { $0! }.get()
        if frame.kind == .failure {
            do {
                throw try FailureMessage(payload: frame.payload).error
            } catch let error as LLMError {
                throw error
            } catch {
                throw LLMError(.linkFailed, "\(what): cluster \(peerClusterID) sent a malformed failure: \(error)")
            }
        }
        return frame
    }

    /// Reads the socket (handling whatever arrives) until `waiter`'s reply is in or `duration` has passed; in the
    /// second case the reader thread is woken to read from then on.
    private func pollForReply(_ waiter: Waiter, for duration: Duration) {
        let deadline = ContinuousClock.now.advanced(by: duration)
        var turns = 0
        pollingRequesters.add(1, ordering: .relaxed)
        while !waiter.ready.load(ordering: .acquiring), !closed.load(ordering: .relaxed) {
            readIfIdle()
            turns += 1
            if turns % 16 == 0, ContinuousClock.now >= deadline { break }
            sched_yield()
        }
        pollingRequesters.subtract(1, ordering: .relaxed)
        if !waiter.ready.load(ordering: .acquiring) { readerWake.signal() }
    }

    /// Sends a message that gets no reply (a release); a failure to send only means the link is going away.
    func post(_ kind: MessageKind, _ payload: [UInt8]) {
        try? send(Frame(kind: kind, requestID: 0, payload: payload))
    }

    /// Sends one frame (requests from any thread, replies from the reader).
    func send(_ frame: Frame) throws(Socket.Failure) {
        let bytes = frame.encoded()
        try sendLock.withLock { closed throws(Socket.Failure) in
            guard !closed else { throw Socket.Failure(operation: "send", errno: EBADF) }
            try socket.sendAll(bytes)
        }
    }

    /// Closes the connection: pending requests fail with `.linkFailed`, the reader stops, `onClose` runs once.
    func close(_ reason: String) {
        let (waiters, first) = state.withLock { state in
            guard state.closedReason == nil else { return ([Waiter](), false) }
            state.closedReason = reason
            defer { state.waiters.removeAll() }
            return (Array(state.waiters.values), true)
        }
        guard first else { return }
        closed.store(true, ordering: .relaxed)
        socket.shutdown()
        let error = LLMError(.linkFailed, "the link to cluster \(peerClusterID) closed: \(reason)")
        for waiter in waiters { waiter.complete(.failure(error)) }
        onClose(reason)
    }

    /// Waits until the reader thread has finished (it closes the descriptor); a no-op on the reader itself.
    func join() {
        guard state.withLock({ $0.readerID }) != WorkerThread.currentID else { return }
        readerFinished.wait()
        readerFinished.signal()  // let any other joiner through too
    }

    /// What one pass over the socket found.
    private enum ReadOutcome {
        /// Nothing, only replies, or requests after which the peer is not expected back soon.
        case quiet
        /// At least one request was served and the peer is expected back soon.
        case served
        /// The connection must close, for this reason.
        case finished(String)
    }

    /// Reads and handles what has arrived, unless someone else is reading right now (nil then). Closes the
    /// connection if the peer closed it or broke the protocol.
    @discardableResult
    private func readIfIdle() -> ReadOutcome? {
        guard readToken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return nil }
        let outcome = drain()
        readToken.store(false, ordering: .releasing)
        if case .finished(let reason) = outcome { close(reason) }
        return outcome
    }

    /// Decodes and dispatches every frame in hand, reading the socket until it has nothing more. Only with the
    /// read token.
    private func drain() -> ReadOutcome {
        var served = false
        while true {
            switch inbox.inbox.next() {
            case .frame(let frame, _):
                switch dispatch(frame) {
                case .quiet: break
                case .served: served = true
                case .finished(let reason): return .finished(reason)
                }
                continue
            case .incomplete:
                break
            case .invalid(let problem):
                logger.warning("dropping the link to cluster \(peerClusterID): \(problem)")
                return .finished("protocol violation: \(problem)")
            }
            do {
                switch try inbox.inbox.fill(from: socket) {
                case nil: return served ? .served : .quiet
                case 0: return .finished("peer closed the connection")
                default: continue
                }
            } catch {
                return .finished("\(error)")
            }
        }
    }

    private func readLoop() {
        var pollUntil: ContinuousClock.Instant?
        var turns = 0
        while !closed.load(ordering: .relaxed) {
            if pollingRequesters.load(ordering: .relaxed) > 0 {
                // They read the socket and handle whatever else arrives meanwhile.
                _ = readerWake.wait(timeout: .now() + Self.parkWhileRequestersPoll)
                continue
            }
            guard let outcome = readIfIdle() else {
                sched_yield()
                continue
            }
            switch outcome {
            case .finished:
                break  // closed: the loop ends
            case .served:
                pollUntil = ContinuousClock.now.advanced(by: Self.serveSpin)
            case .quiet:
                turns += 1
                if let until = pollUntil, turns % 16 != 0 || ContinuousClock.now < until {
                    sched_yield()
                    continue
                }
                pollUntil = nil
                // Nothing to do: sleep until the socket is readable (close() shuts it down, which wakes this too).
                do {
                    _ = try socket.waitReadable(until: nil)
                } catch {
                    close("\(error)")
                }
            }
        }
        sendLock.withLock { closed in
            closed = true
            socket.close()
        }
    }

    /// Handles one frame: completes the request waiting for a reply, or serves a request.
    private func dispatch(_ frame: Frame) -> ReadOutcome {
        switch frame.kind {
        case .welcome, .grant, .ack, .failure:
            let waiter = state.withLock { $0.waiters.removeValue(forKey: frame.requestID) }
            if let waiter {
                waiter.complete(.success(frame))
            } else if frame.kind == .grant, let grant = try? GrantMessage(payload: frame.payload) {
                // A grant for a request that timed out: give the pin back at once.
                post(.release, ReleaseMessage(pinID: grant.pinID, succeeded: false).encoded())
            }
            return .quiet
        case .hello, .resolve, .release, .unlink, .ping:
            let reply = handler(frame)
            if let response = reply.frame {
                do { try send(response) } catch { return .finished("sending a reply failed: \(error)") }
            }
            if reply.closeAfterwards { return .finished(DeliberateClose.unlinked) }
            return reply.expectsMore ? .served : .quiet
        }
    }
}
