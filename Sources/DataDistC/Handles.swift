import DataDist
import Synchronization
import ThreadSanitizerSupport

/// An engine handle: one `LLMDataDist` and its epoch, which every `finalize` advances so that cache manager
/// handles from before it answer `.engineFinalized`.
final class EngineHandle: Sendable {
    let engine: LLMDataDist
    let epoch = Atomic<UInt64>(0)

    init(_ engine: LLMDataDist) { self.engine = engine }
}

/// A cache manager handle: the manager of one initialisation of an engine.
final class ManagerHandle: Sendable {
    let owner: EngineHandle
    let manager: CacheManager
    let epoch: UInt64

    init(owner: EngineHandle, manager: CacheManager, epoch: UInt64) {
        self.owner = owner
        self.manager = manager
        self.epoch = epoch
    }

    /// Throws `.engineFinalized` once the engine was finalized after this handle was made.
    func checkLive() throws(LLMError) {
        guard owner.epoch.load(ordering: .acquiring) == epoch else { throw finalizedError() }
    }

    func finalizedError() -> LLMError {
        LLMError(
            .engineFinalized,
            "cache manager of cluster \(owner.engine.clusterID) belongs to an LLMDataDist that was finalized")
    }

    /// Runs `body` on the live manager; a failure caused by a finalize racing with it reports `.engineFinalized`.
    func run<T>(_ body: (CacheManager) throws(LLMError) -> T) throws(LLMError) -> T {
        try checkLive()
        do {
            return try body(manager)
        } catch {
            if owner.epoch.load(ordering: .acquiring) != epoch { throw finalizedError() }
            throw error
        }
    }
}

/// A cache handle: a `Cache` value a manager returned (or `Cache.createCPUCache` made).
final class CacheHandle: Sendable {
    let cache: Cache

    init(_ cache: Cache) { self.cache = cache }
}

/// A cache task handle: one `transferCacheAsync` task and its number of configs.
final class TaskHandle: Sendable {
    let task: CacheTask
    let configCount: Int

    init(_ task: CacheTask, configCount: Int) {
        self.task = task
        self.configCount = configCount
    }
}

/// Every live handle by its address, so a NULL, freed or foreign pointer is refused instead of dereferenced.
/// Lookups return a strong reference taken under the lock, so a release racing with a call cannot free the
/// object the call is using.
enum Handles {
    private static let live = Lock<[UInt: any AnyObject & Sendable]>([:])

    static func register(_ object: any AnyObject & Sendable) -> OpaquePointer {
        let pointer = OpaquePointer(Unmanaged.passUnretained(object).toOpaque())
        live.withLock { $0[UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(pointer)))] = object }
        return pointer
    }

    /// The live object of type `T` at `pointer`; `.paramInvalid` naming `argument` otherwise.
    static func lookup<T: AnyObject & Sendable>(_ pointer: OpaquePointer?, _ type: T.Type, _ argument: String)
        throws(LLMError)
        -> T
    {
        guard let pointer else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(pointer)))
        guard let object = live.withLock({ $0[key] }) as? T else {
            throw LLMError(.paramInvalid, "\(argument) \(describe(key)) is not a live \(kind(T.self)) handle")
        }
        return object
    }

    /// Removes the handle at `pointer` (of type `T`) and returns its object.
    @discardableResult
    static func release<T: AnyObject & Sendable>(_ pointer: OpaquePointer?, _ type: T.Type, _ argument: String)
        throws(LLMError) -> T
    {
        guard let pointer else { throw LLMError(.paramInvalid, "\(argument) is NULL") }
        let key = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(pointer)))
        let removed: T? = live.withLock { table in
            guard let object = table[key] as? T else { return nil }
            table[key] = nil
            return object
        }
        guard let removed else {
            throw LLMError(.paramInvalid, "\(argument) \(describe(key)) is not a live \(kind(T.self)) handle")
        }
        return removed
    }

    private static func describe(_ address: UInt) -> String { "0x" + String(address, radix: 16) }

    private static func kind(_ type: AnyObject.Type) -> String {
        switch type {
        case is EngineHandle.Type: "engine"
        case is ManagerHandle.Type: "cache manager"
        case is TaskHandle.Type: "cache task"
        default: "cache"
        }
    }
}
