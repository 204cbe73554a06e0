import CFixed

/// Multiply-accumulates per phase, counted as the kernels are called
/// (rows x n_in x n_out per dense call).
public struct MACCounts: Equatable {
    public var forward: UInt64 = 0
    public var backward: UInt64 = 0
    public var recompute: UInt64 = 0
    public var update: UInt64 = 0
    /// Forward passes of `evaluate` (not training work; not in `total`).
    public var evaluation: UInt64 = 0
    public init() {}
    /// Training MACs: forward + backward + recompute + update.
    public var total: UInt64 { forward + backward + recompute + update }
}

/// What one step or one pass over data produced.
public struct PassStats: Equatable {
    /// Sum over samples of the cross-entropy loss, Q16.16 words summed in 64 bits.
    public var lossSum: Int64 = 0
    /// Samples whose arg-max prediction equals the label.
    public var correct = 0
    public var samples = 0
    public init() {}
    mutating func add(_ o: PassStats) {
        lossSum += o.lossSum
        correct += o.correct
        samples += o.samples
    }
}

/// Hyper-parameters of a run.
public struct TrainingOptions: Equatable {
    /// Learning rate of the batch-mean loss (the kernels get lr / rows as Q0.32).
    public var learningRate: Double
    /// Seeds stochastic rounding, batch order and auxiliary-head initialisation.
    public var seed: UInt64
    /// Worker threads of the kernels (`WorkerTeam`), started once with the trainer. The
    /// results are bit-identical for every count; the plan's scratch grows with it.
    public var threads: Int
    public init(learningRate: Double = 0.05, seed: UInt64 = 1, threads: Int = 1) {
        self.learningRate = learningRate
        self.seed = seed
        self.threads = threads
    }
}

/// Trains a `Model` in one of the four modes inside one fixed `Arena`.
///
/// Forward is a list of dense-layer kernel calls; backward is that list
/// reversed, each layer's update applied as soon as its delta for the layer
/// below is computed. All modes share `forwardLayer`/`backwardLayer`; they
/// differ only in what they store (see `MemoryPlan`).
///
/// ```swift
/// let model = try Model(shape: NetworkShape(widths: [64, 128, 10]), seed: 1)
/// let t = try Trainer(model: model, batch: 32, mode: .bp, optimizer: .sgd,
///                     options: TrainingOptions(), budget: 256 * 1024)
/// for stage in 0..<t.stageCount {
///     t.beginStage(stage)
///     for e in 0..<30 { _ = try t.trainEpoch(train, epoch: e) }
///     t.endStage()
/// }
/// t.arena.peak == t.plan.bytes   // measured == planned
/// ```
public final class Trainer {
    public let model: Model
    public let plan: MemoryPlan
    public let arena: Arena
    public let options: TrainingOptions
    /// The kernels' workers (`plan.threads` of them), started at init.
    public let team: WorkerTeam
    public private(set) var macs = MACCounts()
    /// Results clamped by any kernel so far.
    public internal(set) var saturations: UInt64 = 0
    /// Stochastic-rounding counter: advanced by every update element.
    public private(set) var randomCounter: UInt64 = 0
    public private(set) var stepCount = 0
    public private(set) var currentStage = -1

    let L: Int
    let n: [Int]
    let net: NetworkShape
    /// The current stage's auxiliary head: a dense layer from the channels of s_T to the classes.
    var headLayer: Layer
    let batch: Int
    let seg: Int
    // Per-layer views, index 1...L, L+1 = auxiliary head. Built once, rewritten per stage.
    var params: [Tensor]
    var velocity: [Tensor]
    var acts: [Tensor]
    /// Max pooling's argmax indices of layer l's output, where the gradient flows back through it.
    var idx: [UnsafeMutablePointer<Int32>?]
    /// The auxiliary head's input: s_T, or its global average pool when s_T is spatial.
    var headInput: Tensor
    /// Scratch words of each layer's dense forward (index 1...L, L+1 = the auxiliary head), computed at init and per stage, not per step.
    var forwardScratch: [Int] = []
    var input: Tensor
    let labels: UnsafeMutablePointer<Int32>
    var stage = TrainingStage(frozenCount: 0, lastTrained: 0, hasAuxHead: false, checkpointed: false)
    /// The current stage's working buffers (the plan's `StageBuffers`), set by `beginStage`.
    var stageBuffers: MemoryPlan.StageBuffers
    var stageMarks = (weights: 0, optimizer: 0)
    var lastInnerMark = 0
    /// Provenance snapshot per trained layer (calibration runs only).
    var provenance: [Tensor]
    /// Set during a calibration step: (gradient rate, pull rate), Q0.32.
    var calibrating: (UInt32, UInt32)?
    /// Set to accumulate predictive entropy in `pass`.
    var measureEntropy = false
    /// Set by `predict`: where `pass` writes each row's arg-max class and Q16.16 probabilities.
    var predictOutput: (classes: UnsafeMutablePointer<Int32>?, probabilities: UnsafeMutablePointer<Int32>?)?
    var entropySum: Int64 = 0  // bp-checkpoint: where the last segment's inner activations start

