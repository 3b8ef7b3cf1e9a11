import DeviceRuntime
import LinkLayer
import Synchronization
import Testing
import ThreadSanitizerSupport

#if canImport(Glibc)
import Glibc
#endif

/// `Socket.sendAll(until:)`: a peer that never reads makes a send fail at its deadline (timed out) instead of
/// blocking; a peer that reads gets every byte, however the send was split.
@Suite(.timeLimit(.minutes(1))) struct SendDeadlineTests {
    @Test func aSendToAPeerThatNeverReadsTimesOutAtItsDeadline() throws {
        let (sender, unread) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            unread.close()
        }
        let block = [UInt8](repeating: 0xA5, count: 1 << 20)  // more than both socket buffers hold
        do {
            try sender.sendAll(block, until: .now.advanced(by: .milliseconds(100)))
            Issue.record("1 MiB went into socket buffers nobody reads")
        } catch {
            #expect(error.timedOut, "\(error)")
        }
    }

    @Test func aReadingPeerGetsEveryByte() throws {
        let (sender, receiver) = try DescriptorPassingTests.socketPair()
        defer {
            sender.close()
            receiver.close()
        }
        let block = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let received = Lock<[UInt8]>([])
        let reader = try JoinableThread.start {
            let deadline = ContinuousClock.now.advanced(by: .seconds(20))
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while received.withLock({ $0.count }) < block.count, ContinuousClock.now < deadline {
                guard (try? receiver.waitReadable(until: deadline)) == true,
                    let count = try? receiver.receiveAvailable(into: &buffer, at: 0), count > 0
                else { continue }
                received.withLock { $0 += buffer[..<count] }
            }
        }
        try sender.sendAll(block, until: .now.advanced(by: .seconds(10)))
        reader.join()
        #expect(received.withLock { $0 } == block)
    }
}
