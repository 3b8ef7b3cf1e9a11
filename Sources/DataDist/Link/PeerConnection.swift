import Dispatch
internal import Glibc
import DeviceRuntime
import Logging
import Synchronization

/// One control connection to a linked peer. A reader thread decodes frames: replies complete the request waiting
/// for them, requests go to the handler and its reply is sent back. Any thread may send requests concurrently;
/// no lock is held while waiting for the peer.
final class PeerConnection: Sendable {
    /// What the handler wants done with an incoming request.
    struct Reply: Sendable {
        var frame: Frame?
        /// Close the connection once the reply is sent (unlink).
        var closeAfterwards = false
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
    /// microseconds on virtual machines, more than a whole small transfer; a requester that stays on its core
    /// halves a 16 KiB pull (measured on a 2-core VM: p50 ~35 µs spinning vs ~88 µs sleeping at once). Only the
    /// requester spins: readers that poll too compete for the cores and made both p50 and p99 worse.
    static let replySpin: Duration = .microseconds(200)

    init(
        socket: Socket, peerClusterID: UInt64, logger: Logger, handler: @escaping @Sendable (Frame) -> Reply,
        onClose: @escaping @Sendable (String) -> Void
    ) {
        self.socket = socket
        self.peerClusterID = peerClusterID
        self.logger = logger
        self.handler = handler
        self.onClose = onClose
    }

    /// Starts the reader thread; `leftover` are bytes already read past the handshake.
    func start(leftover: [UInt8] = []) {
        WorkerThread.detach { [self] in
            state.withLock { $0.readerID = WorkerThread.currentID }
            readLoop(leftover)
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
        let spinUntil = ContinuousClock.now.advanced(by: min(Self.replySpin, timeout))
        while !waiter.ready.load(ordering: .acquiring), ContinuousClock.now < spinUntil {}
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

    private func readLoop(_ leftover: [UInt8]) {
        var buffer = leftover
        var reason = "peer closed the connection"
        reading: while true {
            var start = 0
            decoding: while true {
                switch Frame.decode(buffer[start...]) {
                case .frame(let frame, let consumed):
                    start += consumed
                    if !dispatch(frame) {
                        reason = DeliberateClose.unlinked
                        break reading
                    }
                case .incomplete:
                    break decoding
                case .invalid(let problem):
                    reason = "protocol violation: \(problem)"
                    logger.warning("dropping the link to cluster \(peerClusterID): \(problem)")
                    break reading
                }
            }
            buffer.removeFirst(start)
            do {
                let bytes = try socket.receive(capacity: 64 << 10)
                if bytes.isEmpty { break reading }
                buffer += bytes
            } catch {
                reason = "\(error)"
                break reading
            }
        }
        close(reason)
        sendLock.withLock { closed in
            closed = true
            socket.close()
        }
    }

    /// Handles one frame; false when the connection must close.
    private func dispatch(_ frame: Frame) -> Bool {
        switch frame.kind {
        case .welcome, .grant, .ack, .failure:
            let waiter = state.withLock { $0.waiters.removeValue(forKey: frame.requestID) }
            if let waiter {
                waiter.complete(.success(frame))
            } else if frame.kind == .grant, let grant = try? GrantMessage(payload: frame.payload) {
                // A grant for a request that timed out: give the pin back at once.
                post(.release, ReleaseMessage(pinID: grant.pinID, succeeded: false).encoded())
            }
            return true
        case .hello, .resolve, .release, .unlink, .ping:
            let reply = handler(frame)
            if let response = reply.frame {
                do { try send(response) } catch { return false }
            }
            return !reply.closeAfterwards
        }
    }
}
