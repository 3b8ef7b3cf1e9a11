import Synchronization
import ThreadSanitizerSupport

/// The server-side handshakes a listener has accepted and not finished, at most `capacity` at once. Each holds
/// little memory (its hello is at most `Hello.maxPayload` bytes). When every place is taken, a new connection
/// takes the place of the oldest handshake still waiting for its hello (a client that connected and stalled;
/// a real client sends its hello right after connecting); when every handshake is past its hello, the new
/// connection is turned away.
package final class PendingHandshakes: Sendable {
    package let capacity: Int
    private let state = Lock(State())

    private struct State {
        var nextSerial: UInt64 = 0
        /// The handshakes holding a place.
        var placed: Set<UInt64> = []
        /// Those of them still waiting for their hello, oldest first: their connections may be shut down.
        var waiting: [(serial: UInt64, socket: Socket)] = []
    }

    /// 64 at once: linking is rare, and a link's handshake takes milliseconds.
    package static let defaultCapacity = 64

    package init(capacity: Int = defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    /// Handshakes in progress.
    package var count: Int { state.withLock { $0.placed.count } }

    /// What `admit` did with a connection.
    package enum Admission: Sendable {
        /// Admitted; `evicted` says when the oldest stalled handshake was shut down to make room.
        case admitted(Ticket, evicted: Bool)
        /// Turned away (the caller closes the connection): every place is held by a handshake past its hello.
        case full(String)
    }

    /// Admits a handshake on `socket`, making room if needed (see the type's description).
    package func admit(_ socket: Socket) -> Admission {
        state.withLock { state in
            var evicted = false
            if state.placed.count >= capacity {
                guard !state.waiting.isEmpty else {
                    return .full(
                        "\(state.placed.count) link handshakes are in progress, the most this listener serves at once")
                }
                // Shut down, not closed: its own thread closes it, after it left this table.
                let oldest = state.waiting.removeFirst()
                oldest.socket.shutdown()
                state.placed.remove(oldest.serial)
                evicted = true
            }
            state.nextSerial += 1
            state.placed.insert(state.nextSerial)
            state.waiting.append((state.nextSerial, socket))
            return .admitted(Ticket(table: self, serial: state.nextSerial), evicted: evicted)
        }
    }

    fileprivate func receivedHello(_ serial: UInt64) {
        state.withLock { state in state.waiting.removeAll { $0.serial == serial } }
    }

    fileprivate func finish(_ serial: UInt64) {
        state.withLock { state in
            state.waiting.removeAll { $0.serial == serial }
            state.placed.remove(serial)
        }
    }

    /// One admitted handshake's place. Its connection must not be closed before `finish`.
    package final class Ticket: Sendable {
        private let table: PendingHandshakes
        private let serial: UInt64

        fileprivate init(table: PendingHandshakes, serial: UInt64) {
            self.table = table
            self.serial = serial
        }

        /// The hello arrived: the handshake may no longer be evicted.
        package func receivedHello() { table.receivedHello(serial) }

        /// The handshake ended: its place is free (if it was not given to another already).
        package func finish() { table.finish(serial) }

        deinit { finish() }
    }
}
