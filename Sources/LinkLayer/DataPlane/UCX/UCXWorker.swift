internal import CUCX
internal import Glibc

/// How an instance's UCX context is configured. UCX reads its own environment (`UCX_TLS`, `UCX_NET_DEVICES`, …)
/// as always; `overrides` win over it (tests use them to pin a transport without touching the process
/// environment), `defaults` apply only to variables the environment leaves unset.
package struct UCXSettings: Sendable, Hashable {
    /// UCX variables without the `UCX_` prefix, e.g. `["TLS": "tcp"]`.
    package var overrides: [String: String]
    package var defaults: [String: String]
    /// How long one transfer may take before its endpoint is closed and it fails.
    package var transferTimeout: Duration

    /// DataDist's own defaults: 512 KiB TCP segments (`TCP_TX_SEG_SIZE`, `TCP_RX_SEG_SIZE`) instead of UCX's 8
    /// and 64 KiB. Measured (`scripts/compare-cross-host.sh`, README "Transports"): pulls between two namespaces
    /// about 1.6-2x faster at 1 and 4 MiB. They used to abort the owner inside UCX 1.13 when a link was cut
    /// mid-pull (its answer to a one-sided read); pulls are delivered by the owner now, which sends and answers
    /// nothing a dead peer can make fail (`KillTests.repeatedDecoderKills` runs with them too).
    ///
    /// And nonblocking TCP connects (`TCP_CONN_NB=y`; UCX's default is a blocking connect followed at once by its
    /// first send, inside `ucp_ep_create`): when that send fails because the peer died just after accepting,
    /// UCX 1.13 retries the connect, marks the endpoint failed before it has its send capability, adds the
    /// capability, and then aborts in `tcp_ep.c:478` ("Assertion `!(ep->flags & UCT_TCP_EP_FLAG_CTX_TYPE_TX)'").
    /// A nonblocking connect sends from the worker's progress instead, where a failure reaches the endpoint's
    /// error handler (`scripts/kill-pushers.sh`, README "Transports").
    package static let tunedDefaults: [String: String] = [
        "TCP_TX_SEG_SIZE": "512k", "TCP_RX_SEG_SIZE": "512k", "TCP_CONN_NB": "y",
    ]

    package init(
        overrides: [String: String] = [:], defaults: [String: String] = tunedDefaults, transferTimeout: Duration
    ) {
        self.overrides = overrides
        self.defaults = defaults
        self.transferTimeout = transferTimeout
    }

    /// The variables (without `UCX_`) to set in the context's configuration, given the process environment
    /// `environment`: the overrides, and each default the environment and the overrides leave unset (a default
    /// of TCP's only while TCP may be used).
    package func effective(environment: [String: String]) -> [(String, String)] {
        var result = overrides
        let tcpInUse = Self.allowsTCP(result["TLS"] ?? environment["UCX_TLS"])
        for (name, value) in defaults where result[name] == nil && environment["UCX_\(name)"] == nil {
            if name.hasPrefix(Self.tcpPrefix), !tcpInUse { continue }
            result[name] = value
        }
        return result.sorted { $0.key < $1.key }
    }

    private static let tcpPrefix = "TCP_"

    /// Whether a `UCX_TLS` value (nil: unset, every transport) lets UCX use TCP.
    package static func allowsTCP(_ tls: String?) -> Bool {
        guard var list = tls?.lowercased() else { return true }
        let excluding = list.hasPrefix("^")
        if excluding { list.removeFirst() }
        let names = list.split(separator: ",").map { String($0.filter { $0 != " " }) }
        return excluding ? !names.contains("tcp") : names.contains("tcp") || names.contains("all")
    }

    /// The name `ucp_config_modify` takes for a variable: UCP's own by its name; a transport's without its
    /// prefix (UCX 1.13 hands names it does not know to each transport's table as they are, and a transport's
    /// table spells `UCX_TCP_TX_SEG_SIZE` as `TX_SEG_SIZE`; the prefixed name matches nothing and UCX warns
    /// "invalid configurations").
    static func configurationKey(_ variable: String) -> String {
        variable.hasPrefix(tcpPrefix) ? String(variable.dropFirst(tcpPrefix.count)) : variable
    }
}

