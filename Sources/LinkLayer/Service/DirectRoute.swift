internal import Glibc
import Synchronization
import ThreadSanitizerSupport

/// The two ends of one link whose sides both live in this process. A requester then hands its request frame to
/// the peer's `ServiceDispatcher` on its own thread instead of sending it over the control connection: the same
/// decoding, the same owner policy, the same answer, without the socket round trip and the owner thread's wake-up.
/// The link itself (its connection, reader and close) is unchanged; once either side closes, the route serves
/// nothing more, and the close waits for the calls still inside it, so no grant outlives the owner's close.
package final class DirectRoute: Sendable {
    /// Which end of the link a channel is: the side that linked, or the side that listened.
    package enum Side: Int, Sendable {
        case linking = 0
        case listening = 1

        var other: Side { self == .linking ? .listening : .linking }
    }

    private struct State {
        var ends: [ServiceDispatcher?] = [nil, nil]
        var closed = false
        var inFlight = 0
        var served: UInt64 = 0
    }

    package let name: String
    private let state = Lock(State())

    fileprivate init(name: String) { self.name = name }

    /// Frames served over this route so far (both directions).
    package var servedFrames: UInt64 { state.withLock { $0.served } }

    func join(_ dispatcher: ServiceDispatcher, as side: Side) {
        state.withLock { state in
            guard !state.closed else { return }
            state.ends[side.rawValue] = dispatcher
        }
    }

    /// Has the other side's dispatcher serve `frame` for `side`'s requester; nil while that side has not joined
    /// or once the link closed (the caller then goes over the connection, which says why).
    func serve(_ frame: Frame, from side: Side) -> ControlReply? {
        let peer: ServiceDispatcher? = state.withLock { state in
            guard !state.closed, let peer = state.ends[side.other.rawValue] else { return nil }
            state.inFlight += 1
            state.served += 1
            return peer
        }
        guard let peer else { return nil }
        defer { state.withLock { $0.inFlight -= 1 } }
        return peer.serve(frame)
    }

    /// Serves nothing more and waits until the calls inside have returned (they only run the owner's policy,
    /// which never waits for a peer).
    func close() {
        // The dispatchers hold the route too: dropping them ends that cycle.
        state.withLock { state in
            state.closed = true
            state.ends = [nil, nil]
        }
        DirectRoutes.forget(self)
        while state.withLock({ $0.inFlight }) > 0 { sched_yield() }
    }
}

/// Where a link's handshake met and which end of it a channel is (`EstablishedLink.pairing`).
package struct DirectPairing: Sendable {
    package var name: String
    package var side: DirectRoute.Side

    package init(name: String, side: DirectRoute.Side) {
        self.name = name
        self.side = side
    }
}

/// The routes of this process, by the name of the Unix socket their link's handshake met on. That name is
/// random and bound by the linking side of this process, so a listening side in this process that connected
/// to it reached that very side: the two channels registered under one name are the two ends of one
/// connection.
enum DirectRoutes {
    private static let routes = Lock<[String: DirectRoute]>([:])

    /// The route named `name`, made if this is its first end.
    static func route(named name: String) -> DirectRoute {
        routes.withLock { routes in
            if let route = routes[name] { return route }
            let route = DirectRoute(name: name)
            routes[name] = route
            return route
        }
    }

    static func forget(_ route: DirectRoute) {
        routes.withLock { routes in
            if routes[route.name] === route { routes[route.name] = nil }
        }
    }
}