    public var stageCount: Int { plan.stages.count }
    /// A monotonic clock for `phaseTimes` (the engine has none); nil: nothing is timed.
    public var clock: (() -> UInt64)?
    /// Time per phase of the training steps since the last `resetPhaseTimes` (needs `clock`).
    public internal(set) var phaseTimes = PhaseTimes()

    /// Plans the run and takes the arena (`budget` bytes, allocated once).
    public convenience init(model: Model, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                            options: TrainingOptions, budget: Int, calibration: Bool = false) throws(EngineError) {
        let plan = try MemoryPlan.fitting(shape: model.shape, batch: batch, mode: mode, optimizer: optimizer,
                                          calibration: calibration, threads: options.threads, budget: budget)
        let arena = try Arena(plan: plan, budget: budget)
        try self.init(model: model, plan: plan, arena: arena, options: options)
    }

    /// Plans the run inside caller-owned memory (a static buffer on a board).
    public convenience init(model: Model, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                            options: TrainingOptions, memory: UnsafeMutableRawBufferPointer) throws(EngineError) {
        let plan = try MemoryPlan.fitting(shape: model.shape, batch: batch, mode: mode, optimizer: optimizer,
                                          threads: options.threads, budget: memory.count)
        let arena = try Arena(plan: plan, memory: memory)
        try self.init(model: model, plan: plan, arena: arena, options: options)
    }

    init(model: Model, plan: MemoryPlan, arena: Arena, options: TrainingOptions) throws(EngineError) {
        if !(options.learningRate > 0 && options.learningRate < 1) {
            throw .invalidParameter(name: "learning rate", reason: "must satisfy 0 < lr < 1")
        }
        self.model = model
        self.plan = plan
        self.arena = arena
        self.options = options
        team = try WorkerTeam(threads: plan.threads)
        L = model.shape.layerCount
        n = model.shape.widths
        net = model.shape
        let flat = TensorShape(channels: n[L], height: 1, width: 1)
        headLayer = Layer(kind: .dense, input: flat, pre: flat, output: flat, pool: .none, relu: false)
        batch = plan.batch
        seg = MemoryPlan.checkpointSegment(L)
        let empty = Tensor(base: model.image, count: 0)
        params = [Tensor](repeating: empty, count: L + 2)
        velocity = [Tensor](repeating: empty, count: L + 2)
        provenance = [Tensor](repeating: empty, count: L + 2)
        acts = [Tensor](repeating: empty, count: L + 2)
        idx = [UnsafeMutablePointer<Int32>?](repeating: nil, count: L + 2)
        stageBuffers = MemoryPlan.StageBuffers(model.shape, plan.stages[0])
        headInput = empty
        forwardScratch = MemoryPlan.forwardScratchWordsPerLayer(model.shape, batch, packed: plan.packedForward) + [0]
        input = arena.take(.input, batch * n[0])
        labels = arena.take(.input, batch).base
    }

    // MARK: stages

