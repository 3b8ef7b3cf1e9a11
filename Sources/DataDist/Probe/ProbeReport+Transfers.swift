/// Which device transfer paths this host has, as `datadist probe` reports them.
extension ProbeReport {
    public struct Transfers: Sendable, Codable, Hashable {
        /// Device memory exported to and imported by another process of this host (`aclrtIpcMem*`).
        public var ipc: Feature
        /// Device pairs that can reach each other's memory (`aclrtDeviceCanAccessPeer`).
        public var peerAccess: PeerAccess
        /// Copies queued on streams (`aclrtMemcpyAsync`).
        public var asyncCopy: Feature
        /// Host memory made reachable by a device (`aclrtHostRegister`).
        public var hostRegister: Feature
        /// The vendor's one-sided communication library (`libhcomm.so`), detected with dlopen only, not used.
        public var hcomm: Library
        /// The transports UCX has on this host, for links to peers the memfd mapping cannot reach.
        public var ucx: UCXTransports

        public init(
            ipc: Feature, peerAccess: PeerAccess, asyncCopy: Feature, hostRegister: Feature, hcomm: Library,
            ucx: UCXTransports
        ) {
            self.ipc = ipc
            self.peerAccess = peerAccess
            self.asyncCopy = asyncCopy
            self.hostRegister = hostRegister
            self.hcomm = hcomm
            self.ucx = ucx
        }
    }

    /// What UCX offers on this host.
    public struct UCXTransports: Sendable, Codable, Hashable {
        /// Whether UCX could list its transports.
        public var available: Bool
        /// Why not; nil when available.
        public var reason: String?
        /// Every transport resource UCX found, as "transport/device" (`tcp/eth0`, `cma/memory`, `rc_mlx5/mlx5_0:1`).
        public var transports: [String]
        /// `UCX_TLS` as set in the environment (what UCX may pick from `transports`), nil when unset.
        public var selection: String?
        /// On the ACL backend, whose device memory UCX is never given: the pinned host memory each link over UCX
        /// stages device bytes through (`DATADIST_UCX_STAGING_BYTES`, default 2 MiB); nil on the emulator, whose
        /// pools UCX sends from directly.
        public var stagingBytesPerLink: Int?

        public init(
            available: Bool, reason: String?, transports: [String], selection: String?, stagingBytesPerLink: Int? = nil
        ) {
            self.available = available
            self.reason = reason
            self.transports = transports
            self.selection = selection
            self.stagingBytesPerLink = stagingBytesPerLink
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(available, forKey: .available)
            try container.encode(reason, forKey: .reason)
            try container.encode(transports, forKey: .transports)
            try container.encode(selection, forKey: .selection)
            try container.encode(stagingBytesPerLink, forKey: .stagingBytesPerLink)
        }
    }

    /// Whether one device feature is available and, if not, why.
    public struct Feature: Sendable, Codable, Hashable {
        public var available: Bool
        /// Why not (e.g. the symbol the library lacks); nil when available.
        public var reason: String?
        /// Entry points the loaded library lacks for this feature.
        public var missingSymbols: [String]

        public init(available: Bool, reason: String?, missingSymbols: [String]) {
            self.available = available
            self.reason = reason
            self.missingSymbols = missingSymbols
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(available, forKey: .available)
            try container.encode(reason, forKey: .reason)
            try container.encode(missingSymbols, forKey: .missingSymbols)
        }
    }

    /// Peer access between every ordered pair of devices.
    public struct PeerAccess: Sendable, Codable, Hashable {
        /// Whether the runtime can answer at all (the library has the peer-access entry points).
        public var available: Bool
        /// Why not; nil when available.
        public var reason: String?
        /// One entry per ordered pair of distinct devices, when available.
        public var pairs: [Pair]

        public struct Pair: Sendable, Codable, Hashable {
            public var device: Int32
            public var peer: Int32
            public var accessible: Bool

            public init(device: Int32, peer: Int32, accessible: Bool) {
                self.device = device
                self.peer = peer
                self.accessible = accessible
            }
        }

        public init(available: Bool, reason: String?, pairs: [Pair]) {
            self.available = available
            self.reason = reason
            self.pairs = pairs
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(available, forKey: .available)
            try container.encode(reason, forKey: .reason)
            try container.encode(pairs, forKey: .pairs)
        }
    }

    /// A library looked for with dlopen.
    public struct Library: Sendable, Codable, Hashable {
        /// The name or path tried.
        public var name: String
        public var present: Bool
        /// dlopen's error when absent; nil when present.
        public var detail: String?

        public init(name: String, present: Bool, detail: String?) {
            self.name = name
            self.present = present
            self.detail = detail
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(present, forKey: .present)
            try container.encode(detail, forKey: .detail)
        }
    }
}
