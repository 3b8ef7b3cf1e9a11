/// A live emulator allocation: the mapping behind it, what the caller sees, and the bytes charged to its device.
struct EmulatorAllocation: Sendable, Hashable {
    let mapping: MemfdMapping
    let memory: DeviceMemory
    /// Bytes counted against the device's capacity (0 for host memory).
    let accounted: Int
}

/// Live allocations sorted by base address, so finding the allocation around an address is a binary search.
struct EmulatorAllocationTable: Sendable {
    private(set) var entries: [EmulatorAllocation] = []

    var count: Int { entries.count }

    mutating func insert(_ allocation: EmulatorAllocation) {
        entries.insert(allocation, at: firstIndex(after: allocation.memory.address))
    }

    /// Removes and returns the allocation whose base is exactly `memory.address` and whose placement matches;
    /// nil (and nothing changes) otherwise.
    mutating func remove(_ memory: DeviceMemory) -> EmulatorAllocation? {
        let index = firstIndex(after: memory.address) - 1
        guard index >= 0, entries[index].memory.address == memory.address,
            entries[index].memory.placement == memory.placement
        else { return nil }
        return entries.remove(at: index)
    }

    /// The allocation whose requested bytes `[base, base + size)` contain `address`.
    func allocation(containing address: UInt) -> EmulatorAllocation? {
        let index = firstIndex(after: address) - 1
        guard index >= 0 else { return nil }
        let candidate = entries[index]
        return address - candidate.memory.address < UInt(candidate.memory.size) ? candidate : nil
    }

    /// Whether all of `[address, address + count)` lies inside one live device allocation (no copy of the entry:
    /// the batched copy check runs this per segment under the runtime's lock).
    func holdsDeviceBytes(at address: UInt, count: Int) -> Bool {
        let index = firstIndex(after: address) - 1
        guard index >= 0 else { return false }
        let memory = entries[index].memory
        guard case .device = memory.placement, address - memory.address < UInt(memory.size) else { return false }
        return Int(address - memory.address) <= memory.size - count
    }

    /// Index of the first entry whose base is greater than `address`.
    private func firstIndex(after address: UInt) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].memory.address <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
