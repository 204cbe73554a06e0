/// The analytic memory plan of a training run: bytes per category, computed
/// from (network, batch, mode, optimizer) alone, before any step runs, from
/// the answers of each `Layer` (no size formula is written twice).
///
/// Notation (as in `shared/design/memory-model.md`): n_0 = words of one input
/// sample, n_l = |s_l| the words of layer l's output (a dense layer's width),
/// z_l = |z_l| its trainable operation's output before pooling (= n_l without a
/// pool), x_l = max pooling's argmax indices (n_l int32 words after max pooling,
/// else 0), P_l its parameters (dense n_{l-1} n_l + n_l; conv F C kh kw + F),
/// batch B, every value a 4-byte word, and S(i..j) = B (n_i + x_i + ... + n_j + x_j):
/// a stored layer output the gradient flows back through keeps its indices.
/// A stage trains layers F+1...T (F frozen layers below; see `TrainingMode.stages`);
/// `h` is 1 if the stage has an auxiliary head (blockwise, non-final block): a
/// global average pool of s_T to its c_T channels (the identity when s_T is a flat
/// vector: c_T = n_T), then a dense layer c_T -> n_L; g_T = c_T if s_T is spatial, else 0.
///
/// Per stage, in bytes (4 x words):
/// - weights.trainable = 4 (P_{F+1} + ... + P_T + h (c_T n_L + n_L))
/// - weights.frozen    = 4 (P_1 + ... + P_F)        (read-only; not in the arena)
/// - gradients         = 4 max(P_l, trained l, head included) if the optimizer needs
///                       a gradient buffer (momentum), else 0: SGD and the Riemannian
///                       step are fused into the backward pass (memory model, "Fused update")
/// - optimizer         = 4 (state words per parameter) x (trainable parameters)
/// - input             = 4 B (n_0 + 1): the batch a_0 and its B labels
///                       (the memory model counts B n_0; we add the labels)
/// - activations.stored, the quantity the L/k claim is about:
///     not checkpointed:  4 (B n_F [F >= 1] + S(F+1..T-1) + h (B n_T + B x_T + B g_T))
///                        (inputs of the trained layers; a_0 is `input`; the frozen
///                        s_F needs no indices; plus the aux head's input).
///                        bp: S(1..L-1); local(k): B n_{L-k} + S(L-k+1..L-1).
///     bp-checkpoint:     s = ceil(sqrt(L)); 4 (sum_{j>=1, js<=L-1} S(js..js)
///                        + max_j S(js+1..min((j+1)s, L)-1)): the stored boundaries
///                        plus one segment's recomputed inner activations.
/// - activations.working = 4 B max(2 pp + zf, d dw + 1), where pp = max(n_1..n_{F-1})
///                       (the frozen forward's ping-pong pair; the last frozen
///                       output goes straight into the stored input of layer F+1),
///                       zf = max z_l over frozen layers with a pool (their pre-pool
///                       buffer), dw = max(z_{F+1}..z_T, h n_L) (the widest trained
///                       pre-pool output: the delta buffers, the second of which also
///                       holds a trained layer's pre-pool output during the forward)
///                       and d = 2 delta buffers, or 1 when the stage has a
///                       single backward layer (local(1)); the + 1 is the per-sample
///                       loss row (B words). The ping-pong pair and
///                       the delta pair are never live together, so they share
///                       memory: max, not sum (cheaper than the memory model's sum).
/// - scratch           = the largest of (never live together, so max, not sum):
///                       the weight update's (`Layer.updateScratchBytes`): dense, fused
///                       (SGD, Riemannian): the int64 row of exact gradient sums, 8 n_{l-1}
///                       (`q16_update_outer_sr_buffer_size`); conv, any optimizer:
///                       `q16_conv_weight_buffer_size`; the head (fused): 8 c_T;
///                       the input gradient's of the trained layers that propagate
///                       (conv: `q16_conv_backward_data_buffer_size`; dense: 0);
///                       the forward's of layers 1...T and the head: conv
///                       `q16_conv_forward_buffer_size` (im2col, batch-independent),
///                       dense `q16_gemm_nt_buffer_size(B, n_l, n_{l-1})`, the packed
///                       block of the input (at most 16 KiB; 0 when the plan is
///                       unpacked, `packedForward`);
///                       all of it x `threads`: each worker of the parallel kernels
///                       has its own scratch (`WorkerTeam`).
///
/// blockwise(k) has ceil(L/k) stages run one after another in the same arena:
/// its plan is the per-category maximum over stages, and its peak writable
/// bytes the sum of those maxima (the arena reserves one region per category).
///
/// ```swift
/// let plan = try MemoryPlan(shape: NetworkShape(widths: [64, 128, 128, 128, 10]),
///                           batch: 32, mode: .bp, optimizer: .sgd)
/// plan.bytes[.activationsStored]  // 4 * 32 * (128 + 128 + 128) = 49152
/// ```
public struct MemoryPlan: Equatable, Sendable {
    public let shape: NetworkShape
    public let batch: Int
    public let mode: TrainingMode
    public let optimizer: OptimizerKind
    /// Planned bytes per category (per-category max over stages).
    public let bytes: ByteCounts
    /// Planned bytes of each stage.
    public let stageBytes: [ByteCounts]
    public let stages: [TrainingStage]
    /// Whether the run keeps IVC's provenance snapshot (the PDMM defect phase).
    public let calibration: Bool
    /// Whether the dense forward packs its input into scratch (`q16_gemm_nt_buffer_size`,
    /// up to 16 KiB, faster for small widths) or runs unpacked (no scratch, the same
    /// results bit for bit). `fitting(...)` drops the packing when only that fits.
    public let packedForward: Bool
    /// Workers of the run's kernels (`WorkerTeam.count`): the scratch is planned once per worker.
    public let threads: Int