    /// Makes stage `i` current: copies its trained layers into the arena,
    /// initialises its auxiliary head, zeroes optimizer state; frozen layers
    /// are read from the model image in place.
    public func beginStage(_ i: Int) {
        if currentStage >= 0 { endStage() }
        stage = plan.stages[i]
        stageBuffers = MemoryPlan.StageBuffers(net, stage)
        let headIn = TensorShape(channels: MemoryPlan.auxHeadInput(net, lastTrained: stage.lastTrained).channels,
                                 height: 1, width: 1)
        let classes = TensorShape(channels: n[L], height: 1, width: 1)
        headLayer = Layer(kind: .dense, input: headIn, pre: classes, output: classes, pool: .none, relu: false)
        forwardScratch[L + 1] = stage.hasAuxHead ? headLayer.forwardScratchWords(batch: batch, packed: plan.packedForward) : 0
        currentStage = i
        stageMarks = (arena.mark(.weightsTrainable), arena.mark(.optimizer))
        arena.resetStagePeak()
        for l in 1...L { params[l] = model.layer(l) }
        for l in stage.trained {
            let t = arena.take(.weightsTrainable, model.shape.parameterCount(l))
            t.copy(from: model.layer(l))
            params[l] = t
        }
        if stage.hasAuxHead {
            let nIn = headLayer.input.count, nOut = n[L]
            let t = arena.take(.weightsTrainable, nIn * nOut + nOut)
            t.fill(0)
            Model.heUniform(t.slice(0, nIn * nOut), fanIn: nIn, seed: options.seed ^ 0xA0C5_4EAD,
                            counter: UInt64(i) << 32)
            params[L + 1] = t
        }
        let words = plan.optimizer.stateWordsPerParameter
        if words > 0 {
            for l in trainedLayersWithHead() {
                let v = arena.take(.optimizer, words * params[l].count)
                v.fill(0)
                velocity[l] = v
            }
        }
        if plan.calibration {
            for l in trainedLayersWithHead() {
                let w0 = arena.take(.optimizer, params[l].count)
                w0.copy(from: params[l])
                provenance[l] = w0
            }
        }
        arena.noteReadOnly(4 * (stage.frozenCount > 0 ? model.shape.parameterCount(layers: 1...stage.frozenCount) : 0))
    }

    /// Writes the current stage's trained layers back to the model image and
    /// gives their arena memory back (the auxiliary head is discarded).
    public func endStage() {
        guard currentStage >= 0 else { return }
        syncModel()
        arena.release(.optimizer, to: stageMarks.optimizer)
        arena.release(.weightsTrainable, to: stageMarks.weights)
        currentStage = -1
    }

    /// Copies the trained layers' current values into the model image.
    public func syncModel() {
        guard currentStage >= 0 else { return }
        for l in stage.trained { model.layer(l).copy(from: params[l]) }
    }

    /// Indices of the stage's trained layers, then L+1 if it has a head.
    func trainedLayersWithHead() -> [Int] {
        var out = Array(stage.trained)
        if stage.hasAuxHead { out.append(L + 1) }
        return out
    }

    // MARK: checkpoints

    /// The complete state of this run after `epochsDone` epochs of the current stage.
    public func checkpoint(epochsDone: Int) -> Checkpoint {
        syncModel()
        return Checkpoint(network: net.spec, mode: plan.mode, optimizer: plan.optimizer, batch: batch,
                          learningRate: options.learningRate, seed: options.seed, stepCount: UInt64(stepCount),
                          randomCounter: randomCounter, stage: currentStage, epochsDone: epochsDone,
                          scaling: model.scaling, model: model.words(),
                          trainable: arena.words(.weightsTrainable), optimizerState: arena.words(.optimizer))
    }

    /// Restores a checkpoint of the same configuration: begins its stage and
    /// overwrites the model image, trainable weights, optimizer state and counters.
    public func restore(_ c: Checkpoint) throws(CheckpointError) {
        if let d = c.network.firstDifference(from: net.spec, mine: "the checkpoint", theirs: "this run") {
            throw .mismatch("the checkpoint's network differs from this run's: \(d)")
        }
        if c.mode != plan.mode || c.optimizer != plan.optimizer || c.batch != batch
            || c.learningRate != options.learningRate || c.seed != options.seed {
            throw .mismatch("checkpoint configuration differs from this run's")
        }
        if c.stage < 0 || c.stage >= stageCount { throw .absurd("stage \(c.stage) of \(stageCount)") }
        if c.model.count != model.parameterCount { throw .absurd("model size") }
        endStage()
        if !model.load(c.model) { throw .mismatch("the checkpoint's frozen layers differ from the weights read in place") }
        model.scaling = c.scaling
        beginStage(c.stage)
        if !arena.load(.weightsTrainable, c.trainable) { throw .absurd("\(c.trainable.count) trainable words for this stage") }
        if !arena.load(.optimizer, c.optimizerState) { throw .absurd("\(c.optimizerState.count) optimizer words for this stage") }
        stepCount = Int(c.stepCount)
        randomCounter = c.randomCounter
    }

    // MARK: data

