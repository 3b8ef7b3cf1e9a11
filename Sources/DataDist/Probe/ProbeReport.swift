/// What `datadist probe` reports: the backend in use and why, the product identity, the devices, the gate of
/// every operation, host facts that matter for pinned memory, and the device transfer paths.
///
/// The JSON form (`Codable`) is a stable contract: field names do not change, optional fields are written as
/// `null` rather than left out, and `operations` has one entry per `Operation` raw value.
public struct ProbeReport: Sendable, Codable, Hashable {
    /// `"acl"` or `"emulator"`.
    public var backend: String
    /// Why this backend was chosen, including why the other was not.
    public var backendReason: String
    /// Path of the vendor ACL library in use; nil on the emulator.
    public var library: String?
    /// The ACL library selection tried (loaded or not), e.g. a stub that made it fall back; nil if none.
    public var attemptedLibrary: String?
    /// SoC name the runtime reported (`aclrtGetSocName`); nil on the emulator.
    public var socName: String?
    /// DCMI board id, when it could be read.
    public var boardID: UInt32?
    /// The product gates are decided for (an `AtlasProduct` raw value).
    public var product: String
    /// The product's name as the vendor docs spell it.
    public var productName: String
    /// Every product detection could not exclude (raw values); nil unless detection was ambiguous.
    public var ambiguous: [String]?
    /// How the product was decided.
    public var detectionNote: String
    /// Every device of the runtime, in index order.
    public var devices: [Device]
    /// The gate of every operation, keyed by `Operation` raw value.
    public var operations: [String: Gate]
    /// Limits and layout of this host.
    public var host: Host
    /// Which device transfer paths this host has: IPC, peer access, async copies, host registration, libhcomm.
    public var transfers: Transfers

    /// One device as the runtime reports it.
    public struct Device: Sendable, Codable, Hashable {
        public var index: Int32
        /// Home NUMA node, when known.
        public var numaNode: Int?
        /// Capacity in bytes.
        public var memoryBytes: Int
        /// Bytes not yet allocated.
        public var freeBytes: Int

        public init(index: Int32, numaNode: Int?, memoryBytes: Int, freeBytes: Int) {
            self.index = index
            self.numaNode = numaNode
            self.memoryBytes = memoryBytes
            self.freeBytes = freeBytes
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(index, forKey: .index)
            try container.encode(numaNode, forKey: .numaNode)
            try container.encode(memoryBytes, forKey: .memoryBytes)
            try container.encode(freeBytes, forKey: .freeBytes)
        }
    }

    /// Whether an operation may run on this product, and why.
    public struct Gate: Sendable, Codable, Hashable {
        public var supported: Bool
        /// Names the product, the operation and the documentation the decision follows.
        public var reason: String

        public init(supported: Bool, reason: String) {
            self.supported = supported
            self.reason = reason
        }
    }

    /// Host facts that decide whether device-sized host memory can be pinned and placed.
    public struct Host: Sendable, Codable, Hashable {
        /// `RLIMIT_MEMLOCK` soft limit in bytes; nil when unlimited (or unreadable).
        public var memlockSoftLimit: UInt64?
        /// `RLIMIT_MEMLOCK` hard limit in bytes; nil when unlimited (or unreadable).
        public var memlockHardLimit: UInt64?
        /// Huge pages of the default size reserved on the host; nil when `/proc/meminfo` is unreadable.
        public var hugePagesTotal: Int?
        /// Reserved huge pages not in use; nil when unreadable.
        public var hugePagesFree: Int?
        /// The default huge page size in bytes; nil when unreadable.
        public var hugePageSizeBytes: UInt64?
        /// Physical NUMA nodes (1 without NUMA support).
        public var numaNodes: Int
        /// Whether the kernel supports the NUMA calls.
        public var numaAvailable: Bool

        public init(
            memlockSoftLimit: UInt64?, memlockHardLimit: UInt64?, hugePagesTotal: Int?, hugePagesFree: Int?,
            hugePageSizeBytes: UInt64?, numaNodes: Int, numaAvailable: Bool
        ) {
            self.memlockSoftLimit = memlockSoftLimit
            self.memlockHardLimit = memlockHardLimit
            self.hugePagesTotal = hugePagesTotal
            self.hugePagesFree = hugePagesFree
            self.hugePageSizeBytes = hugePageSizeBytes
            self.numaNodes = numaNodes
            self.numaAvailable = numaAvailable
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(memlockSoftLimit, forKey: .memlockSoftLimit)
            try container.encode(memlockHardLimit, forKey: .memlockHardLimit)
            try container.encode(hugePagesTotal, forKey: .hugePagesTotal)
            try container.encode(hugePagesFree, forKey: .hugePagesFree)
            try container.encode(hugePageSizeBytes, forKey: .hugePageSizeBytes)
            try container.encode(numaNodes, forKey: .numaNodes)
            try container.encode(numaAvailable, forKey: .numaAvailable)
        }
    }

    public init(
        backend: String, backendReason: String, library: String?, attemptedLibrary: String?, socName: String?,
        boardID: UInt32?, product: String, productName: String, ambiguous: [String]?, detectionNote: String,
        devices: [Device], operations: [String: Gate], host: Host, transfers: Transfers
    ) {
        self.backend = backend
        self.backendReason = backendReason
        self.library = library
        self.attemptedLibrary = attemptedLibrary
        self.socName = socName
        self.boardID = boardID
        self.product = product
        self.productName = productName
        self.ambiguous = ambiguous
        self.detectionNote = detectionNote
        self.devices = devices
        self.operations = operations
        self.host = host
        self.transfers = transfers
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(backend, forKey: .backend)
        try container.encode(backendReason, forKey: .backendReason)
        try container.encode(library, forKey: .library)
        try container.encode(attemptedLibrary, forKey: .attemptedLibrary)
        try container.encode(socName, forKey: .socName)
        try container.encode(boardID, forKey: .boardID)
        try container.encode(product, forKey: .product)
        try container.encode(productName, forKey: .productName)
        try container.encode(ambiguous, forKey: .ambiguous)
        try container.encode(detectionNote, forKey: .detectionNote)
        try container.encode(devices, forKey: .devices)
        try container.encode(operations, forKey: .operations)
        try container.encode(host, forKey: .host)
        try container.encode(transfers, forKey: .transfers)
    }
}