    /// Sum of the writable categories: the arena size this plan needs.
    public var peakWritable: Int { bytes.writable }
    /// weights.frozen: read-only bytes (flash or a read-only mapping on a board).
    public var readOnly: Int { bytes.weightsFrozen }

    /// Plans a run; validates the shape, batch, k and optimizer first.
    ///
    /// `calibration`: the run also performs Information Value Calibration
    /// steps (PDMM): + 4 x (trainable parameters) optimizer bytes for the
    /// provenance snapshot W_provenance, and the fused-update scratch row even
    /// when the optimizer itself uses a gradient buffer (IVC's combined update
    /// is fused: no gradient buffer of its own).
    public init(shape: NetworkShape, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                calibration: Bool = false, packedForward: Bool = true, threads: Int = 1) throws(EngineError) {
        if batch < 1 { throw .batchZero(value: batch) }
        if threads < 1 || threads > WorkerTeam.maxThreads {
            throw .invalidParameter(name: "threads", reason: "must be between 1 and \(WorkerTeam.maxThreads)")
        }
        try mode.validate(layers: shape.layerCount)
        try MemoryPlan.validate(optimizer: optimizer)
        // Every activation tensor of a batch together: at most maxWords (so byte counts
        // fit 32 bits and kernel dimensions Int32).
        try MemoryPlan.checkBatchSize(shape, batch)
        self.shape = shape
        self.batch = batch
        self.mode = mode
        self.optimizer = optimizer
        self.calibration = calibration
        self.packedForward = packedForward
        self.threads = threads
        let stages = mode.stages(layers: shape.layerCount)
        var per: [ByteCounts] = []
        var total = ByteCounts()
        for st in stages {
            var b = MemoryPlan.stagePlan(shape, batch, st, optimizer, packed: packedForward)
            if calibration {
                b.optimizer += b.weightsTrainable
                b.scratch = MemoryPlan.stagePlan(shape, batch, st, .sgd, packed: packedForward).scratch
            }
            b.scratch *= threads
            per.append(b)
            total = total.maximum(b)
        }
        self.stages = stages
        self.stageBytes = per
        self.bytes = total
    }