    /// Checks that `data` fits the network: feature count and labels. O(1) when
    /// the data set's classes fit the network (its labels were checked against
    /// them when it was built), else the first label out of range is named.
    public func validate(_ data: Dataset) throws(EngineError) {
        if data.featureCount != n[0] { throw .featureMismatch(expected: n[0], got: data.featureCount) }
        if data.count == 0 { throw .emptyData }
        if data.classes <= n[L] { return }
        for i in 0..<data.count where Int(data.label(i)) >= n[L] {
            throw .labelOutOfRange(sample: i, label: Int(data.label(i)), classes: n[L])
        }
    }

    /// Throws unless a stage has begun (`beginStage`).
    func requireStage(_ call: String) throws(EngineError) {
        if currentStage < 0 { throw .invalidParameter(name: call, reason: "no stage begun: call beginStage first") }
    }

    /// Throws unless `start` is a sample index of `data`.
    func requireStart(_ start: Int, _ data: Dataset) throws(EngineError) {
        if start < 0 || start >= data.count {
            throw .invalidParameter(name: "start", reason: "\(start) is outside 0..<\(data.count)")
        }
    }

    /// Copies samples order[start..<start+rows] of `data` into the arena's input.
    func load(_ data: Dataset, rows: Int, index: (Int) -> Int) {
        let w = n[0]
        for r in 0..<rows {
            let s = index(r)
            (input.base + r * w).update(from: data.features + s * w, count: w)
            labels[r] = data.labels[s]
        }
    }

    // MARK: training

    /// One epoch of the current stage over `data` in a seeded order
    /// (the last batch may be smaller). Throws for data that does not fit.
    public func trainEpoch(_ data: Dataset, epoch: Int) throws(EngineError) -> PassStats {
        try validate(data)
        try requireStage("trainEpoch")
        var stats = PassStats()
        var start = 0
        while start < data.count {
            stats.add(trainBatchChecked(data, epoch: epoch, start: start))
            start += batch
        }
        return stats
    }

    /// Forward and loss only, over `data` in order, with the current stage's
    /// output (the auxiliary head for a non-final blockwise stage).
    public func evaluate(_ data: Dataset) throws(EngineError) -> PassStats {
        try validate(data)
        try requireStage("evaluate")
        var stats = PassStats()
        var start = 0
        while start < data.count {
            let rows = min(batch, data.count - start)
            let s0 = start
            load(data, rows: rows) { r in s0 + r }
            stats.add(pass(rows: rows, train: false))
            start += rows
        }
        return stats
    }

    /// Trains one batch: samples start..<start+batch of epoch `epoch`'s seeded order
    /// (fewer at the end). Throws for data that does not fit, a `start` outside
    /// the data, or no stage begun.
    public func trainBatch(_ data: Dataset, epoch: Int, start: Int) throws(EngineError) -> PassStats {
        try validate(data)
        try requireStage("trainBatch")
        try requireStart(start, data)
        return trainBatchChecked(data, epoch: epoch, start: start)
    }

    /// `trainBatch` after its checks.
    func trainBatchChecked(_ data: Dataset, epoch: Int, start: Int) -> PassStats {
        let rows = min(batch, data.count - start)
        let seed = options.seed
        load(data, rows: rows) { r in Shuffle.index(start + r, data.count, seed: seed, epoch: epoch) }
        return step(rows: rows)
    }

    /// Mean predictive entropy of the current stage's output over `data`,
    /// divided by ln(classes): U in [0, 1] as Q16.16 (forward passes only).
    public func normalizedEntropy(_ data: Dataset) throws(EngineError) -> Int32 {
        try validate(data)
        measureEntropy = true
        entropySum = 0
        defer { measureEntropy = false }
        _ = try evaluate(data)
        if n[L] < 2 { return 0 }
        let lnC = Int64(Kernels.logOfInteger(n[L]))
        let mean = Rounding.divNearest(entropySum, Int64(data.count))
        return Int32(clamping: min(Rounding.divNearest(mean << 16, lnC), 1 << 16))
    }

    /// One Information Value Calibration step on samples start..<start+batch of
    /// `data` (in order): a backprop pass of the current stage, then per layer
    /// W <- W - SR(gradRate/rows * sum_b grad L_BP) - SR(pullRate (W - W_provenance)).
    /// `gradRate` = alpha U_E beta, `pullRate` = alpha U_E gamma. Requires a
    /// plan made with `calibration: true`. Returns the batch's loss before the
    /// update (L_BP of the validation pass).
    @discardableResult
    public func calibrate(_ data: Dataset, start: Int, gradRate: Double, pullRate: Double) throws(EngineError) -> PassStats {
        if !plan.calibration {
            throw .invalidParameter(name: "calibrate", reason: "the plan has no provenance snapshot (calibration: false)")
        }
        if !(gradRate >= 0 && gradRate < 1) || !(pullRate >= 0 && pullRate < 1) {
            throw .invalidParameter(name: "calibrate", reason: "rates must satisfy 0 <= rate < 1")
        }
        try validate(data)
        try requireStage("calibrate")
        try requireStart(start, data)
        let rows = min(batch, data.count - start)
        load(data, rows: rows) { r in start + r }
        calibrating = (Trainer.rateQ32(gradRate / Double(rows)), Trainer.rateQ32(pullRate))
        defer { calibrating = nil }
        return pass(rows: rows, train: true)
    }

