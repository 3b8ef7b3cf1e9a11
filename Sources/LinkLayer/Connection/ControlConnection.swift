import DeviceRuntime
import Dispatch
internal import Glibc
import Logging
import Synchronization
import ThreadSanitizerSupport

/// What a connection does with the frames that are not replies it is waiting for. The link layer's
/// `ServiceDispatcher` is the one implementation: it decodes requests for the owner's `LinkService`.
package protocol ControlHandler: Sendable {
    /// Serves one request frame (anything but a reply kind).
    func serve(_ frame: Frame) -> ControlReply
    /// A reply whose request no longer waits for it (it timed out): the handler undoes what it granted.
    func unclaimedReply(_ frame: Frame, on connection: ControlConnection)
    /// The connection closed, for `reason`; called once.
    func closed(_ reason: CloseReason)
}

/// What a handler wants done after serving a request.
package struct ControlReply: Sendable {
    package var frame: Frame?
    /// Close the connection once the reply is sent (unlink).
    package var closeAfterwards = false
    /// Whether the peer's next request is expected soon, so the reader thread keeps polling for it.
    package var expectsMore = true

    package init(frame: Frame?, closeAfterwards: Bool = false, expectsMore: Bool = true) {
        self.frame = frame
        self.closeAfterwards = closeAfterwards
        self.expectsMore = expectsMore
    }
}