    /// The plan a run with `budget` writable bytes uses: the packed forward if it
    /// fits, else the unpacked one (up to 16 KiB less scratch, same results), else
    /// `budgetExceeded` with the smaller (unpacked) plan's bytes and shortfall.
    ///
    /// ```swift
    /// let p = try MemoryPlan.fitting(shape: shape, batch: 32, mode: .local(k: 1), optimizer: .sgd, budget: 64 * 1024)
    /// p.packedForward   // false if only the unpacked plan fits
    /// ```
    public static func fitting(shape: NetworkShape, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                               calibration: Bool = false, threads: Int = 1,
                               budget: Int) throws(EngineError) -> MemoryPlan {
        let packed = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer,
                                    calibration: calibration, packedForward: true, threads: threads)
        if packed.peakWritable <= budget { return packed }
        let lean = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer,
                                  calibration: calibration, packedForward: false, threads: threads)
        if lean.peakWritable <= budget { return lean }
        throw .budgetExceeded(planned: lean.bytes, budget: budget)
    }

    /// Every activation tensor of a batch together must fit `NetworkShape.maxWords`
    /// (the plan's and the predictor's byte counts then fit 32 bits).
    static func checkBatchSize(_ shape: NetworkShape, _ batch: Int) throws(EngineError) {
        let (total, overflow) = batch.multipliedReportingOverflow(by: shape.wordsPerSample)
        if batch > NetworkShape.maxWords || overflow || total > NetworkShape.maxWords {
            throw .sizeTooLarge(what: "batch \(batch) x the sum of the widths")
        }
    }

    /// Scratch words of each layer's dense forward at `batch` rows (index l = 1...L;
    /// 0 unused): computed once per run, not per step.
    static func forwardScratchWordsPerLayer(_ s: NetworkShape, _ batch: Int, packed: Bool) -> [Int] {
        var w = [Int](repeating: 0, count: s.layerCount + 1)
        for l in 1...s.layerCount { w[l] = s.layer(l).forwardScratchWords(batch: batch, packed: packed) }
        return w
    }

    static func validate(optimizer: OptimizerKind) throws(EngineError) {
        switch optimizer {
        case .sgd: return
        case .momentum(let mu):
            if !(mu >= 0 && mu < 1) {
                throw .invalidParameter(name: "momentum", reason: "must satisfy 0 <= mu < 1")
            }
        case .riemannian(let alpha, let rho, _):
            if !(alpha >= 0 && alpha < 32768) {
                throw .invalidParameter(name: "riemannian alpha", reason: "must satisfy 0 <= alpha < 32768")
            }
            if !(rho >= 0 && rho < 1) {
                throw .invalidParameter(name: "riemannian rho", reason: "must satisfy 0 <= rho < 1")
            }
        }
    }

    /// The formulas of the type's documentation for one stage, from the layers' own answers.
    static func stagePlan(_ s: NetworkShape, _ B: Int, _ st: TrainingStage,
                          _ opt: OptimizerKind, packed: Bool) -> ByteCounts {
        let F = st.frozenCount, T = st.lastTrained, L = s.layerCount
        let n = s.widths
        let h = st.hasAuxHead ? 1 : 0
        let head = auxHeadInput(s, lastTrained: T)
        let headParams = h * (head.channels * n[L] + n[L])
        var b = ByteCounts()
        let trainable = s.parameterCount(layers: st.trained) + headParams
        b.weightsTrainable = 4 * trainable
        b.weightsFrozen = F > 0 ? 4 * s.parameterCount(layers: 1...F) : 0
        if opt.needsGradientBuffer {
            var g = h == 1 ? headParams : 0
            for l in st.trained { g = max(g, s.parameterCount(l)) }
            b.gradients = 4 * g
        }
        b.optimizer = 4 * opt.stateWordsPerParameter * trainable
        b.input = 4 * B * (n[0] + 1)
        // A stored layer output that the gradient flows back through keeps its argmax indices.
        func kept(_ l: Int) -> Int { n[l] + s.layer(l).indexWords }
        if st.checkpointed {
            let seg = checkpointSegment(L)
            var boundaries = 0
            var j = seg
            while j <= L - 1 { boundaries += kept(j); j += seg }
            var inner = 0
            j = 0
            while j < L {
                var sum = 0
                for l in (j + 1)..<max(min(j + seg, L), j + 1) { sum += kept(l) }
                inner = max(inner, sum)
                j += seg
            }
            b.activationsStored = 4 * B * (boundaries + inner)
        } else {
            var words = F >= 1 && F < T ? n[F] : 0
            for l in (F + 1)..<T where l >= 1 { words += kept(l) }
            if h == 1 { words += kept(T) + (head.spatial ? head.channels : 0) }
            b.activationsStored = 4 * B * words
        }
        let w = StageBuffers(s, st)
        b.activationsWorking = 4 * B * max(2 * w.pingPong + w.frozenPool, w.deltaCount * w.delta + 1)
        let fused = !opt.needsGradientBuffer  // SGD and the Riemannian step are fused
        var scratch = s.maxOver((F + 1)..<(T + 1)) { $0.updateScratchBytes(fused: fused) }
        if h == 1 && fused { scratch = max(scratch, 8 * head.channels) }
        scratch = max(scratch, 4 * s.maxOver((F + 2)..<(T + 1)) { $0.backwardDataScratchWords })
        b.scratch = max(scratch, 4 * forwardScratchWords(s, B, lastLayer: T, head: h == 1, packed: packed))
        return b
    }

    /// The working buffers of one stage, in words per sample: what the plan
    /// counts and what the trainer takes, from one computation.
    struct StageBuffers {
        /// pp: each of the frozen forward's ping-pong pair, max(n_1..n_{F-1}).
        let pingPong: Int
        /// zf: the frozen layers' pre-pool buffer, max z_l over frozen layers with a pool.
        let frozenPool: Int
        /// dw: each delta buffer, max(z_{F+1}..z_T, h n_L).
        let delta: Int
        /// d: 2 delta buffers, or 1 when the stage has a single backward layer.
        let deltaCount: Int

        init(_ s: NetworkShape, _ st: TrainingStage) {
            let F = st.frozenCount, T = st.lastTrained
            pingPong = F >= 2 ? s.maxWidth(1..<F) : 0
            frozenPool = s.maxOver(1..<(F + 1)) { $0.poolTemporaryWords }
            var dw = s.maxOver((F + 1)..<(T + 1)) { $0.preWords }
            if st.hasAuxHead { dw = max(dw, s.classCount) }
            delta = dw
            deltaCount = (T - F) + (st.hasAuxHead ? 1 : 0) >= 2 ? 2 : 1
        }
    }

    /// The auxiliary head's input after layer T: global average pooling of s_T
    /// to its channels (the identity for a flat s_T), and whether s_T is spatial.
    static func auxHeadInput(_ s: NetworkShape, lastTrained T: Int) -> (channels: Int, spatial: Bool) {
        let o = s.layer(T).output
        return (o.channels, !o.isFlat)
    }

    /// Words of the forward scratch for layers 1...lastLayer (and the auxiliary
    /// head after lastLayer): the largest need of one layer.
    static func forwardScratchWords(_ s: NetworkShape, _ B: Int, lastLayer T: Int, head: Bool,
                                    packed: Bool = true) -> Int {
        var g = s.maxOver(1..<(T + 1)) { $0.forwardScratchWords(batch: B, packed: packed) }
        if head && packed {
            let c = auxHeadInput(s, lastTrained: T).channels
            g = max(g, Kernels.denseForwardScratchWords(rows: B, nIn: c, nOut: s.classCount))
        }
        return g
    }

    /// s = ceil(sqrt(L)), the checkpoint segment length.
    public static func checkpointSegment(_ L: Int) -> Int {
        var s = 1
        while s * s < L { s += 1 }
        return s
    }

    /// Bytes of activation tensors that trained layers read as their input,
    /// a_0 included when a trained layer reads it (the memory model's "with the
    /// input counted"): stored + 4 B n_0 for a stage with no frozen layers.
    /// With equal widths, bp has L such tensors and local(k) has k: the L/k claim.
    public var layerInputBytes: Int {
        var m = 0
        for (i, st) in stages.enumerated() {
            m = max(m, stageBytes[i].activationsStored + (st.frozenCount == 0 ? 4 * batch * shape.inputWidth : 0))
        }
        return m
    }

    /// The mode's k (1 for bp-checkpoint, L for bp), for the claimed L/k.
    public var claimedRatio: Double {
        switch mode {
        case .bp, .bpCheckpoint: return 1
        case .local(let k), .blockwise(let k): return Double(shape.layerCount) / Double(k)
        }
    }
}

