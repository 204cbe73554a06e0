/// One buffer of a fixed byte budget, carved into one region per writable
/// memory category. Every tensor of a training run is a view into it.
///
/// Regions are sized by the `MemoryPlan` before the first step; inside a
/// region, tensors are taken and given back in stack order (`take`, `mark`,
/// `release`). The arena records, per category, the high-water mark of bytes
/// actually taken while steps run — the *measured* footprint — and the peak of
/// the simultaneous total. Taking more than the plan gave a region is an
/// engine bug and traps. Nothing here touches the heap after `init`.
///
/// Layout: scratch first (8-byte aligned int64 words), then the 4-byte
/// categories; no padding, so the arena's size equals the plan's writable bytes.
public final class Arena {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    let ownsMemory: Bool
    var start = ByteCounts()
    var limit = ByteCounts()
    var used = ByteCounts()
    /// High-water mark per category: the measured footprint.
    public private(set) var peak = ByteCounts()
    /// High-water mark per category since the last `resetStagePeak` (one stage's footprint).
    public private(set) var stagePeak = ByteCounts()
    /// High-water mark of the sum of all writable categories at one moment.
    public private(set) var peakLive = 0
    var live = 0
    var readOnlyNow = 0

    /// Allocates `budget` bytes once and lays out the plan's regions. Throws
    /// `budgetExceeded` (every category, the total, the shortfall) if it does not fit.
    public convenience init(plan: MemoryPlan, budget: Int) throws(EngineError) {
        if plan.peakWritable > budget { throw .budgetExceeded(planned: plan.bytes, budget: budget) }
        let size = max(plan.peakWritable, 16)
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        self.init(base: p, capacity: size, owns: true, plan: plan)
    }

    /// Uses caller-owned memory (e.g. a static buffer on a board), 8-byte aligned.
    public convenience init(plan: MemoryPlan, memory: UnsafeMutableRawBufferPointer) throws(EngineError) {
        guard let p = memory.baseAddress, plan.peakWritable <= memory.count else {
            throw .budgetExceeded(planned: plan.bytes, budget: memory.count)
        }
        if Int(bitPattern: p) % 8 != 0 {
            throw .invalidParameter(name: "arena memory", reason: "must be 8-byte aligned")
        }
        self.init(base: p, capacity: memory.count, owns: false, plan: plan)
    }

    init(base: UnsafeMutableRawPointer, capacity: Int, owns: Bool, plan: MemoryPlan) {
        self.base = base
        self.capacity = capacity
        self.ownsMemory = owns
        layOut(plan.bytes)
    }

    /// An arena for a plan given directly as bytes per category (inference).
    init(plannedBytes b: ByteCounts, budget: Int) {
        let size = max(b.writable, 16)
        self.base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        self.capacity = size
        self.ownsMemory = true
        layOut(b)
    }

    private func layOut(_ b: ByteCounts) {
        var off = 0
        for c in [MemoryCategory.scratch, .weightsTrainable, .gradients, .optimizer, .input,
                  .activationsStored, .activationsWorking] {
            start[c] = off
            limit[c] = b[c]
            off += b[c]
        }
    }

    deinit { if ownsMemory { base.deallocate() } }

    /// Takes `words` Q16.16 words from `category`'s region.
    func take(_ category: MemoryCategory, _ words: Int) -> Tensor {
        let p = takeBytes(category, 4 * words)
        return Tensor(base: p.assumingMemoryBound(to: Int32.self), count: words)
    }

    /// Takes `words` int64 words from the scratch region.
    func takeScratch64(_ words: Int) -> UnsafeMutablePointer<Int64> {
        takeBytes(.scratch, 8 * words).assumingMemoryBound(to: Int64.self)
    }

    private func takeBytes(_ c: MemoryCategory, _ n: Int) -> UnsafeMutableRawPointer {
        let u = used[c]
        precondition(u + n <= limit[c], "arena: category exceeds its planned bytes (engine bug)")
        used[c] = u + n
        if used[c] > peak[c] { peak[c] = used[c] }
        if used[c] > stagePeak[c] { stagePeak[c] = used[c] }
        live += n
        if live > peakLive { peakLive = live }
        return base + start[c] + u
    }

    /// The current fill level of a category, to give back to later.
    func mark(_ c: MemoryCategory) -> Int { used[c] }

    /// Gives back everything taken from `c` since `mark`.
    func release(_ c: MemoryCategory, to mark: Int) {
        precondition(mark <= used[c], "arena: release above the fill level")
        live -= used[c] - mark
        used[c] = mark
    }

    /// Records read-only bytes a stage reads in place (frozen weights), so the
    /// report's frozen figure is measured too.
    func noteReadOnly(_ bytes: Int) {
        readOnlyNow = bytes
        if bytes > peak.weightsFrozen { peak.weightsFrozen = bytes }
        if bytes > stagePeak.weightsFrozen { stagePeak.weightsFrozen = bytes }
    }

    /// Starts a new per-stage high-water reading from the current fill levels.
    public func resetStagePeak() {
        stagePeak = used
        stagePeak.weightsFrozen = readOnlyNow
    }

    /// The words currently taken from a 4-byte category (checkpoints).
    func words(_ c: MemoryCategory) -> [Int32] {
        let p = (base + start[c]).assumingMemoryBound(to: Int32.self)
        return Array(UnsafeBufferPointer(start: p, count: used[c] / 4))
    }

    /// Overwrites the words currently taken from a 4-byte category; false if the count differs.
    func load(_ c: MemoryCategory, _ w: [Int32]) -> Bool {
        if w.count * 4 != used[c] { return false }
        let p = (base + start[c]).assumingMemoryBound(to: Int32.self)
        for i in 0..<w.count { p[i] = w[i] }
        return true
    }

    /// Bytes currently taken, per category.
    public var inUse: ByteCounts { used }
}
