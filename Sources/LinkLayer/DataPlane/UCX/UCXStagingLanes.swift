import DeviceRuntime
internal import Glibc
import Synchronization
import ThreadSanitizerSupport

/// One link's staging memory: `UCXStaging.lanes` pipelines, each `buffersPerLane` pinned host buffers of the
/// runtime (`allocateHost`) with a stream each, so that a transfer can wait for one buffer's copy while the copies
/// into the others run. A staged transfer takes a lane for its duration. Everything is freed
/// by `close` (unlink, finalize), a lane still in use when it is given back.
final class UCXStagingLanes: Sendable {
    struct Lane: Sendable {
        /// `streams[i]` copies into `buffers[i]`.
        let streams: [DeviceStream]
        let buffers: [DeviceMemory]
    }

    let staging: UCXStaging
    private let state: Lock<State>

    private struct State {
        var idle: [Lane]
        var closed = false
    }

    /// Allocates every lane now; on a failure frees what it got and throws.
    init(_ staging: UCXStaging) throws(LinkError) {
        self.staging = staging
        var lanes: [Lane] = []
        do throws(DeviceError) {
            for _ in 0..<staging.lanes {
                var streams: [DeviceStream] = []
                var buffers: [DeviceMemory] = []
                do throws(DeviceError) {
                    for _ in 0..<staging.buffersPerLane {
                        streams.append(try staging.runtime.createStream(on: staging.device))
                        buffers.append(try staging.runtime.allocateHost(staging.bufferBytes))
                    }
                } catch {
                    Self.release(Lane(streams: streams, buffers: buffers), staging.runtime)
                    throw error
                }
                lanes.append(Lane(streams: streams, buffers: buffers))
            }
        } catch {
            for lane in lanes { Self.release(lane, staging.runtime) }
            throw LinkError(.io, "UCX: staging memory for device transfers could not be set up: \(error)")
        }
        state = Lock(State(idle: lanes))
    }

    deinit { close() }

    /// A lane, once one is idle; nil when none is by `deadline` or the lanes are closed.
    func take(until deadline: ContinuousClock.Instant) -> Lane? {
        while true {
            let (lane, closed) = state.withLock { state in (state.closed ? nil : state.idle.popLast(), state.closed) }
            if let lane { return lane }
            if closed || ContinuousClock.now >= deadline { return nil }
            // Another transfer of this link is staging; lanes are held for one transfer's sends only.
            usleep(200)
        }
    }

    /// Gives `lane` back (freed at once if the lanes were closed meanwhile).
    func give(_ lane: Lane) {
        let freeNow = state.withLock { state -> Bool in
            if state.closed { return true }
            state.idle.append(lane)
            return false
        }
        if freeNow { Self.release(lane, staging.runtime) }
    }

    /// Frees every idle lane; lanes in use are freed when they are given back.
    func close() {
        let idle = state.withLock { state -> [Lane] in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for lane in idle { Self.release(lane, staging.runtime) }
    }

    private static func release(_ lane: Lane, _ runtime: any DeviceRuntime) {
        for stream in lane.streams { try? runtime.destroyStream(stream) }
        for buffer in lane.buffers { try? runtime.free(buffer) }
    }
}
