import Dispatch

/// Where the drivers of one instance's `transferCacheAsync` tasks run. A driver resumed (its synchronizer
/// released a layer) while one of the instance's `TransferWorkers` waits for work runs on that worker, which then
/// sends the layer the driver queued without another wake-up (the driver yields the thread to that send before it
/// asks about the next layer): a layer released while the sender is idle starts after one thread's wake-up instead
/// of two. Otherwise it runs on one serial Dispatch queue shared by the process.
/// Neither is Swift's cooperative pool: a caller blocked in `CacheTask.synchronize()` on a cooperative thread must
/// not keep its own task's driver from running. Drivers only ask synchronizers and queue layers; a synchronizer
/// that blocks should hand its wait to a thread of its own.
final class DriverExecutor: TaskExecutor {
    private static let queue = DispatchQueue(label: "datadist.transfer-drivers")
    private let workers: TransferWorkers

    init(workers: TransferWorkers) { self.workers = workers }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        if !workers.runIfIdle({ job.runSynchronously(on: executor) }) {
            Self.queue.async { job.runSynchronously(on: executor) }
        }
    }
}
