extension Topology {
    /// The NUMA nodes (OS indices) emulated devices attach to, like an Atlas host where NPUs hang off the
    /// first NUMA node of each socket.
    ///
    /// With more than one package: the first NUMA node (in hwloc's logical order) of each package, in package
    /// order, skipping packages that hold no node. Otherwise, or when that leaves nothing: every NUMA node.
    public var homeNodes: [Int] {
        if packages > 1 {
            var firsts: [Int] = []
            for package in 0..<packages {
                if let node = numaNodes.first(where: { $0.package == package }), !firsts.contains(node.osIndex) {
                    firsts.append(node.osIndex)
                }
            }
            if !firsts.isEmpty { return firsts }
        }
        return numaNodes.map(\.osIndex)
    }

    /// The home node of each of `deviceCount` devices: devices are split into contiguous, equal-as-possible
    /// groups over `homeNodes` in order, device `d` going to `homeNodes[d * homeNodes.count / deviceCount]`.
    /// So 8 devices over 2 home nodes put 0–3 on the first and 4–7 on the second; over 4 home nodes, 2 each.
    public func deviceHomeNodes(deviceCount: Int) -> [Int] {
        let homes = homeNodes
        guard deviceCount > 0 else { return [] }
        return (0..<deviceCount).map { homes[$0 * homes.count / deviceCount] }
    }
}
