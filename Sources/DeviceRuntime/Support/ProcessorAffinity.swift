internal import CLinuxSupport

/// The cores the scheduler lets this process use.
package enum ProcessorAffinity {
    /// Cores in this process's CPU affinity mask (what `taskset` or a cgroup allows), at least 1.
    package static var availableCores: Int { Int(datadist_available_cores()) }
}