    /// L_Delta = 1/2 ||W - W_provenance||^2 over the stage's trained layers (and
    /// head), in real units; 0 without a provenance snapshot (calibration: false).
    /// Sums exact int64 squares of the Q16.16 differences per layer.
    public func provenanceDistance() -> Double {
        if !plan.calibration || currentStage < 0 { return 0 }
        var total = 0.0
        func add(_ l: Int) {
            let w = params[l], w0 = provenance[l]
            for i in 0..<w.count {
                let d = Int64(w[i]) - Int64(w0[i])  // |d| < 2^32
                total += Double(d) * Double(d)
            }
        }
        for l in stage.trained { add(l) }  // no array: called between steps
        if stage.hasAuxHead { add(L + 1) }
        return total / 2 / 4_294_967_296.0  // (Q16.16)^2 -> real
    }

    /// One training step on the `rows` samples already in the arena's input.
    func step(rows: Int) -> PassStats {
        stepCount += 1
        let t0 = tick()
        let stats = pass(rows: rows, train: true)
        phaseTimes.total &+= tick() &- t0
        return stats
    }

    /// Copies one batch into the arena input and trains on it: `features` holds
    /// rows x n_0 Q16.16 words (row-major), `labels` rows class indices. Throws
    /// (and changes nothing) for rows outside 1...batch, counts that disagree,
    /// a label outside 0..<classes, or no stage begun.
    ///
    /// ```swift
    /// let stats = try f.withUnsafeBufferPointer { fp in
    ///     try l.withUnsafeBufferPointer { lp in try t.step(features: fp, labels: lp) }
    /// }
    /// ```
    public func step(features: UnsafeBufferPointer<Int32>, labels l: UnsafeBufferPointer<Int32>) throws(EngineError) -> PassStats {
        try requireStage("step")
        let rows = l.count
        if rows < 1 || rows > batch {
            throw .invalidParameter(name: "step", reason: "\(rows) labels: a batch holds 1...\(batch) samples")
        }
        if features.count != rows * n[0] { throw .featureMismatch(expected: n[0], got: features.count / rows) }
        for r in 0..<rows where l[r] < 0 || Int(l[r]) >= n[L] {
            throw .labelOutOfRange(sample: r, label: Int(l[r]), classes: n[L])
        }
        guard let fb = features.baseAddress, let lb = l.baseAddress else { throw .emptyData }
        input.base.update(from: fb, count: rows * n[0])
        labels.update(from: lb, count: rows)
        return step(rows: rows)
    }

