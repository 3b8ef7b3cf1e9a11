import DeviceRuntime
internal import Glibc

/// A side's way to share device memory by key with a peer on the same host (the ACL backend's IPC), for the pools
/// that have no memfd.
package struct DeviceSharing: Sendable {
    package var runtime: any DeviceRuntime
    /// The device this side's pools are on and imports are made for.
    package var device: Int32

    package init(runtime: any DeviceRuntime, device: Int32) {
        self.runtime = runtime
        self.device = device
    }
}

/// A peer's region imported into this process by key.
package struct ImportedRegion: Sendable, Hashable {
    package var descriptor: RegionDescriptor
    package var key: SharingKey
    package var address: UInt
}

/// The second half of the region exchange over the link's Unix socket, after the memfds: each side sends the PID
/// a peer whitelists for it (0: no device sharing), then exports its regions without a memfd by key, whitelisting
/// the peer's PID, sends the keys, and imports the peer's.
package enum IPCExchange {
    package static let maxRegions = RegionExchange.maxRegions

    /// Sends this side's sharing PID (0 when it cannot import).
    package static func sendPID(_ sharing: DeviceSharing?, to unix: Socket) throws(Socket.Failure) {
        let pid = sharing.flatMap { try? $0.runtime.sharingProcessID() } ?? 0
        var writer = WireWriter()
        writer.u32(UInt32(bitPattern: pid))
        try unix.send(writer.bytes, passing: -1)
    }

    package static func receivePID(from unix: Socket, until deadline: ContinuousClock.Instant) throws(Socket.Failure)
        -> Int32
    {
        var reader = WireReader(try receive(4, from: unix, until: deadline)[...])
        guard let pid = try? reader.u32() else { throw Socket.Failure(operation: "sharing PID", errno: EPROTO) }
        return Int32(bitPattern: pid)
    }

    /// Exports `regions` (those without a memfd) for `peerPID` and sends their keys; nothing when the peer cannot
    /// import (PID 0) or this side cannot export. Returns the keys exported, for the data plane to close.
    package static func sendKeys(
        _ regions: [PublishedRegion], sharing: DeviceSharing?, peerPID: Int32, to unix: Socket
    ) throws(Socket.Failure) -> [SharingKey] {
        var exported: [(RegionDescriptor, SharingKey)] = []
        if let sharing, peerPID > 0, sharing.runtime.availability(of: .ipc).isAvailable {
            for region in regions where region.fd < 0 && region.descriptor.kind == .device {
                guard let base = region.base else { continue }
                do throws(DeviceError) {
                    let key = try sharing.runtime.exportRegion(
                        at: base, size: Int(region.descriptor.size), device: sharing.device, validation: .whitelist)
                    do throws(DeviceError) {
                        try sharing.runtime.allowImport(of: key, by: [peerPID])
                    } catch {
                        try? sharing.runtime.closeShared(key)
                        throw error
                    }
                    exported.append((region.descriptor, key))
                } catch {
                    close(exported.map(\.1), sharing: sharing)
                    throw Socket.Failure(
                        operation: "exporting pool \(region.descriptor.regionID): \(error)", errno: EPROTO)
                }
            }
        }
        var writer = WireWriter()
        writer.u32(UInt32(exported.count))
        for (descriptor, key) in exported {
            descriptor.encode(into: &writer)
            var bytes = Array(key.text.utf8)
            bytes += [UInt8](repeating: 0, count: SharingKey.bufferLength - bytes.count)
            writer.raw(bytes)
        }
        do throws(Socket.Failure) {
            try unix.send(writer.bytes, passing: -1)
        } catch {
            if let sharing { close(exported.map(\.1), sharing: sharing) }
            throw error
        }
        return exported.map(\.1)
    }

    /// Receives the peer's keys and imports them; a region this side cannot import fails the exchange (and
    /// everything imported so far is closed).
    package static func receiveKeys(
        from unix: Socket, sharing: DeviceSharing?, until deadline: ContinuousClock.Instant
    ) throws(Socket.Failure) -> [ImportedRegion] {
        var header = WireReader(try receive(4, from: unix, until: deadline)[...])
        guard let count = try? header.u32(), count <= maxRegions else {
            throw Socket.Failure(operation: "key count", errno: EPROTO)
        }
        guard count > 0 else { return [] }
        let bytes = try receive(
            Int(count) * (RegionDescriptor.encodedSize + SharingKey.bufferLength), from: unix, until: deadline)
        var reader = WireReader(bytes[...])
        var received: [(RegionDescriptor, SharingKey)] = []
        for _ in 0..<count {
            guard let descriptor = try? RegionDescriptor(from: &reader),
                let raw = try? reader.raw(count: SharingKey.bufferLength),
                let key = SharingKey(text: String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self))
            else { throw Socket.Failure(operation: "region key", errno: EPROTO) }
            received.append((descriptor, key))
        }
        guard let sharing else {
            throw Socket.Failure(operation: "the peer shares pools by key, this side cannot import", errno: EPROTO)
        }
        var imported: [ImportedRegion] = []
        for (descriptor, key) in received {
            do throws(DeviceError) {
                let address = try sharing.runtime.importRegion(key, on: sharing.device, peerAccess: true)
                imported.append(ImportedRegion(descriptor: descriptor, key: key, address: address))
            } catch {
                close(imported.map(\.key), sharing: sharing)
                throw Socket.Failure(operation: "importing pool \(descriptor.regionID): \(error)", errno: EPROTO)
            }
        }
        return imported
    }

    /// What one side exported for the peer and imported from it.
    package struct Keys: Sendable {
        package var exports: [SharingKey] = []
        package var imports: [ImportedRegion] = []
    }

    /// Exports `offer`'s key regions for `peerPID`, sends the keys, then receives and imports the peer's. On a
    /// failure nothing stays open.
    package static func exchangeKeys(
        _ offer: LinkOffer, peerPID: Int32, on unix: Socket, until deadline: ContinuousClock.Instant
    ) throws(Socket.Failure) -> Keys {
        let exports = try sendKeys(offer.keyRegions, sharing: offer.deviceSharing, peerPID: peerPID, to: unix)
        do throws(Socket.Failure) {
            return Keys(
                exports: exports, imports: try receiveKeys(from: unix, sharing: offer.deviceSharing, until: deadline))
        } catch {
            if let sharing = offer.deviceSharing { close(exports, sharing: sharing) }
            throw error
        }
    }

    /// Closes `keys` (imports or exports of this side), ignoring failures: an import's mapping goes either way,
    /// and an error there only says the exporter closed first.
    package static func close(_ keys: [SharingKey], sharing: DeviceSharing) {
        for key in keys { try? sharing.runtime.closeShared(key) }
    }

    private static func receive(_ count: Int, from unix: Socket, until deadline: ContinuousClock.Instant)
        throws(Socket.Failure) -> [UInt8]
    {
        let (bytes, stray) = try unix.receive(count: count, until: deadline)
        if stray >= 0 { _ = Glibc.close(stray) }
        return bytes
    }
}
