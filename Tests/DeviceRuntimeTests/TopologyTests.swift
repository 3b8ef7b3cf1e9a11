import Foundation
import Testing

@testable import DeviceRuntime

@Suite("Topology from hwloc")
struct TopologyTests {
    struct Layout: Sendable, CustomTestStringConvertible {
        let synthetic: String
        let packages: Int
        let nodes: [Int]
        let nodePackages: [Int?]
        let homeNodes: [Int]
        var testDescription: String { synthetic }
    }

    static let layouts: [Layout] = [
        Layout(synthetic: "node:1 core:2 pu:1", packages: 0, nodes: [0], nodePackages: [nil], homeNodes: [0]),
        // hwloc inserts one machine-wide NUMA node; it overlaps package 0's CPUs.
        Layout(synthetic: "package:2 core:2 pu:1", packages: 2, nodes: [0], nodePackages: [0], homeNodes: [0]),
        Layout(
            synthetic: "package:2 numa:1 core:1 pu:1", packages: 2, nodes: [0, 1], nodePackages: [0, 1],
            homeNodes: [0, 1]),
        Layout(
            synthetic: "package:2 numa:2 core:1 pu:1", packages: 2, nodes: [0, 1, 2, 3],
            nodePackages: [0, 0, 1, 1], homeNodes: [0, 2]),
        Layout(
            synthetic: "numa:4 core:1 pu:1", packages: 0, nodes: [0, 1, 2, 3], nodePackages: [nil, nil, nil, nil],
            homeNodes: [0, 1, 2, 3]),
        Layout(
            synthetic: "package:4 numa:2 core:3 pu:1", packages: 4, nodes: Array(0..<8),
            nodePackages: [0, 0, 1, 1, 2, 2, 3, 3], homeNodes: [0, 2, 4, 6]),
    ]

    @Test("synthetic layouts give packages, nodes and home nodes", arguments: layouts)
    func synthetic(_ layout: Layout) throws {
        let topology = try Topology.load(environment: ["HWLOC_SYNTHETIC": layout.synthetic])
        #expect(topology.packages == layout.packages)
        #expect(topology.numaNodes.map(\.osIndex) == layout.nodes)
        #expect(topology.numaNodes.map(\.package) == layout.nodePackages)
        #expect(topology.homeNodes == layout.homeNodes)
    }

    @Test func cpuCountsPerNode() throws {
        let topology = try Topology.load(environment: ["HWLOC_SYNTHETIC": "package:2 numa:2 core:3 pu:2"])
        #expect(topology.numaNodes.map(\.cpuCount) == [6, 6, 6, 6])
        let single = try Topology.load(environment: ["HWLOC_SYNTHETIC": "node:1 core:2 pu:1"])
        #expect(single.numaNodes == [NUMANode(osIndex: 0, cpuCount: 2, package: nil)])
    }

