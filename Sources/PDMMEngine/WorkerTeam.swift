import CFixed

/// The worker threads of the kernels (`q16_team`): `count` workers, the calling
/// thread included, started once when the team is made (outside the training
/// steps) and joined when it is released. The parallel kernels split each output
/// into one block per worker and compute every block with the serial kernel, so
/// results are bit-identical for every `count` (the weight hashes do not depend
/// on the thread count). Each worker needs its own kernel scratch: the memory
/// plan counts `count` x the per-worker scratch (`MemoryPlan.threads`).
///
/// ```swift
/// let team = try WorkerTeam(threads: 2)   // one new thread; the caller is worker 0
/// team.count                              // 2
/// ```
public final class WorkerTeam {
    /// Workers, the calling thread included (1: no thread is started).
    public let count: Int
    let memory: UnsafeMutableRawPointer

    /// Starts `threads - 1` threads. Throws `invalidParameter` for a count outside
    /// 1...`WorkerTeam.maxThreads`, or when the threads cannot be started (or the
    /// platform has none and `threads` > 1).
    public init(threads: Int) throws(EngineError) {
        // Throws before any stored property is set: deinit never sees a team that did not start.
        if threads < 1 || threads > WorkerTeam.maxThreads {
            throw .invalidParameter(name: "threads", reason: "must be between 1 and \(WorkerTeam.maxThreads)")
        }
        let m = UnsafeMutableRawPointer.allocate(byteCount: q16_team_size(), alignment: 64)
        if q16_team_init(OpaquePointer(m), Int32(threads)) != Q16_OK {
            m.deallocate()
            throw .invalidParameter(name: "threads", reason: "\(threads) worker threads could not be started")
        }
        count = threads
        memory = m
    }

    deinit {
        q16_team_destroy(OpaquePointer(memory))
        memory.deallocate()
    }

    /// The largest team (`Q16_TEAM_MAX`).
    public static var maxThreads: Int { Int(Q16_TEAM_MAX) }

    /// The C team the parallel kernels take.
    var team: OpaquePointer { OpaquePointer(memory) }

    /// Bytes of one worker's part of a scratch block of `words` Q16.16 words.
    func strideBytes(words: Int) -> Int { words / count * 4 }
}
