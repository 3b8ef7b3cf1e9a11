internal import CHwloc

/// The host's processor and memory layout as hwloc reports it: packages (sockets) and NUMA nodes.
public struct Topology: Sendable, Hashable {
    /// Number of packages (sockets) hwloc found; 0 when the topology has no package level (possible with
    /// synthetic or XML topologies).
    public let packages: Int
    /// NUMA nodes in hwloc's logical order; never empty.
    public let numaNodes: [NUMANode]

    /// Variable holding an hwloc synthetic topology description, e.g. `package:2 numa:2 core:1 pu:1`.
    public static let syntheticVariable = "HWLOC_SYNTHETIC"
    /// Variable holding the path of an hwloc XML topology export.
    public static let xmlVariable = "HWLOC_XMLFILE"

    public init(packages: Int, numaNodes: [NUMANode]) {
        self.packages = packages
        self.numaNodes = numaNodes
    }

    /// Loads the topology described by `environment`: the synthetic description in `HWLOC_SYNTHETIC` if
    /// present, else the XML file in `HWLOC_XMLFILE` if present, else the real machine. The variables are read
    /// from the dictionary, not from the process environment. A topology without NUMA objects is reported as
    /// one node 0 holding every CPU.
    ///
    /// - Throws: `DeviceError(.unavailable)` naming the variable and its value when the description or file
    ///   is invalid, or when hwloc cannot load the topology.
    public static func load(environment: [String: String]) throws(DeviceError) -> Topology {
        var topology: hwloc_topology_t?
        guard hwloc_topology_init(&topology) == 0, let topology else {
            throw DeviceError(.unavailable, "hwloc_topology_init failed")
        }
        defer { hwloc_topology_destroy(topology) }

        var source = "the real machine"
        if let description = environment[syntheticVariable] {
            source = "\(syntheticVariable)=\"\(description)\""
            guard hwloc_topology_set_synthetic(topology, description) == 0 else {
                throw DeviceError(.unavailable, "invalid hwloc synthetic topology \(source)")
            }
        } else if let path = environment[xmlVariable] {
            source = "\(xmlVariable)=\"\(path)\""
            guard hwloc_topology_set_xml(topology, path) == 0 else {
                throw DeviceError(.unavailable, "cannot use hwloc XML topology \(source)")
            }
        }
        guard hwloc_topology_load(topology) == 0 else {
            throw DeviceError(.unavailable, "hwloc could not load the topology from \(source)")
        }
        return read(topology)
    }

    /// Reads packages and NUMA nodes out of a loaded hwloc topology.
    private static func read(_ topology: hwloc_topology_t) -> Topology {
        let packageCount = Int(max(0, hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PACKAGE)))
        let packageObjects = (0..<packageCount).compactMap {
            hwloc_get_obj_by_type(topology, HWLOC_OBJ_PACKAGE, UInt32($0))
        }
        let nodeCount = Int(max(0, hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE)))

        var nodes: [NUMANode] = []
        for index in 0..<nodeCount {
            guard let node = hwloc_get_obj_by_type(topology, HWLOC_OBJ_NUMANODE, UInt32(index)) else { continue }
            nodes.append(
                NUMANode(
                    osIndex: Int(node.pointee.os_index),
                    cpuCount: cpuCount(node.pointee.cpuset),
                    package: packageIndex(of: node, in: topology, packages: packageObjects)))
        }
        if nodes.isEmpty {
            let root = hwloc_get_obj_by_type(topology, HWLOC_OBJ_MACHINE, 0)
            nodes = [
                NUMANode(osIndex: 0, cpuCount: cpuCount(root?.pointee.cpuset), package: packageCount > 0 ? 0 : nil)
            ]
        }
        return Topology(packages: packageCount, numaNodes: nodes)
    }

    /// The logical index of the package holding `node`: its package ancestor, else the first package whose
    /// CPUs overlap the node's (a node attached above the package level), else nil.
    private static func packageIndex(
        of node: hwloc_obj_t, in topology: hwloc_topology_t, packages: [hwloc_obj_t]
    ) -> Int? {
        if let ancestor = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_PACKAGE, node) {
            return Int(ancestor.pointee.logical_index)
        }
        for package in packages where hwloc_bitmap_intersects(package.pointee.cpuset, node.pointee.cpuset) != 0 {
            return Int(package.pointee.logical_index)
        }
        return nil
    }

    private static func cpuCount(_ cpuset: hwloc_const_cpuset_t?) -> Int {
        guard let cpuset else { return 0 }
        return Int(max(0, hwloc_bitmap_weight(cpuset)))
    }
}

/// One NUMA node of a `Topology`.
public struct NUMANode: Sendable, Hashable, Codable {
    /// The operating system's node number (what `mbind` and `/sys/devices/system/node` use).
    public let osIndex: Int
    /// CPUs local to the node.
    public let cpuCount: Int
    /// Logical index of the package (socket) holding the node; nil when the topology has no packages.
    public let package: Int?

    public init(osIndex: Int, cpuCount: Int, package: Int?) {
        self.osIndex = osIndex
        self.cpuCount = cpuCount
        self.package = package
    }
}