/// The text of a UCX status.
func ucxDescription(_ status: ucs_status_t) -> String { String(cString: ucs_status_string(status)) }

/// One UCP context and its one worker. The worker is created thread-safe (`UCS_THREAD_MODE_MULTI`): transfer
/// threads and the progress thread call it at once, and UCX serializes them inside each call, never across a
/// wait on the peer.
final class UCXWorker: @unchecked Sendable {
    let context: OpaquePointer
    let handle: OpaquePointer
    let eventFD: Int32
    /// This worker's address, as a peer needs it to create an endpoint to it.
    let address: [UInt8]
    /// Where the bytes owners deliver to this worker land.
    let inbox = UCXInbox()

    init(settings: UCXSettings, environment: [String: String]) throws(LinkError) {
        var config: OpaquePointer?
        var status = ucp_config_read(nil, nil, &config)
        guard status == UCS_OK, let config else {
            throw LinkError(.io, "UCX: reading its configuration failed: \(ucxDescription(status))")
        }
        defer { ucp_config_release(config) }
        for (name, value) in settings.effective(environment: environment) {
            status = ucp_config_modify(config, UCXSettings.configurationKey(name), value)
            guard status == UCS_OK else {
                throw LinkError(.io, "UCX: setting UCX_\(name)=\(value) failed: \(ucxDescription(status))")
            }
        }
        var context: OpaquePointer?
        status = datadist_ucp_init(config, &context)
        guard status == UCS_OK, let context else {
            throw LinkError(.io, "UCX: ucp_init failed: \(ucxDescription(status))")
        }
        var worker: OpaquePointer?
        status = datadist_ucp_worker_create(context, &worker)
        guard status == UCS_OK, let worker else {
            ucp_cleanup(context)
            throw LinkError(.io, "UCX: ucp_worker_create failed: \(ucxDescription(status))")
        }
        var fd: Int32 = -1
        status = ucp_worker_get_efd(worker, &fd)
        var addressPointer: OpaquePointer?
        var addressLength = 0
        if status == UCS_OK { status = ucp_worker_get_address(worker, &addressPointer, &addressLength) }
        guard status == UCS_OK, let addressPointer else {
            ucp_worker_destroy(worker)
            ucp_cleanup(context)
            throw LinkError(.io, "UCX: the worker's event fd or address: \(ucxDescription(status))")
        }
        address = Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(addressPointer), count: addressLength))
        ucp_worker_release_address(worker, addressPointer)
        do throws(LinkError) {
            try inbox.install(on: worker)
        } catch {
            ucp_worker_destroy(worker)
            ucp_cleanup(context)
            throw error
        }
        self.context = context
        self.handle = worker
        self.eventFD = fd
    }

    deinit {
        ucp_worker_destroy(handle)
        ucp_cleanup(context)
    }

    /// Progresses outstanding work once; nonzero when something happened.
    @discardableResult
    func progress() -> UInt32 { ucp_worker_progress(handle) }

    /// Progresses the worker until `done` says so (true), or until `deadline` or `abandon` says to stop (false).
    func progress(until deadline: ContinuousClock.Instant, abandon: () -> Bool, done: () -> Bool) -> Bool {
        var rounds = 0
        while true {
            if done() { return true }
            if progress() == 0 {
                rounds += 1
                if rounds & 63 == 0 {
                    if abandon() || ContinuousClock.now >= deadline { return done() }
                    sched_yield()
                }
            }
        }
    }

    /// Waits until `request` (a pointer `ucp_*_nbx` returned) is no longer in progress, progressing the worker,
    /// until `deadline` or `abandon` says to stop; returns its status, or nil when it is still in progress.
    func wait(
        for request: UnsafeMutableRawPointer, until deadline: ContinuousClock.Instant, abandon: () -> Bool = { false }
    ) -> ucs_status_t? {
        var rounds = 0
        while true {
            let status = ucp_request_check_status(request)
            if status != UCS_INPROGRESS { return status }
            if progress() == 0 {
                rounds += 1
                if rounds & 63 == 0 {
                    if abandon() || ContinuousClock.now >= deadline { return nil }
                    // Leave the core to the peer when it runs here too (tests, one host).
                    sched_yield()
                }
            }
        }
    }
}