    /// The shared forward (+ backward if `train`) of one batch.
    func pass(rows: Int, train: Bool) -> PassStats {
        let storedMark = arena.mark(.activationsStored)
        let workMark = arena.mark(.activationsWorking)
        let F = stage.frozenCount, T = stage.lastTrained
        let head = stage.hasAuxHead
        let phase = train ? 0 : 2
        acts[0] = input

        // 1. Frozen layers 1...F: ping-pong (and one pre-pool buffer), store nothing;
        //    s_F goes to the stored input of layer F+1.
        let sizes = stageBuffers
        if F >= 1 {
            let pp0 = arena.take(.activationsWorking, batch * sizes.pingPong)
            let pp1 = arena.take(.activationsWorking, batch * sizes.pingPong)
            let zt = arena.take(.activationsWorking, batch * sizes.frozenPool)
            var x = input
            for l in 1...F {
                let out = l == F ? arena.take(.activationsStored, batch * n[l]) : (l % 2 == 1 ? pp0 : pp1)
                forwardLayer(l, x, out, rows: rows, phase: phase, z: zt, idx: nil)
                x = out
            }
            acts[F] = x
            arena.release(.activationsWorking, to: workMark)
        }

        // 2. Delta buffers (the logits land in d0; d1 is the pre-pool buffer of the
        //    trained forward) and the per-sample loss row.
        var d0 = arena.take(.activationsWorking, batch * sizes.delta)
        var d1 = sizes.deltaCount == 2 ? arena.take(.activationsWorking, batch * sizes.delta) : d0
        let lossRow = arena.take(.activationsWorking, batch)

        // 3. Trained layers F+1...T, storing what backward needs.
        if stage.checkpointed {
            forwardCheckpointed(rows: rows, logits: d0, zt: d1, phase: phase)
        } else {
            for l in (F + 1)...T {
                let out = (l == L) ? d0 : arena.take(.activationsStored, batch * n[l])
                idx[l] = l < T || head ? takeIndices(l) : nil
                forwardLayer(l, acts[l - 1], out, rows: rows, phase: phase, z: d1, idx: idx[l])
                acts[l] = out
            }
            if head {
                headInput = acts[T]
                let o = net.layer(T).output
                if !o.isFlat {
                    headInput = arena.take(.activationsStored, batch * o.channels)
                    Kernels.check(q16_global_avgpool_forward(headInput.base, acts[T].base, Int32(rows),
                                                             Int32(o.channels), Int32(o.height), Int32(o.width)),
                                  "global_avgpool_forward")
                }
                forwardLayer(L + 1, headInput, d0, rows: rows, phase: phase, z: d1, idx: nil)
            }
        }

        // 4. Loss and its gradient (softmax - onehot), in place in d0.
        let t0 = tick()
        var stats = PassStats()
        stats.samples = rows
        stats.correct = countCorrect(d0, rows: rows)
        if let out = predictOutput { writeClasses(d0, rows: rows, out.classes) }
        Kernels.softmaxCrossEntropy(d0, loss: lossRow, labels: labels, rows: rows, classes: n[L], sat: &saturations)
        phaseTimes.loss &+= tick() &- t0
        if let out = predictOutput { writeProbabilities(d0, rows: rows, out.probabilities) }
        for r in 0..<rows { stats.lossSum += Int64(lossRow[r]) }
        if measureEntropy { entropySum += entropy(d0, rows: rows) }

        // 5. Backward: the forward list reversed.
        if train {
            let lr = Trainer.rateQ32(options.learningRate / Double(rows))
            if head {
                backwardLayer(L + 1, input: headInput, delta: d0, below: d1, rows: rows, lr: lr, propagate: true)
                let o = net.layer(T).output
                if o.isFlat {
                    (d0, d1) = intoLayer(T, d1, spare: d0, rows: rows)
                } else {
                    Kernels.check(q16_global_avgpool_backward(d0.base, d1.base, Int32(rows), Int32(o.channels),
                                                              Int32(o.height), Int32(o.width)),
                                  "global_avgpool_backward")
                    (d0, d1) = intoLayer(T, d0, spare: d1, rows: rows)
                }
            }
            if stage.checkpointed {
                backwardCheckpointed(rows: rows, d0: &d0, d1: &d1, lr: lr)
            } else {
                for l in stride(from: T, through: F + 1, by: -1) {
                    backwardLayer(l, input: acts[l - 1], delta: d0, below: d1, rows: rows, lr: lr,
                                  propagate: l > F + 1)
                    if l > F + 1 { (d0, d1) = intoLayer(l - 1, d1, spare: d0, rows: rows) }
                }
            }
        }
        arena.release(.activationsWorking, to: workMark)
        arena.release(.activationsStored, to: storedMark)
        return stats
    }

    /// Room in the stored activations for layer l's argmax indices (nil when it has none).
    func takeIndices(_ l: Int) -> UnsafeMutablePointer<Int32>? {
        let w = net.layer(l).indexWords
        return w > 0 ? arena.take(.activationsStored, batch * w).base : nil
    }

    /// dL/ds_l in `g` to dL/dz_l (layer l's ReLU and pool backward); returns
    /// (the view holding it, the free one) among `g` and `spare`.
    func intoLayer(_ l: Int, _ g: Tensor, spare: Tensor, rows: Int) -> (Tensor, Tensor) {
        let layer = net.layer(l)
        let t0 = tick()
        _ = layer.outputBackward(g, act: acts[l], idx: idx[l], dz: spare, rows: rows)
        phaseTimes.backwardData &+= tick() &- t0
        return layer.hasPool ? (spare, g) : (g, spare)
    }

