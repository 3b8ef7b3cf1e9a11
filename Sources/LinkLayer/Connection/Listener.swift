import DeviceRuntime

/// A TCP listener and its accept loop: every accepted connection goes to `onAccept` on the loop's thread.
package final class Listener: Sendable {
    package let endpoint: SocketEndpoint
    private let socket: Socket
    private let thread: JoinableThread

    /// Listens on exactly `endpoint` (port 0 picks a free port; `endpoint` then names the bound one).
    package init(on endpoint: SocketEndpoint, onAccept: @escaping @Sendable (Socket) -> Void) throws(LinkError) {
        let (socket, port): (Socket, UInt16)
        do {
            (socket, port) = try Socket.listenTCP(endpoint)
        } catch {
            throw LinkError(.io, "cannot listen on \(endpoint): \(error)")
        }
        do {
            thread = try JoinableThread.start {
                while let connection = socket.accept() { onAccept(connection) }
            }
        } catch {
            socket.close()
            throw LinkError(.io, "cannot listen on \(endpoint): \(error)")
        }
        self.socket = socket
        self.endpoint = SocketEndpoint(host: endpoint.host, port: port)
    }

    /// Stops accepting and closes the socket.
    package func stop() {
        socket.shutdown()
        thread.join()
        socket.close()
    }
}