    @Test("the runtime's topology is the one the environment describes")
    func runtimeTopology() throws {
        let runtime = try makeEmulator(synthetic: "package:2 numa:2 core:1 pu:1")
        #expect(
            runtime.topology == (try Topology.load(environment: ["HWLOC_SYNTHETIC": "package:2 numa:2 core:1 pu:1"])))
        #expect(runtime.topology.numaNodes.count == 4)
    }

    @Test("XML topology keeps the file's node numbers")
    func xml() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-topology-\(UUID()).xml")
        try Self.twoSocketXML.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let topology = try Topology.load(environment: ["HWLOC_XMLFILE": url.path])
        #expect(topology.packages == 2)
        #expect(
            topology.numaNodes == [
                NUMANode(osIndex: 0, cpuCount: 2, package: 0), NUMANode(osIndex: 4, cpuCount: 2, package: 1),
            ])
        let runtime = try EmulatedRuntime(environment: [
            "HWLOC_XMLFILE": url.path, "DATADIST_EMULATE_DEVICES": "4", "DATADIST_EMULATE_DEVICE_MEMORY": "1MiB",
        ])
        #expect((0..<4).map { runtime.homeNode(of: Int32($0)) } == [0, 0, 4, 4])
    }

    @Test("the synthetic description wins over the XML file, like hwloc's own variables")
    func syntheticBeforeXML() throws {
        let topology = try Topology.load(environment: [
            "HWLOC_SYNTHETIC": "numa:3 core:1 pu:1", "HWLOC_XMLFILE": "/nonexistent/topology.xml",
        ])
        #expect(topology.numaNodes.count == 3)
    }

    @Test("an invalid synthetic description names the variable and value", arguments: ["garbage", "numa:0", "core:x"])
    func invalidSynthetic(_ value: String) {
        let error = thrownError { () throws(DeviceError) in
            _ = try Topology.load(environment: ["HWLOC_SYNTHETIC": value])
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("HWLOC_SYNTHETIC") == true)
        #expect(error?.message.contains(value) == true)
    }

    @Test func invalidXML() throws {
        let missing = "/nonexistent/datadist-\(UUID()).xml"
        let error = thrownError { () throws(DeviceError) in
            _ = try Topology.load(environment: ["HWLOC_XMLFILE": missing])
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("HWLOC_XMLFILE") == true)
        #expect(error?.message.contains(missing) == true)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("datadist-bad-\(UUID()).xml")
        try "<topology>not hwloc".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        let bad = thrownError { () throws(DeviceError) in
            _ = try Topology.load(environment: ["HWLOC_XMLFILE": url.path])
        }
        #expect(bad?.code == .unavailable)
        #expect(bad?.message.contains(url.path) == true)
    }

    @Test("without hwloc variables the real machine is read")
    func realMachine() throws {
        let topology = try Topology.load(environment: [:])
        #expect(!topology.numaNodes.isEmpty)
        #expect(topology.numaNodes.reduce(0) { $0 + $1.cpuCount } >= 1)
        #expect(Set(topology.numaNodes.map(\.osIndex)).count == topology.numaNodes.count)
    }

    struct Placement: Sendable, CustomTestStringConvertible {
        let synthetic: String
        let devices: Int
        let homes: [Int]
        var testDescription: String { "\(devices) devices on \(synthetic)" }
    }

    static let placements: [Placement] = [
        Placement(synthetic: "node:1 core:2 pu:1", devices: 8, homes: Array(repeating: 0, count: 8)),
        Placement(synthetic: "package:2 numa:1 core:1 pu:1", devices: 8, homes: [0, 0, 0, 0, 1, 1, 1, 1]),
        Placement(synthetic: "package:2 numa:2 core:1 pu:1", devices: 8, homes: [0, 0, 0, 0, 2, 2, 2, 2]),
        Placement(synthetic: "numa:4 core:1 pu:1", devices: 8, homes: [0, 0, 1, 1, 2, 2, 3, 3]),
        Placement(
            synthetic: "package:4 numa:2 core:1 pu:1", devices: 16,
            homes: [0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6]),
        Placement(synthetic: "package:2 numa:2 core:1 pu:1", devices: 3, homes: [0, 0, 2]),
        Placement(synthetic: "numa:4 core:1 pu:1", devices: 2, homes: [0, 2]),
        Placement(synthetic: "numa:4 core:1 pu:1", devices: 1, homes: [0]),
    ]

    @Test("devices split into contiguous groups over the home nodes", arguments: placements)
    func placement(_ placement: Placement) throws {
        let runtime = try makeEmulator(
            synthetic: placement.synthetic, devices: String(placement.devices), memory: "1MiB")
        #expect(runtime.deviceCount == placement.devices)
        #expect((0..<placement.devices).map { runtime.homeNode(of: Int32($0)) } == placement.homes)
        let infoNodes = try (0..<placement.devices).map { try runtime.deviceInfo(Int32($0)).numaNode }
        #expect(infoNodes == placement.homes)
    }

    @Test func homeNodeOfInvalidDevice() throws {
        let runtime = try makeEmulator(devices: "4")
        #expect(runtime.homeNode(of: -1) == -1)
        #expect(runtime.homeNode(of: 4) == -1)
    }

    static let twoSocketXML = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE topology SYSTEM "hwloc2.dtd">
        <topology version="2.0">
          <object type="Machine" os_index="0" cpuset="0x0000000f" complete_cpuset="0x0000000f" allowed_cpuset="0x0000000f" nodeset="0x00000011" complete_nodeset="0x00000011" allowed_nodeset="0x00000011" gp_index="1">
            <object type="Package" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="2">
              <object type="NUMANode" os_index="0" cpuset="0x00000003" complete_cpuset="0x00000003" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="3"/>
              <object type="PU" os_index="0" cpuset="0x00000001" complete_cpuset="0x00000001" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="4"/>
              <object type="PU" os_index="1" cpuset="0x00000002" complete_cpuset="0x00000002" nodeset="0x00000001" complete_nodeset="0x00000001" gp_index="5"/>
            </object>
            <object type="Package" os_index="1" cpuset="0x0000000c" complete_cpuset="0x0000000c" nodeset="0x00000010" complete_nodeset="0x00000010" gp_index="6">
              <object type="NUMANode" os_index="4" cpuset="0x0000000c" complete_cpuset="0x0000000c" nodeset="0x00000010" complete_nodeset="0x00000010" gp_index="7"/>
              <object type="PU" os_index="2" cpuset="0x00000004" complete_cpuset="0x00000004" nodeset="0x00000010" complete_nodeset="0x00000010" gp_index="8"/>
              <object type="PU" os_index="3" cpuset="0x00000008" complete_cpuset="0x00000008" nodeset="0x00000010" complete_nodeset="0x00000010" gp_index="9"/>
            </object>
          </object>
        </topology>
        """
}