    /// bp-checkpoint forward: segment boundaries a_s, a_2s, ... are stored (with
    /// their argmax indices); each segment's inner activations go to one
    /// recompute buffer, which the last segment keeps for the backward pass.
    func forwardCheckpointed(rows: Int, logits: Tensor, zt: Tensor, phase: Int) {
        var j = seg
        while j <= L - 1 {
            acts[j] = arena.take(.activationsStored, batch * n[j])
            idx[j] = takeIndices(j)
            j += seg
        }
        var lo = 1
        while lo <= L {
            let hi = min(lo + seg - 1, L)
            let innerMark = arena.mark(.activationsStored)
            for l in lo...hi {
                if l == hi {
                    let out = l == L ? logits : acts[l]
                    forwardLayer(l, acts[l - 1], out, rows: rows, phase: phase, z: zt, idx: l == L ? nil : idx[l])
                    if l == L { acts[l] = out }
                } else {
                    acts[l] = arena.take(.activationsStored, batch * n[l])
                    idx[l] = takeIndices(l)
                    forwardLayer(l, acts[l - 1], acts[l], rows: rows, phase: phase, z: zt, idx: idx[l])
                }
            }
            if hi < L { arena.release(.activationsStored, to: innerMark) } else { lastInnerMark = innerMark }
            lo = hi + 1
        }
    }

    func backwardCheckpointed(rows: Int, d0: inout Tensor, d1: inout Tensor, lr: UInt32) {
        let segments = (L + seg - 1) / seg
        for sIdx in stride(from: segments - 1, through: 0, by: -1) {
            let lo = sIdx * seg + 1, hi = min(lo + seg - 1, L)
            let isLast = hi == L
            var innerMark = lastInnerMark
            if !isLast {
                innerMark = arena.mark(.activationsStored)
                if hi > lo {
                    for l in lo..<hi {
                        acts[l] = arena.take(.activationsStored, batch * n[l])
                        idx[l] = takeIndices(l)
                        forwardLayer(l, acts[l - 1], acts[l], rows: rows, phase: 1, z: d1, idx: idx[l])
                    }
                }
            }
            for l in stride(from: hi, through: lo, by: -1) {
                backwardLayer(l, input: acts[l - 1], delta: d0, below: d1, rows: rows, lr: lr, propagate: l > 1)
                if l > 1 { (d0, d1) = intoLayer(l - 1, d1, spare: d0, rows: rows) }
            }
            arena.release(.activationsStored, to: innerMark)
        }
    }

    /// Layer l (1...L), or L+1: the current stage's auxiliary head.
    func layerAt(_ l: Int) -> Layer { l == L + 1 ? headLayer : net.layer(l) }

    /// s_l = layer l applied to `x`; `z` is the pre-pool buffer (used only when the
    /// layer pools). phase 0 = forward, 1 = recompute, 2 = evaluation (MAC counters).
    func forwardLayer(_ l: Int, _ x: Tensor, _ out: Tensor, rows: Int, phase: Int, z: Tensor,
                      idx: UnsafeMutablePointer<Int32>?) {
        let layer = layerAt(l)
        let mark = arena.mark(.scratch)
        let scratch = arena.take(.scratch, forwardScratch[l] * team.count)
        let t0 = tick()
        layer.forward(out: out, z: z, x: x, params: params[l], scratch: scratch, idx: idx, rows: rows, team: team,
                      sat: &saturations)
        phaseTimes.forward &+= tick() &- t0
        arena.release(.scratch, to: mark)
        let m = UInt64(rows * layer.macsPerSample)
        switch phase {
        case 0: macs.forward += m
        case 1: macs.recompute += m
        default: macs.evaluation += m
        }
    }

