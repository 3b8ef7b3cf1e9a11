/// An established link to another cluster: its control connection and the peer's pools, mapped.
final class PeerLink: Sendable {
    /// Unique per link in this process; pins taken for the peer carry it.
    let serial: UInt64
    let remoteClusterID: UInt64
    let connection: PeerConnection
    let mappings: [UInt32: PeerMapping]

    init(serial: UInt64, remoteClusterID: UInt64, connection: PeerConnection, mappings: [PeerMapping]) {
        self.serial = serial
        self.remoteClusterID = remoteClusterID
        self.connection = connection
        self.mappings = Dictionary(mappings.map { ($0.descriptor.poolID, $0) }) { first, _ in first }
    }
}

/// The links of one instance and its listener.
struct LinkRegistry: Sendable {
    var links: [UInt64: PeerLink] = [:]
    /// Clusters whose link broke (the peer died or misbehaved) rather than being unlinked, and why: a transfer
    /// to them fails with `.linkFailed` instead of `.notYetLink` until they are linked or unlinked again.
    var lost: [UInt64: String] = [:]
    var listener: Listener?
    var nextSerial: UInt64 = 1
    var isClosed = false

    mutating func takeSerial() -> UInt64 {
        defer { nextSerial += 1 }
        return nextSerial
    }
}

/// Why a link was closed on purpose (anything else means it broke).
enum DeliberateClose {
    static let unlinked = "unlinked"
    static let forced = "force-unlinked locally"
    static let finalized = "finalized"
    static let all: Set<String> = [unlinked, forced, finalized]
}

/// A TCP listener and its accept loop.
final class Listener: Sendable {
    let endpoint: IPEndpoint
    private let socket: Socket
    private let thread: WorkerThread

    init(endpoint: IPEndpoint, socket: Socket, onAccept: @escaping @Sendable (Socket) -> Void) {
        self.endpoint = endpoint
        self.socket = socket
        self.thread = WorkerThread.start {
            while let connection = socket.accept() { onAccept(connection) }
        }
    }

    /// Stops accepting and closes the socket.
    func stop() {
        socket.shutdown()
        thread.join()
        socket.close()
    }
}
