internal import CUCX
import Dispatch
import Synchronization
import ThreadSanitizerSupport

/// An endpoint to a peer's worker and the peer's unpacked remote keys. Created with peer error handling: when
/// the peer fails (dies, or the network goes) UCX calls the handler, which records it and has the endpoint
/// closed right after; from then on nothing is posted on it. The lock guards the handle: it is held
/// while operations are posted (nonblocking calls) and while the endpoint is closed, never while waiting.
final class UCXEndpoint: Sendable {
    let worker: UCXWorker
    private let state = Lock(Handles())
    /// The status UCX reported the endpoint failed with (its raw value), 0 while it has not failed.
    private let failure = Atomic<Int8>(0)

    private struct Handles: @unchecked Sendable {
        var endpoint: OpaquePointer?
        var keys: [UInt32: OpaquePointer] = [:]
        /// The peer's packed remote keys not unpacked yet (region id → packed key).
        var packed: [UInt32: [UInt8]] = [:]
    }

    /// An endpoint to the worker at `address` with the remote keys `keys` (region id → packed key), connected
    /// by `deadline`: it is flushed once, which shows the peer reachable. When `wiresUp` (the listener's side),
    /// the keys are unpacked at once: over TCP, where UCX emulates one-sided operations with messages, that has
    /// UCX resolve the peer's endpoint with a wireup request, and the flush then completes only once the peer
    /// answered it (an endpoint closed while its wireup is still in flight trips an assertion inside UCX 1.13).
    /// Otherwise (the client's side, made before the listener's) the keys are unpacked at the first one-sided
    /// operation, so this endpoint never requests a wireup: the flush only waits for its connection, over which
    /// the listener's request is then answered at once. UCX 1.13 aborts a process whose answer still waits for
    /// its connection when the peer fails ("ucp_request.c: Assertion ... got REP message").
    init(
        worker: UCXWorker, address: [UInt8], keys: [UInt32: [UInt8]], wiresUp: Bool,
        until deadline: ContinuousClock.Instant
    ) throws(LinkError) {
        self.worker = worker
        let context = Unmanaged.passRetained(self)
        var endpoint: OpaquePointer?
        let status = address.withUnsafeBytes { raw in
            datadist_ucp_ep_create(
                worker.handle, OpaquePointer(raw.baseAddress!),
                { argument, _, status in
                    guard let argument else { return }
                    Unmanaged<UCXEndpoint>.fromOpaque(argument).takeUnretainedValue().failed(status)
                }, context.toOpaque(), &endpoint)
        }
        guard status == UCS_OK, let endpoint else {
            context.release()
            throw LinkError(.io, "UCX: ucp_ep_create failed: \(ucxDescription(status))")
        }
        let unpacking: Result<Void, LinkError> = state.withLock { handles in
            handles = Handles(endpoint: endpoint, packed: keys.filter { !$0.value.isEmpty })
            guard wiresUp else { return .success(()) }
            for region in handles.packed.keys.sorted() {
                if let problem = Self.unpack(region, in: &handles) { return .failure(problem) }
            }
            return .success(())
        }
        if case .failure(let problem) = unpacking {
            close()
            throw problem
        }
        let problem: String?
        switch post([], write: false) {
        case .unusable(let reason), .failed(let reason, requests: _): problem = reason
        case .requests(let requests):
            if let flush = requests.first {
                let status = worker.wait(for: flush, until: deadline) { self.failureDescription != nil }
                if status != nil { ucp_request_free(flush) }
                problem =
                    status == UCS_OK
                    ? nil : status.map { ucxDescription($0) } ?? failureDescription ?? "timed out connecting"
            } else {
                problem = nil
            }
        }
        if let problem {
            close()
            throw LinkError(.io, "UCX: the endpoint to the peer did not connect: \(problem)")
        }
    }

