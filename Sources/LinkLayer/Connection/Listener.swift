import DeviceRuntime

#if canImport(Glibc)
internal import Glibc
#endif

/// A TCP listener and its accept loop: every accepted connection goes to `onAccept` on the loop's thread.
/// Running out of descriptors (EMFILE, ENFILE) or kernel memory does not end the loop: it pauses briefly, longer
/// while the shortage lasts, and accepts again.
package final class Listener: Sendable {
    package let endpoint: SocketEndpoint
    private let socket: Socket
    private let thread: JoinableThread

    /// Accepts one connection on a listening socket, as `Socket.acceptConnection` does.
    package typealias Accept = @Sendable (Socket) throws(Socket.Failure) -> Socket

    /// The pauses after a failed accept, in microseconds: the first, doubled while failures go on, up to the last.
    static let firstPause: UInt32 = 1_000
    static let longestPause: UInt32 = 64_000

    /// Listens on exactly `endpoint` (port 0 picks a free port; `endpoint` then names the bound one). `accept`
    /// is the system's unless a test stands in for it.
    package init(
        on endpoint: SocketEndpoint,
        accept: @escaping Accept = { socket throws(Socket.Failure) in
            try socket.acceptConnection()
        }, onAccept: @escaping @Sendable (Socket) -> Void
    ) throws(LinkError) {
        let (socket, port): (Socket, UInt16)
        do {
            (socket, port) = try Socket.listenTCP(endpoint)
        } catch {
            throw LinkError(.io, "cannot listen on \(endpoint): \(error)")
        }
        do {
            thread = try JoinableThread.start { Self.serve(socket, accept: accept, onAccept: onAccept) }
        } catch {
            socket.close()
            throw LinkError(.io, "cannot listen on \(endpoint): \(error)")
        }
        self.socket = socket
        self.endpoint = SocketEndpoint(host: endpoint.host, port: port)
    }

    /// The accept loop: ends when the socket is shut down (or fails for a reason waiting cannot mend).
    private static func serve(_ socket: Socket, accept: Accept, onAccept: @Sendable (Socket) -> Void) {
        var pause = firstPause
        while true {
            do throws(Socket.Failure) {
                onAccept(try accept(socket))
                pause = firstPause
            } catch {
                guard [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errno) else { return }
                usleep(pause)
                pause = min(pause * 2, longestPause)
            }
        }
    }

    /// Stops accepting and closes the socket.
    package func stop() {
        socket.shutdown()
        thread.join()
        socket.close()
    }
}