    /// dL/ds_{l-1} = transposed layer l applied to delta_l into `below` (if
    /// `propagate`), then W_l, b_l updated from delta_l and the input `a`.
    func backwardLayer(_ l: Int, input a: Tensor, delta: Tensor, below: Tensor, rows: Int,
                       lr: UInt32, propagate: Bool) {
        let layer = layerAt(l)
        let p = params[l]
        let m = UInt64(rows * layer.macsPerSample)
        if propagate {
            let mark = arena.mark(.scratch)
            let scratch = arena.take(.scratch, layer.backwardDataScratchWords * team.count)
            let t0 = tick()
            layer.backwardData(dx: below, dy: delta, params: p, scratch: scratch, rows: rows, team: team,
                               sat: &saturations)
            phaseTimes.backwardData &+= tick() &- t0
            arena.release(.scratch, to: mark)
            macs.backward += m
        }
        let tu = tick()
        defer { phaseTimes.update &+= tick() &- tu }
        if let (gradRate, pullRate) = calibrating {
            // IVC: W <- W - SR(c_g * sum_b grad) - SR(c_p (W - W_prov)), both from the
            // pre-update W (the pull runs first; the gradient does not depend on W).
            Kernels.pull(p, toward: provenance[l], rate: pullRate, seed: options.seed ^ 0x1FC,
                         counter: randomCounter, sat: &saturations)
            fusedSGD(layer, p, delta: delta, input: a, lr: gradRate, rows: rows)
            macs.update += m
            return
        }
        switch plan.optimizer {
        case .sgd:
            fusedSGD(layer, p, delta: delta, input: a, lr: lr, rows: rows)
        case .momentum(let mu):
            let gmark = arena.mark(.gradients)
            let g = arena.take(.gradients, p.count)
            let mark = arena.mark(.scratch)
            let scratch = arena.takeScratch64(layer.updateScratchBytes(fused: false) / 8 * team.count)
            layer.gradient(g, scratch: scratch, dy: delta, x: a, rows: rows, sat: &saturations)
            arena.release(.scratch, to: mark)
            Kernels.momentumUpdate(p, velocity[l], g, mu: Trainer.rateQ32(mu), lr: lr,
                                   seed: options.seed, counter: randomCounter, sat: &saturations)
            arena.release(.gradients, to: gmark)
            randomCounter &+= UInt64(2 * p.count)
        case .riemannian(let alpha, let rho, let phi):
            let mark = arena.mark(.scratch)
            let scratch = arena.takeScratch64(layer.updateScratchBytes(fused: true) / 8 * team.count)
            layer.riemannian(p, phi: phi == .gradSquared ? velocity[l] : nil, scratch: scratch, dy: delta, x: a,
                             lr: lr, gscale: Trainer.rateQ32(1 / Double(rows)), alpha: Trainer.q16(alpha),
                             rho: Trainer.rateQ32(rho), weightMagnitude: phi == .weightMagnitude, rows: rows,
                             seed: options.seed, counter: randomCounter, team: team, sat: &saturations)
            arena.release(.scratch, to: mark)
            randomCounter &+= UInt64(p.count)
        }
        macs.update += m
    }

    /// W -= SR(lr sum_b grad), b likewise: the fused SGD step, its exact int64
    /// gradient sums in scratch.
    func fusedSGD(_ layer: Layer, _ p: Tensor, delta: Tensor, input a: Tensor, lr: UInt32, rows: Int) {
        let mark = arena.mark(.scratch)
        let scratch = arena.takeScratch64(layer.updateScratchBytes(fused: true) / 8 * team.count)
        layer.fusedSGD(p, scratch: scratch, dy: delta, x: a, lr: lr, rows: rows, seed: options.seed,
                       counter: randomCounter, team: team, sat: &saturations)
        arena.release(.scratch, to: mark)
        randomCounter &+= UInt64(p.count)
    }

    /// Sum over rows of the predictive entropy -sum_j p_j ln p_j (Q16.16), from
    /// the loss gradient p - onehot left in `grad` by the cross-entropy kernel.
    func entropy(_ grad: Tensor, rows: Int) -> Int64 {
        let c = n[L]
        var total: Int64 = 0
        for r in 0..<rows {
            for j in 0..<c {
                var p = grad[r * c + j]
                if Int32(j) == labels[r] { p &+= 1 << 16 }
                if p > 0 { total -= Int64(Kernels.mul(p, Kernels.log(p))) }
            }
        }
        return total
    }

    func countCorrect(_ logits: Tensor, rows: Int) -> Int {
        let c = n[L]
        var correct = 0
        for r in 0..<rows {
            var best = 0
            for j in 1..<c where logits[r * c + j] > logits[r * c + best] { best = j }
            if Int32(best) == labels[r] { correct += 1 }
        }
        return correct
    }

    /// A Double as Q16.16, rounded to nearest, saturating.
    static func q16(_ v: Double) -> Int32 {
        let r = (v * 65536).rounded(.toNearestOrAwayFromZero)
        if !(r < 2_147_483_647) { return Int32.max }
        if !(r > -2_147_483_648) { return Int32.min }
        return Int32(r)
    }

    /// A rate in [0, 1) as an unsigned Q0.32 scale (truncated).
    static func rateQ32(_ r: Double) -> UInt32 {
        if !(r > 0) { return 0 }
        if r >= 1 { return UInt32.max }
        return UInt32(r * 4_294_967_296.0)
    }
}
