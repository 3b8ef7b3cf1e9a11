#if DATADIST_TSAN
@_exported import DataDist

/// TSan builds swap `Mutex` for a lock TSan can see (see `TSanVisibleMutex`).
typealias Mutex = TSanVisibleMutex
#endif
