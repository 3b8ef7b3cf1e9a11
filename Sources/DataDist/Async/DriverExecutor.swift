import Dispatch

/// Where the drivers of every `transferCacheAsync` task of the process run: one serial Dispatch queue (one thread
/// at a time). Not Swift's cooperative pool: a caller blocked in `CacheTask.synchronize()` on a cooperative
/// thread must not keep its own task's driver from running. Drivers only ask synchronizers and queue layers, so
/// one thread serves them all; a synchronizer that blocks should hand its wait to a thread of its own.
final class DriverExecutor: TaskExecutor {
    static let shared = DriverExecutor()

    private let queue = DispatchQueue(label: "datadist.transfer-drivers")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
