import ArgumentParser
import Dispatch
import Foundation

/// The floor of a small pull: one polled round trip of a byte over a Unix socket (to a thread of this process,
/// or to a child process) followed by a `memcpy` of the pull's bytes between two rings. Both ends poll
/// (non-blocking reads, yielding the core between tries), as the link's requester and reader do; the echo side
/// goes back to a blocking read 200 µs after its last byte, so it takes no core while other work is measured, and
/// the first round trips of each measurement are not timed. This file is the bench's only socket code.
final class BenchFloor {
    enum Peer: String {
        case thread, process
    }

    let peer: Peer
    private let socket: Int32
    private let source: UInt
    private let destination: UInt
    private let ringBytes: Int
    private var slot = 0
    private var child: Process?
    private let threadDone = DispatchSemaphore(value: 0)

    /// A socket pair with its echo end served by `peer`, and two rings of `ringBytes` written once.
    init(peer: Peer, ringBytes: Int) throws {
        self.peer = peer
        self.ringBytes = ringBytes
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw BenchFailure("floor: socketpair failed, errno \(errno)")
        }
        guard let source = BenchMemory.allocate(ringBytes), let destination = BenchMemory.allocate(ringBytes) else {
            close(fds[0])
            close(fds[1])
            throw BenchFailure("floor: cannot allocate two rings of \(ringBytes) bytes")
        }
        (self.source, self.destination, socket) = (source, destination, fds[0])
        let echoEnd = fds[1]
        switch peer {
        case .thread:
            let done = threadDone
            let thread = Thread {
                Self.echo(echoEnd)
                close(echoEnd)
                done.signal()
            }
            thread.start()
        case .process:
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.arguments = [BenchEchoCommand.configuration.commandName!]
            process.standardInput = FileHandle(fileDescriptor: echoEnd, closeOnDealloc: false)
            do {
                try process.run()
            } catch {
                close(echoEnd)
                finishResources()
                throw BenchFailure("floor: cannot start the echo process: \(error)")
            }
            close(echoEnd)
            child = process
        }
    }

    /// Seconds of each of `iterations` round trips + copies of `bytes` (after `warmUp` untimed ones); the copies
    /// rotate over the rings.
    func measure(bytes: Int, iterations: Int, warmUp: Int = 16) throws -> [Double] {
        let clock = ContinuousClock()
        let slots = max(1, ringBytes / bytes)
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for index in 0..<(warmUp + iterations) {
            let start = clock.now
            try roundTrip()
            let offset = UInt(slot * bytes)
            memcpy(
                UnsafeMutableRawPointer(bitPattern: destination + offset)!,
                UnsafeRawPointer(bitPattern: source + offset)!, bytes)
            slot = (slot + 1) % slots
            if index >= warmUp { samples.append((clock.now - start).seconds) }
        }
        return samples
    }

    /// Closes the socket (the echo side then ends) and waits for the echo thread or process.
    func finish() {
        finishResources()
        switch peer {
        case .thread: threadDone.wait()
        case .process: child?.waitUntilExit()
        }
    }

    private func finishResources() {
        close(socket)
        BenchMemory.free(source)
        BenchMemory.free(destination)
    }

    private func roundTrip() throws {
        var byte: UInt8 = 1
        guard send(socket, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else {
            throw BenchFailure("floor: send failed, errno \(errno)")
        }
        while true {
            let received = recv(socket, &byte, 1, Int32(MSG_DONTWAIT))
            if received == 1 { return }
            if received == 0 { throw BenchFailure("floor: the echo \(peer) closed its socket") }
            guard errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else {
                throw BenchFailure("floor: recv failed, errno \(errno)")
            }
            sched_yield()
        }
    }

    /// Sends back every byte read from `fd` until it closes: polls for 200 µs after each byte, then blocks.
    static func echo(_ fd: Int32) {
        let clock = ContinuousClock()
        var byte: UInt8 = 0
        var last = clock.now
        while true {
            var received = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
            if received < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                guard clock.now - last > .microseconds(200) else {
                    sched_yield()
                    continue
                }
                received = recv(fd, &byte, 1, 0)
                if received < 0, errno == EINTR { continue }
            }
            guard received == 1, send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
            last = clock.now
        }
    }
}

/// `datadist bench-echo` (hidden): the echo end of `bench`'s two-process floor, on its stdin (a Unix socket).
struct BenchEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-echo", abstract: "The echo process of `datadist bench`'s round-trip floor.",
        shouldDisplay: false)

    func run() throws { BenchFloor.echo(0) }
}
