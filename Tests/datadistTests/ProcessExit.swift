import Foundation

extension Process {
    /// Waits up to `timeout` for Foundation to see this child's exit; false if it still counts the child as running.
    /// Used instead of `waitUntilExit()`, which has no bound: Foundation learns of an exit when the child's end of
    /// a socket pair closes, and a child that another thread of this process spawned at the same moment can have
    /// inherited that end (Foundation closes a child's descriptors up to the highest one open when it looked).
    func waitForExit(within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        return !isRunning
    }

    /// The kernel's state letter for the child (`Z`: it died and only awaits reaping), or "gone", for messages.
    var kernelState: String {
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")"), stat.index(end, offsetBy: 2) < stat.endIndex
        else { return "gone" }
        return String(stat[stat.index(end, offsetBy: 2)])
    }
}