    private func failed(_ status: ucs_status_t) {
        let raw = status.rawValue == 0 ? Int8(UCS_ERR_ENDPOINT_TIMEOUT.rawValue) : status.rawValue
        guard failure.compareExchange(expected: 0, desired: raw, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        // Closed at once, off the progress call that reported the failure (closing waits on the worker). A failed
        // endpoint left open is still found by UCX for messages the peer sent before the failure and that arrive
        // later (a cut link coming back): UCX 1.13 then answers a peer's read on the failed endpoint and aborts the
        // process ("ucp_request.inl: Fatal: unexpected error: Endpoint timeout", seen with the veth taken down and
        // up again). Once closed, such messages name no endpoint and are dropped.
        Self.closer.async { self.close() }
    }

    /// Where failed endpoints are closed.
    private static let closer = DispatchQueue(label: "datadist.ucx-endpoint-close")

    /// Why the endpoint failed, or nil.
    var failureDescription: String? {
        let raw = failure.load(ordering: .acquiring)
        return raw == 0 ? nil : ucxDescription(ucs_status_t(rawValue: raw))
    }

    /// One operation to post: `count` bytes between local `local` and the peer's `remote` in region `region`.
    struct Operation {
        var local: UInt
        var remote: UInt64
        var count: Int
        var region: UInt32
    }

    /// What posting a batch gave: the requests still in progress (the last one the flush), or why it stopped.
    enum Posted {
        case requests([UnsafeMutableRawPointer])
        /// Nothing was posted: the endpoint is closed or failed.
        case unusable(String)
        /// Posting failed partway; `requests` were posted and must still complete.
        case failed(String, requests: [UnsafeMutableRawPointer])
    }

    /// Posts `operations` (reads, or writes when `write`) and one flush.
    func post(_ operations: [Operation], write: Bool) -> Posted {
        state.withLock { handles -> Posted in
            guard let endpoint = handles.endpoint else { return .unusable("the endpoint is closed") }
            if let failure = failureDescription { return .unusable("the endpoint failed: \(failure)") }
            var requests: [UnsafeMutableRawPointer] = []
            requests.reserveCapacity(operations.count + 1)
            for operation in operations where operation.count > 0 {
                if handles.keys[operation.region] == nil, let problem = Self.unpack(operation.region, in: &handles) {
                    return .failed(problem.message, requests: requests)
                }
                guard let rkey = handles.keys[operation.region] else {
                    return .failed("no remote key for region \(operation.region)", requests: requests)
                }
                let result = datadist_ucp_rma(
                    endpoint, write ? 1 : 0, UnsafeMutableRawPointer(bitPattern: operation.local), operation.count,
                    operation.remote, rkey)
                if datadist_ucs_ptr_is_err(result) != 0 {
                    let status = datadist_ucs_ptr_status(result)
                    return .failed("ucp_\(write ? "put" : "get")_nbx: \(ucxDescription(status))", requests: requests)
                }
                if let result { requests.append(result) }
            }
            return Self.flushing(endpoint, after: requests)
        }
    }

    /// Unpacks the peer's packed key of `region` into `handles.keys`; the problem when it is unusable, nil when it
    /// was unpacked or the peer offered no key for it (the caller then finds none).
    private static func unpack(_ region: UInt32, in handles: inout Handles) -> LinkError? {
        guard let endpoint = handles.endpoint, let key = handles.packed.removeValue(forKey: region) else { return nil }
        var rkey: OpaquePointer?
        let status = key.withUnsafeBytes { raw in ucp_ep_rkey_unpack(endpoint, raw.baseAddress, &rkey) }
        guard status == UCS_OK, let rkey else {
            return LinkError(
                .protocolViolation, "UCX: the remote key of region \(region) is unusable: \(ucxDescription(status))")
        }
        handles.keys[region] = rkey
        return nil
    }

    /// `requests` and a flush of `endpoint` posted after them (the flush completes once they all have).
    private static func flushing(_ endpoint: OpaquePointer, after requests: [UnsafeMutableRawPointer]) -> Posted {
        let flush = datadist_ucp_ep_flush(endpoint)
        if datadist_ucs_ptr_is_err(flush) != 0 {
            return .failed("ucp_ep_flush_nbx: \(ucxDescription(datadist_ucs_ptr_status(flush)))", requests: requests)
        }
        return .requests(flush.map { requests + [$0] } ?? requests)
    }

    /// One delivery message to post: `count` local bytes at `source`, with the `UCXInbox.Header.size` bytes of
    /// header at address `header` (both kept valid until the message completes).
    struct Message {
        var header: UInt
        var source: UInt
        var count: Int
    }

    /// Posts `messages` (eager active messages `UCXInbox.messageID`) and, when `flush`, one flush after them.
    func send(_ messages: [Message], flush: Bool = true) -> Posted {
        state.withLock { handles -> Posted in
            guard let endpoint = handles.endpoint else { return .unusable("the endpoint is closed") }
            if let failure = failureDescription { return .unusable("the endpoint failed: \(failure)") }
            var requests: [UnsafeMutableRawPointer] = []
            requests.reserveCapacity(messages.count + 1)
            for message in messages {
                let result = datadist_ucp_am_send(
                    endpoint, UCXInbox.messageID, UnsafeRawPointer(bitPattern: message.header), UCXInbox.Header.size,
                    UnsafeRawPointer(bitPattern: message.source), message.count)
                if datadist_ucs_ptr_is_err(result) != 0 {
                    let status = datadist_ucs_ptr_status(result)
                    return .failed("ucp_am_send_nbx: \(ucxDescription(status))", requests: requests)
                }
                if let result { requests.append(result) }
            }
            return flush ? Self.flushing(endpoint, after: requests) : .requests(requests)
        }
    }

    /// Closes the endpoint at once (`UCP_EP_CLOSE_FLAG_FORCE`: the peer is not asked), which also ends every
    /// operation still in progress on it with an error. Later posts find it closed.
    func close() {
        let request: UnsafeMutableRawPointer?? = state.withLock { handles in
            guard let endpoint = handles.endpoint else { return .none }
            for key in handles.keys.values { ucp_rkey_destroy(key) }
            handles = Handles()
            let request = datadist_ucp_ep_close(endpoint, 1)
            return .some(datadist_ucs_ptr_is_ptr(request) != 0 ? request : nil)
        }
        guard case .some(let pending) = request else { return }
        if let pending {
            // A forced close completes locally; bounded anyway. An unfinished one keeps the handler's context.
            guard worker.wait(for: pending, until: .now.advanced(by: .seconds(2))) != nil else { return }
            ucp_request_free(pending)
        }
        Unmanaged.passUnretained(self).release()
    }
}