/// One control connection to a linked peer. Whoever reads decodes frames: replies complete the request waiting
/// for them, requests go to the handler and its reply is sent back. Any thread may send requests concurrently;
/// no lock is held while waiting for the peer.
///
/// Reading is shared (leader/follower): a requester waiting for its reply reads the socket itself, so a reply
/// costs no thread wake-up; otherwise the reader thread reads. Whoever holds `readToken` owns the inbox. After
/// serving requests the reader thread keeps polling for `serveSpin` before it sleeps, so a peer issuing
/// requests back to back does not pay a wake-up per request either.
package final class ControlConnection: Sendable {
    package let socket: Socket
    package let peerClusterID: UInt64
    private let logger: Logger
    /// Guards the descriptor (closed: no send can hit a reused descriptor) and seals posts after an unlink.
    private let sendLock = Lock(SendState())
    private let state = Lock(State())
    private let handler: any ControlHandler
    /// Faults to inject into this link's sends, receives and requests (`DATADIST_FAULTS`); nil when none.
    private let faults: FaultPlan?
    /// Signalled when the reader thread has finished and closed the descriptor.
    private let readerFinished = DispatchSemaphore(value: 0)
    /// Held (true) by whoever is reading the socket and decoding the inbox.
    private let readToken = Atomic<Bool>(false)
    private let inbox: InboxBox
    /// Mirrors `state.closedReason != nil` for the polling loops, which must not take the lock per turn.
    private let closed = Atomic<Bool>(false)
    /// Set before this side acknowledges the peer's unlink: from then on the link is no longer open (the peer may
    /// act on the acknowledgement, relink included, before the reader has recorded the close).
    private let unlinkAcknowledged = Atomic<Bool>(false)
    /// Requesters polling the socket for their replies right now; while there are any, the reader thread
    /// leaves the socket to them instead of waking for every reply.
    private let pollingRequesters = Atomic<Int>(0)
    /// Calls running in place of a send (`inPlaceOfSending`): an unlink or its acknowledgement waits for them.
    private let callsInPlaceOfSending = Atomic<Int>(0)
    /// Wakes a parked reader thread: a requester stops polling without its reply and is about to sleep.
    private let readerWake = DispatchSemaphore(value: 0)

    /// `@unchecked`: only the holder of `readToken` touches the inbox, and taking and dropping the token
    /// (acquiring / releasing) orders those accesses.
    private final class InboxBox: @unchecked Sendable {
        /// Unchecked: the token already makes every access exclusive, and the polling loops reach it many times
        /// per request, where the runtime's dynamic check cost more than the read it guarded.
        @exclusivity(unchecked) var inbox: FrameInbox
        init(_ inbox: FrameInbox) { self.inbox = inbox }
    }

    private struct SendState {
        var isClosed = false
        /// An unlink, or the acknowledgement of the peer's, was sent: a message posted later would reach a peer
        /// that already closed the link, so posts fail from then on. Every post that went out precedes the unlink.
        var postsSealed = false
    }

    private struct State {
        var nextRequestID: UInt64 = 1
        var waiters: [UInt64: Waiter] = [:]
        var closedReason: CloseReason?
        var readerID: UInt?
    }

    /// A request waiting for its reply.
    private final class Waiter: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let result = Lock<Result<Frame, LinkError>?>(nil)
        /// Set (after `result`) when the reply is in, for a requester that spins before sleeping.
        let ready = Atomic<Bool>(false)

        func complete(_ outcome: Result<Frame, LinkError>) {
            result.withLock { $0 = outcome }
            ready.store(true, ordering: .releasing)
            semaphore.signal()
        }
    }

    /// How long a requester polls for its reply before it sleeps. Waking a sleeping thread costs tens of
    /// microseconds on virtual machines, more than a whole small transfer (a C ping-pong over a Unix socket on
    /// the 2-core VM: 45 µs round trip when both sides sleep, 3.3 µs when both poll).
    package static let replySpin: Duration = .microseconds(200)
    /// How long the reader thread keeps polling after it served a request, for the peer's next one. Replies
    /// alone do not start it: a requester reads those itself.
    package static let serveSpin: Duration = .microseconds(100)
    /// How long the reader thread parks at most while requesters poll; it then looks again, so frames that
    /// arrive after the last requester stopped wait at most this long.
    private static let parkWhileRequestersPoll = DispatchTimeInterval.microseconds(200)
    /// How long one frame's send may wait for the peer to read. A peer that sends requests and never reads
    /// the replies fills both socket buffers; without a bound the reply's send (on the reader thread) would
    /// block forever and the link's grants stay pinned. Past it the link closes as failed.
    package static let defaultSendTimeout: Duration = .seconds(10)
    /// This connection's bound on one frame's send (`defaultSendTimeout` unless a test shortens it).
    package let sendTimeout: Duration

    package init(
        socket: Socket, peerClusterID: UInt64, logger: Logger, handler: any ControlHandler,
        inbox: FrameInbox = FrameInbox(), faults: FaultPlan? = nil, sendTimeout: Duration = defaultSendTimeout
    ) {
        self.faults = faults
        self.sendTimeout = sendTimeout
        self.socket = socket
        self.peerClusterID = peerClusterID
        self.logger = logger
        self.handler = handler
        self.inbox = InboxBox(inbox)
    }

    /// Starts the reader thread; if no thread can start, the connection closes and this throws.
    package func start() throws(LinkError) {
        do {
            try JoinableThread.detach { [self] in
                state.withLock { $0.readerID = JoinableThread.currentID }
                readLoop()
                readerFinished.signal()
            }
            if let delay = faults?.peerDeathDelay { scheduleDeath(after: delay) }
        } catch {
            close(.failed("\(error)"))
            sendLock.withLock { send in
                send.isClosed = true
                socket.close()
            }
            readerFinished.signal()
            throw LinkError(.io, "the link to cluster \(peerClusterID): \(error)")
        }
    }

    package var isOpen: Bool {
        !unlinkAcknowledged.load(ordering: .acquiring) && state.withLock { $0.closedReason == nil }
    }

    /// Why the connection closed, or nil while it is open.
    package var closeReason: CloseReason? { state.withLock { $0.closedReason } }

    /// Sends a request and waits up to `timeout` for its reply. A `refusal` reply is thrown as `.refused`.
    package func request(_ kind: MessageKind, _ payload: [UInt8], timeout: Duration, what: String) throws(LinkError)
        -> Frame
    {
        if let faults, faults.shouldFail(.peerDeath) { injectFailure(.peerDeath) }
        let waiter = Waiter()
        let id: UInt64 = try state.withLock { state throws(LinkError) in
            if let reason = state.closedReason {
                throw LinkError(.closed, "\(what): the link to cluster \(peerClusterID) is closed (\(reason))")
            }
            defer { state.nextRequestID += 1 }
            state.waiters[state.nextRequestID] = waiter
            return state.nextRequestID
        }
        do {
            try send(Frame(kind: kind, requestID: id, payload: payload), sealingPosts: kind == .unlink)
        } catch {
            _ = state.withLock { $0.waiters.removeValue(forKey: id) }
            close(.failed("sending a request failed: \(error)"))
            throw LinkError(.closed, "\(what): sending to cluster \(peerClusterID) failed: \(error)")
        }
        pollForReply(waiter, for: min(Self.replySpin, timeout))
        if !waiter.ready.load(ordering: .acquiring),
            waiter.semaphore.wait(timeout: .now() + .nanoseconds(timeout.clampedNanoseconds)) == .timedOut
        {
            let stillWaiting = state.withLock { $0.waiters.removeValue(forKey: id) } != nil
            if stillWaiting {
                throw LinkError(.timedOut, "\(what): cluster \(peerClusterID) did not answer within \(timeout)")
            }
            waiter.semaphore.wait()  // the reply (or the close) arrived just now
        }
        return try answer(waiter.result.withLock { $0! }.get(), what: what)
    }

    /// `frame`, a reply to a request: thrown as `.refused` if it is a refusal.
    package func answer(_ frame: Frame, what: String) throws(LinkError) -> Frame {
        if frame.kind == .refusal {
            let refusal: Refusal
            do throws(ProtocolError) {
                refusal = try Refusal(payload: frame.payload)
            } catch {
                throw LinkError(
                    .protocolViolation, "\(what): cluster \(peerClusterID) sent a malformed refusal: \(error)")
            }
            throw LinkError(refusal)
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

    /// Whether faults are injected into this connection (`DATADIST_FAULTS`): its frames then go over the socket,
    /// where the faults act.
    package var injectsFaults: Bool { faults != nil }

    /// Runs `body` in place of sending a frame, if this side could send one now: open, and nothing sent after an
    /// unlink or its acknowledgement. An unlink or its acknowledgement goes out only once every such call admitted
    /// before it returned, so `body` is ordered before it as a frame sent at that moment would be; the calls do not
    /// hold the send lock, so they neither wait for each other nor for a slow send. Nil (and `body` not run) when
    /// no frame could go out.
    package func inPlaceOfSending<T>(_ body: () -> T) -> T? {
        let admitted = sendLock.withLock { send -> Bool in
            guard !send.isClosed, !send.postsSealed, !closed.load(ordering: .acquiring),
                !unlinkAcknowledged.load(ordering: .acquiring)
            else { return false }
            callsInPlaceOfSending.add(1, ordering: .relaxed)
            return true
        }
        guard admitted else { return nil }
        defer { callsInPlaceOfSending.subtract(1, ordering: .releasing) }
        return body()
    }

    /// Sends a message that gets no reply (a release). False when it was not sent: the link is closed or going
    /// away (an unlink was sent or acknowledged), so the peer will not see it.
    @discardableResult
    package func post(_ kind: MessageKind, _ payload: [UInt8]) -> Bool {
        if let faults, faults.shouldFail(.send) {
            injectFailure(.send)
            return false
        }
        let bytes = Frame(kind: kind, requestID: 0, payload: payload).encoded()
        let deadline = ContinuousClock.now.advanced(by: sendTimeout)
        let outcome = sendLock.withLock { send -> Result<Bool, Socket.Failure> in
            guard !send.isClosed, !send.postsSealed else { return .success(false) }
            do throws(Socket.Failure) {
                try socket.sendAll(bytes, until: deadline)
            } catch {
                return .failure(error)
            }
            return .success(true)
        }
        switch outcome {
        case .success(let sent): return sent
        case .failure(let error):
            close(.failed("posting a \(kind) failed: \(error)"))
            return false
        }
    }

    /// Sends one frame (requests from any thread, replies from the reader); `sealingPosts`: an unlink or its
    /// acknowledgement, after which nothing more is posted. Fails (ETIMEDOUT) when the peer has not read enough
    /// of it within `sendTimeout`; a part may have gone out, so the caller closes the link.
    package func send(_ frame: Frame, sealingPosts: Bool = false) throws(Socket.Failure) {
        if let faults, faults.shouldFail(.send) {
            injectFailure(.send)
            throw Socket.Failure(operation: "send (\(FaultPlan.describe(.send)))", errno: EPIPE)
        }
        let bytes = frame.encoded()
        let deadline = ContinuousClock.now.advanced(by: sendTimeout)
        try sendLock.withLock { send throws(Socket.Failure) in
            guard !send.isClosed else { throw Socket.Failure(operation: "send", errno: EBADF) }
            if sealingPosts {
                send.postsSealed = true
                // Admitted before the seal, so ordered before this frame; they only run the owner's policy.
                while callsInPlaceOfSending.load(ordering: .acquiring) > 0 { sched_yield() }
            }
            try socket.sendAll(bytes, until: deadline)
        }
    }

    /// Closes the connection: pending requests fail with `.closed`, the reader stops, the handler hears of it once.
    package func close(_ reason: CloseReason) {
        let (waiters, first) = state.withLock { state in
            guard state.closedReason == nil else { return ([Waiter](), false) }
            state.closedReason = reason
            defer { state.waiters.removeAll() }
            return (Array(state.waiters.values), true)
        }
        guard first else { return }
        closed.store(true, ordering: .relaxed)
        socket.shutdown()
        let error = LinkError(.closed, "the link to cluster \(peerClusterID) closed: \(reason)")
        for waiter in waiters { waiter.complete(.failure(error)) }
        handler.closed(reason)
    }

    /// Fails the link for an injected fault as a real failure of that kind would: the peer dies (its connection
    /// closes), or a send breaks the connection.
    private func injectFailure(_ kind: FaultPlan.Kind) {
        logger.debug("\(FaultPlan.describe(kind)) on the link to cluster \(peerClusterID)")
        close(kind == .peerDeath ? .peerClosed : .failed("sending failed: \(FaultPlan.describe(kind))"))
    }

    /// Closes the link `delay` from now, as a peer that dies then would (`peer-death@after=`).
    private func scheduleDeath(after delay: Duration) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(delay.clampedNanoseconds)) { [weak self] in
            self?.injectFailure(.peerDeath)
        }
    }

    /// Waits until the reader thread has finished (it closes the descriptor); a no-op on the reader itself.
    package func join() {
        guard state.withLock({ $0.readerID }) != JoinableThread.currentID else { return }
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
        case finished(CloseReason)
    }

    /// Reads and handles what has arrived, unless someone else is reading right now (nil then). Closes the
    /// connection if the peer closed it or broke the protocol.
    @discardableResult
    private func readIfIdle() -> ReadOutcome? {
        guard readToken.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return nil
        }
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
                if let faults, faults.shouldFail(.receive) {
                    return .finished(.failed("receiving failed: \(FaultPlan.describe(.receive))"))
                }
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
                return .finished(.protocolViolation(problem))
            }
            do {
                switch try inbox.inbox.fill(from: socket) {
                case nil: return served ? .served : .quiet
                case 0: return .finished(.peerClosed)
                default: continue
                }
            } catch {
                return .finished(.failed("\(error)"))
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
                    close(.failed("\(error)"))
                }
            }
        }
        sendLock.withLock { send in
            send.isClosed = true
            socket.close()
        }
    }

    /// Handles one frame: completes the request waiting for a reply, or has the handler serve a request.
    private func dispatch(_ frame: Frame) -> ReadOutcome {
        switch frame.kind {
        case .welcome, .grant, .ack, .refusal:
            let waiter = state.withLock { $0.waiters.removeValue(forKey: frame.requestID) }
            if let waiter {
                waiter.complete(.success(frame))
            } else {
                handler.unclaimedReply(frame, on: self)
            }
            return .quiet
        case .hello, .resolve, .batchResolve, .release, .unlink, .ping, .challenge, .proof, .ucxOffer, .deliver,
            .accept, .landed, .resolveDelivering:
            let reply = handler.serve(frame)
            if reply.closeAfterwards { unlinkAcknowledged.store(true, ordering: .releasing) }
            if let response = reply.frame {
                do {
                    try send(response, sealingPosts: reply.closeAfterwards)
                } catch {
                    return .finished(.failed("sending a reply failed: \(error)"))
                }
            }
            if reply.closeAfterwards { return .finished(.unlinked) }
            return reply.expectsMore ? .served : .quiet
        }
    }
}
