/// One phase of the pipeline: its planned and measured bytes and its MACs.
public struct PhaseRecord: Equatable {
    public var name: String
    public var planned: ByteCounts
    public var measured: ByteCounts
    public var macs: MACCounts
    public var steps = 0
    /// The bytes of another phase's arena resident throughout this one (defect
    /// learning and IVC on G_Ideal run interleaved, each in its own arena): part of
    /// the pipeline's peak, not of this phase's planned/measured.
    public var alsoResident = ByteCounts()
}

/// One IVC step's measurements (printed per step; `--trace FILE` writes them).
public struct IVCRecord: Equatable {
    /// The defect-learning step after which IVC ran.
    public var step: Int
    /// U_E: G_Ideal's mean normalised predictive entropy on E, in [0, 1].
    public var uncertainty: Double
    /// L_BP: mean cross-entropy of the dedicated BP validation batch (held-out D_Ideal), before the update.
    public var lossBP: Double
    /// L_Delta = 1/2 ||W - W_provenance||^2 over the calibrated layers, before the update.
    public var lossDelta: Double
}

/// What `PDMMPipeline.epochObserver` is told after a training epoch.
public struct PDMMEpoch: Equatable {
    /// 1: ideal learning (`stage` of `stages`), 3: defect learning with IVC.
    public var phase: Int
    public var stage: Int
    public var stages: Int
    /// 0-based epoch within the stage or phase.
    public var epoch: Int
    /// Samples passed through training in this epoch (IVC's validation batches included).
    public var samples: Int
}

/// The PDMM method end to end, every phase inside an arena:
/// 0. D_Ideal selection (`IdealSelection`): verified flags, confident learning
///    (k-fold out-of-fold probabilities of the own label from small bp runs) or a
///    random stratified fraction; a seeded `holdoutFraction` of D_Ideal is held out
///    from G_Ideal's training.
/// 1. Ideal Value Criterion learning: G_Ideal from D_Ideal with blockwise(k) (or bp).
/// 2. Error Group separation: d_i = cross-entropy of the true class under G_Ideal
///    for every sample of D_new; E = {d_i > I_threshold}, each with (true, predicted);
///    by default I_threshold is measured: the 0.95-quantile of G_Ideal's deviations on
///    the held-out D_Ideal.
/// 3. Local defect learning: a copy of G_Ideal whose top k layers (the last one is
///    the Error-Aware head, a second output layer) train on E; the L-k layers below
///    are frozen (shared with G_Ideal, read-only) and store nothing.
/// 4. Information Value Calibration every `ivcPeriod` steps (Theorem 1): U_E = G_Ideal's
///    mean predictive entropy over E / ln C; a dedicated BP pass on a held-out D_Ideal
///    batch gives grad L_BP; G_Ideal's top k layers W <- W - alpha U_E (beta grad L_BP
///    + gamma (W - W_provenance)), W_provenance = those layers at the end of phase 1
///    (read-only in the IVC arena). `IVCTarget.errorAwareCopy` calibrates the copy instead.
/// 5. Dual-System Decision: A_final = (1 - lambda) softmax(stable) + lambda softmax(error-aware),
///    lambda = lambdaMax (1 - PII), PII = the stable head's top probability x (1 - the total
///    variation distance between the two systems' distributions) (`DualSystem`).
///
/// The host times each public phase method; the engine records bytes and MACs.
public final class PDMMPipeline {
    public let config: PDMMConfig
    public let shape: NetworkShape
    public let train: Dataset
    /// How D_Ideal was (or will be) chosen.
    public let selection: IdealSelection
    /// D_Ideal: G_Ideal trains on `idealTrain`, `idealHoldout` is held out.
    public private(set) var ideal: Dataset
    public private(set) var idealTrain: Dataset
    public private(set) var idealHoldout: Dataset
    /// D_new = D minus D_Ideal.
    public private(set) var rest: Dataset
    /// Indices into `train` of D_Ideal's and D_new's samples (in their order).
    public private(set) var idealIndices: [Int] = []
    public private(set) var restIndices: [Int] = []
    public let stable: Model
    public let errorAware: Model
    public private(set) var errorGroup: Dataset
    /// Indices into `rest` of the Error Group's members.
    public private(set) var errorIndices: [Int] = []
    /// (true class, predicted class) of each Error Group member, in E's order.
    public private(set) var errorPairs: [(Int, Int)] = []
    /// The deviation threshold used (Q16.16 nats).
    public private(set) var thresholdQ16: Int32 = 0
    public private(set) var phases: [PhaseRecord] = []
    public private(set) var saturations: UInt64 = 0
    public private(set) var lastUncertainty: Int32 = 0
    public private(set) var ivcCount = 0
    /// One record per IVC step.
    public private(set) var ivcTrace: [IVCRecord] = []
    /// Out-of-fold probability of each training sample's own label (Q16.16), when
    /// D_Ideal was chosen by confident learning.
    public private(set) var outOfFoldConfidence: [Int32] = []
    var selected = false
    /// Called after every epoch of phases 1 and 3 with `stable` and `errorAware`
    /// holding the current weights (for accuracy curves); reading the models
    /// changes nothing. Not called when nil.
    public var epochObserver: ((PDMMEpoch) -> Void)? = nil

    /// Chooses the selection (verified when the data or `verified` has flags and
    /// no other selection is asked for, else confident); verified and random
    /// selections are made here, confident selection by `selectIdeal()`.
    public init(shape: NetworkShape, config: PDMMConfig, train: Dataset, verified explicit: [Bool]? = nil) throws(EngineError) {
        let verified = explicit ?? train.verified
        try config.validate(layers: shape.layerCount)
        if train.featureCount != shape.inputWidth {
            throw .featureMismatch(expected: shape.inputWidth, got: train.featureCount)
        }
        if let verified, verified.count != train.count {
            throw .invalidParameter(name: "verified", reason: "needs one flag per sample")
        }
        let sel = config.idealSelection ?? (verified != nil ? .verified : .confident)
        if sel == .verified && verified == nil {
            throw .invalidParameter(name: "ideal selection", reason: "verified needs a verified column in the data")
        }
        self.config = config
        self.shape = shape
        self.train = train
        self.selection = sel
        let empty = train.subset([])
        ideal = empty
        idealTrain = empty
        idealHoldout = empty
        rest = empty
        errorGroup = empty
        stable = Model(shape: shape, seed: config.seed)
        errorAware = Model(shape: shape, seed: config.seed)
        switch sel {
        case .verified:
            var idealIdx: [Int] = [], restIdx: [Int] = []
            for i in 0..<train.count { if verified![i] { idealIdx.append(i) } else { restIdx.append(i) } }
            try setIdeal(idealIdx, restIdx)
        case .random:
            let (idealIdx, restIdx) = PDMMPipeline.stratified(train, fraction: config.idealFraction, seed: config.seed)
            try setIdeal(idealIdx, restIdx)
        case .confident:
            break
        }
    }

    /// Fixes D_Ideal and D_new and holds out a seeded stratified part of D_Ideal.
    func setIdeal(_ idealIdx: [Int], _ restIdx: [Int]) throws(EngineError) {
        if idealIdx.isEmpty || restIdx.isEmpty {
            throw .invalidParameter(name: "D_Ideal", reason: "the selection leaves D_Ideal or D_new empty")
        }
        // Every subset keeps the training split's (already shuffled) order, never the
        // class-by-class order of the selection: IVC's validation batches are taken in
        // order and must mix the classes (a one-class batch would pull G_Ideal to that class).
        idealIndices = idealIdx.sorted()
        restIndices = restIdx.sorted()
        ideal = train.subset(idealIndices)
        rest = train.subset(restIndices)
        errorGroup = rest.subset([])
        let (held, kept) = PDMMPipeline.stratified(ideal, fraction: config.holdoutFraction, seed: config.seed ^ 0x401D)
        if kept.isEmpty { throw .invalidParameter(name: "holdoutFraction", reason: "leaves nothing of D_Ideal to train on") }
        idealTrain = ideal.subset(kept.sorted())
        idealHoldout = ideal.subset(held.sorted())
        selected = true
    }

    /// Phase 0 (confident selection only; nothing to do otherwise): `selectionFolds`
    /// bp runs, each on all folds but one, give every training sample the
    /// probability of its own label from a model that never saw it; per class the
    /// `idealFraction` most confident samples form D_Ideal (ties: lower index first).
    public func selectIdeal() throws(EngineError) {
        if selected { return }
        let folds = config.selectionFolds
        var fold = [Int](repeating: 0, count: train.count)
        // Seeded stratified fold assignment: each class dealt round-robin after a shuffle.
        for c in 0..<train.classes {
            var members: [Int] = []
            for i in 0..<train.count where Int(train.label(i)) == c { members.append(i) }
            PDMMPipeline.shuffle(&members, seed: config.seed ^ 0xF01D, stream: UInt64(c))
            for (j, i) in members.enumerated() { fold[i] = j % folds }
        }
        var confidence = [Int32](repeating: 0, count: train.count)
        var record = PhaseRecord(name: "ideal selection (confident, \(folds)-fold bp)", planned: ByteCounts(),
                                 measured: ByteCounts(), macs: MACCounts())
        for f in 0..<folds {
            var inIdx: [Int] = [], outIdx: [Int] = []
            for i in 0..<train.count { if fold[i] == f { outIdx.append(i) } else { inIdx.append(i) } }
            if inIdx.isEmpty || outIdx.isEmpty { continue }
            let model = Model(shape: shape, seed: config.seed &+ UInt64(f) &+ 1)
            let t = try Trainer(model: model, batch: config.batch, mode: .bp, optimizer: config.optimizer,
                                options: TrainingOptions(learningRate: config.learningRate, seed: config.seed &+ UInt64(f),
                                                         threads: config.threads),
                                budget: try MemoryPlan(shape: shape, batch: config.batch, mode: .bp,
                                                       optimizer: config.optimizer, threads: config.threads).peakWritable)
            let fit = train.subset(inIdx), held = train.subset(outIdx)
            t.beginStage(0)
            for e in 0..<config.selectionEpochs { _ = try t.trainEpoch(fit, epoch: e) }
            t.endStage()
            let p = try Predictor(shape: shape, batch: config.batch, dual: false, perSampleCount: held.count, budget: Int.max)
            let table = try p.deviations(model, held)
            for (j, i) in outIdx.enumerated() { confidence[i] = Kernels.exp(-table.deviation(j)) }
            record.planned = record.planned.maximum(t.plan.bytes).maximum(p.planned)
            record.measured = record.measured.maximum(t.arena.peak).maximum(p.arena.peak)
            record.macs = PDMMPipeline.add(record.macs, t.macs, minus: MACCounts())
            record.macs.evaluation += p.macs
            record.steps += t.stepCount
            saturations += t.saturations + p.saturations
        }
        outOfFoldConfidence = confidence
        var idealIdx: [Int] = [], restIdx: [Int] = []
        for c in 0..<train.classes {
            var members: [Int] = []
            for i in 0..<train.count where Int(train.label(i)) == c { members.append(i) }
            if members.isEmpty { continue }
            members.sort { confidence[$0] != confidence[$1] ? confidence[$0] > confidence[$1] : $0 < $1 }
            let take = min(PDMMPipeline.ceilFraction(members.count, config.idealFraction), members.count)
            idealIdx.append(contentsOf: members[0..<take])
            restIdx.append(contentsOf: members[take...])
        }
        idealIdx.sort()
        restIdx.sort()
        phases.append(record)
        try setIdeal(idealIdx, restIdx)
    }

    /// ceil(count x fraction).
    static func ceilFraction(_ count: Int, _ fraction: Double) -> Int {
        var take = Int(Double(count) * fraction)
        if Double(take) < Double(count) * fraction { take += 1 }
        return take
    }

    /// A seeded Fisher-Yates shuffle (counter-based bits: the same everywhere).
    static func shuffle(_ a: inout [Int], seed: UInt64, stream: UInt64) {
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let r = Int(UInt64(Kernels.randomBits(seed, stream << 32 | UInt64(i))) % UInt64(i + 1))
            a.swapAt(i, r)
        }
    }

    /// Per class, a seeded shuffle of its samples; the first ceil(fraction x count) go to the first list.
    static func stratified(_ d: Dataset, fraction: Double, seed: UInt64) -> ([Int], [Int]) {
        var ideal: [Int] = [], rest: [Int] = []
        for c in 0..<d.classes {
            var members: [Int] = []
            for i in 0..<d.count where Int(d.label(i)) == c { members.append(i) }
            if members.isEmpty { continue }
            PDMMPipeline.shuffle(&members, seed: seed ^ 0x1DEA1, stream: UInt64(c))
            let take = min(ceilFraction(members.count, fraction), members.count)
            ideal.append(contentsOf: members[0..<take])
            rest.append(contentsOf: members[take...])
        }
        return (ideal, rest)
    }

    var idealMode: TrainingMode { config.idealBackprop ? .bp : .blockwise(k: config.k) }

    /// Phase 1: trains G_Ideal on D_Ideal minus its held-out part (selecting D_Ideal first if needed).
    public func learnIdeal() throws(EngineError) {
        try selectIdeal()
        let plan = try MemoryPlan(shape: shape, batch: config.batch, mode: idealMode, optimizer: config.optimizer,
                                  threads: config.threads)
        let t = try Trainer(model: stable, batch: config.batch, mode: idealMode, optimizer: config.optimizer,
                            options: TrainingOptions(learningRate: config.learningRate, seed: config.seed,
                                                     threads: config.threads),
                            budget: plan.peakWritable)
        for s in 0..<t.stageCount {
            t.beginStage(s)
            for e in 0..<config.idealEpochs {
                _ = try t.trainEpoch(idealTrain, epoch: e)
                if let observe = epochObserver {
                    t.syncModel()
                    observe(PDMMEpoch(phase: 1, stage: s, stages: t.stageCount, epoch: e, samples: idealTrain.count))
                }
            }
        }
        t.endStage()
        saturations += t.saturations
        phases.append(PhaseRecord(name: "ideal learning (\(idealMode.name))", planned: plan.bytes,
                                  measured: t.arena.peak, macs: t.macs, steps: t.stepCount))
        errorAware.copyParameters(from: stable)
    }

    /// Phase 2: the Error Group. Forward passes of G_Ideal over D_new (and, for the
    /// measured threshold, over the held-out D_Ideal first).
    public func separate() throws(EngineError) {
        let p = try Predictor(shape: shape, batch: config.batch, dual: false,
                              perSampleCount: max(rest.count, idealHoldout.count), budget: Int.max)
        switch config.threshold {
        case .value(let v):
            thresholdQ16 = Trainer.q16(v)
        case .fraction(let f):
            // the (f |D|)-th largest deviation of D_new (|D| = all training samples)
            let table = try p.deviations(stable, rest)
            let want = min(max(Int((f * Double(train.count)).rounded()), 1), rest.count)
            thresholdQ16 = PDMMPipeline.kthLargest(table, want)
            thresholdQ16 = thresholdQ16 > 0 ? thresholdQ16 - 1 : 0  // d_i > threshold keeps the k-th
        case .idealQuantile(let q):
            let table = try p.deviations(stable, idealHoldout)
            thresholdQ16 = PDMMPipeline.quantile(table, q)
        }
        let table = try p.deviations(stable, rest)
        var idx: [Int] = []
        errorPairs = []
        for i in 0..<rest.count where table.deviation(i) > thresholdQ16 {
            idx.append(i)
            errorPairs.append((Int(rest.label(i)), Int(table.predicted(i))))
        }
        errorIndices = idx
        errorGroup = rest.subset(idx)
        saturations += p.saturations
        var m = MACCounts()
        m.forward = p.macs
        phases.append(PhaseRecord(name: "error group separation", planned: p.planned, measured: p.arena.peak,
                                  macs: m, steps: 0))
    }

    /// The q-quantile of `t` by nearest rank: the ceil(q n)-th smallest value.
    static func quantile(_ t: DeviationTable, _ q: Double) -> Int32 {
        Selection.quantile(count: t.count, q) { t.deviation($0) }
    }

    /// The k-th largest value (1-based) of `t`.
    static func kthLargest(_ t: DeviationTable, _ k: Int) -> Int32 {
        Selection.kthLargest(count: t.count, k) { t.deviation($0) }
    }

    /// Phases 3 and 4: local defect learning on E with IVC every `ivcPeriod` steps
    /// (nothing when E is empty).
    /// With IVC on G_Ideal two arenas are resident together (the defect run's and
    /// the calibration's: G_Ideal's top k layers and W_provenance); each phase's
    /// record counts both.
    public func learnDefects() throws(EngineError) {
        // An empty Error Group is a finding (no sample of D_new deviates more than the
        // threshold): nothing to learn, the error-aware model stays G_Ideal's copy.
        if errorGroup.count == 0 { return }
        let mode = TrainingMode.local(k: config.k)
        let calibrate = config.ivcPeriod > 0
        let onCopy = calibrate && config.ivcTarget == .errorAwareCopy
        let plan = try MemoryPlan(shape: shape, batch: config.batch, mode: mode, optimizer: config.optimizer,
                                  calibration: onCopy, threads: config.threads)
        let t = try Trainer(model: errorAware, batch: config.batch, mode: mode, optimizer: config.optimizer,
                            options: TrainingOptions(learningRate: config.learningRate, seed: config.seed ^ 0xDEF,
                                                     threads: config.threads),
                            budget: plan.peakWritable, calibration: onCopy)
        t.beginStage(0)
        // The calibration run on G_Ideal (Theorem 1): its own arena, SGD-shaped (IVC is fused).
        var c: Trainer? = nil
        if calibrate && !onCopy {
            let cp = try MemoryPlan(shape: shape, batch: config.batch, mode: mode, optimizer: .sgd, calibration: true,
                                    threads: config.threads)
            let ct = try Trainer(model: stable, batch: config.batch, mode: mode, optimizer: .sgd,
                                 options: TrainingOptions(learningRate: config.learningRate, seed: config.seed ^ 0x1FC,
                                                          threads: config.threads),
                                 budget: cp.peakWritable, calibration: true)
            ct.beginStage(0)
            c = ct
        }
        let ivcRun = c ?? t
        let resident = c.map { $0.plan.bytes } ?? ByteCounts()
        var defect = PhaseRecord(name: "local defect learning (local(\(config.k)))", planned: plan.bytes,
                                 measured: ByteCounts(), macs: MACCounts())
        defect.alsoResident = resident
        var ivc = PhaseRecord(name: onCopy ? "information value calibration (error-aware copy)"
                                           : "information value calibration (G_Ideal)",
                              planned: ivcRun.plan.bytes, measured: ByteCounts(), macs: MACCounts())
        if onCopy {
            // Planned per phase: a defect step uses the optimizer's own buffers; an IVC
            // step is fused (scratch, no gradient buffer) and keeps W_provenance.
            defect.planned.scratch = try MemoryPlan(shape: shape, batch: config.batch, mode: mode,
                                                    optimizer: config.optimizer, threads: config.threads).bytes.scratch
            ivc.planned.gradients = 0
        } else {
            ivc.alsoResident = plan.bytes
        }
        var step = 0
        var validationStart = 0
        for e in 0..<config.defectEpochs {
            var start = 0
            var samples = 0
            while start < errorGroup.count {
                let before = t.macs
                t.arena.resetStagePeak()
                samples += try t.trainBatch(errorGroup, epoch: e, start: start).samples
                defect.measured = defect.measured.maximum(t.arena.stagePeak)
                defect.macs = PDMMPipeline.add(defect.macs, t.macs, minus: before)
                defect.steps += 1
                start += config.batch
                step += 1
                if calibrate && step % config.ivcPeriod == 0 {
                    let b2 = ivcRun.macs
                    ivcRun.arena.resetStagePeak()
                    let u = try ivcRun.normalizedEntropy(errorGroup)
                    lastUncertainty = u
                    let uE = Double(u) / 65536
                    let lossDelta = ivcRun.provenanceDistance()
                    let validation = onCopy ? ideal : idealHoldout
                    let bp = try ivcRun.calibrate(validation, start: validationStart, gradRate: config.alpha * uE * config.beta,
                                                  pullRate: config.alpha * uE * config.gamma)
                    samples += bp.samples
                    ivcTrace.append(IVCRecord(step: step, uncertainty: uE,
                                              lossBP: Double(bp.lossSum) / 65536 / Double(max(bp.samples, 1)),
                                              lossDelta: lossDelta))
                    validationStart += config.batch
                    if validationStart >= validation.count { validationStart = 0 }
                    ivc.measured = ivc.measured.maximum(ivcRun.arena.stagePeak)
                    var m = PDMMPipeline.add(ivc.macs, ivcRun.macs, minus: b2)
                    m.evaluation = ivc.macs.evaluation + (ivcRun.macs.evaluation - b2.evaluation)
                    ivc.macs = m
                    ivc.steps += 1
                    ivcCount += 1
                }
            }
            if let observe = epochObserver {
                t.syncModel()
                c?.syncModel()
                observe(PDMMEpoch(phase: 3, stage: 0, stages: 1, epoch: e, samples: samples))
            }
        }
        t.endStage()
        c?.endStage()  // G_Ideal's calibrated top k layers back into its model image
        saturations += t.saturations + (c?.saturations ?? 0)
        phases.append(defect)
        if calibrate { phases.append(ivc) }
    }

    static func add(_ acc: MACCounts, _ now: MACCounts, minus before: MACCounts) -> MACCounts {
        var r = acc
        r.forward += now.forward - before.forward
        r.backward += now.backward - before.backward
        r.recompute += now.recompute - before.recompute
        r.update += now.update - before.update
        r.evaluation += now.evaluation - before.evaluation
        return r
    }

    /// Phase 5 on `data`: correct counts of the stable head, the error-aware model and A_final.
    public func decide(_ data: Dataset) throws(EngineError) -> DualDecision {
        // Read-only: G_Ideal entirely plus the error-aware copy's top k layers (its
        // frozen layers are G_Ideal's own).
        let frozen = 4 * (shape.totalParameterCount
            + shape.parameterCount(layers: (shape.layerCount - config.k + 1)...shape.layerCount))
        let p = try Predictor(shape: shape, batch: config.batch, dual: true, perSampleCount: data.count,
                              frozenBytes: frozen, budget: Int.max)
        let r = try p.dualDecision(stable: stable, errorAware: errorAware, lambdaMax: config.lambdaMax, data)
        saturations += p.saturations
        var m = MACCounts()
        m.evaluation = p.macs
        if !phases.contains(where: { $0.name == "dual-system decision" }) {
            phases.append(PhaseRecord(name: "dual-system decision", planned: p.planned, measured: p.arena.peak,
                                      macs: m, steps: 0))
        }
        return r
    }

    /// The pipeline's peak: the maximum over phases of peak writable bytes.
    public var peakWritable: (planned: Int, measured: Int) {
        var p = 0, m = 0
        for ph in phases {
            p = max(p, ph.planned.writable + ph.alsoResident.writable)
            m = max(m, ph.measured.writable + ph.alsoResident.writable)
        }
        return (p, m)
    }
}

extension IVCRecord {
    /// `--trace`'s CSV: "step,U_E,L_BP,L_Delta" and one row per IVC step, each
    /// number printed by `format` (both programs: printf's "%.6f").
    public static func traceCSV(_ records: [IVCRecord], format: (Double) -> String) -> String {
        var s = "step,U_E,L_BP,L_Delta\n"
        for r in records {
            s += "\(r.step),\(format(r.uncertainty)),\(format(r.lossBP)),\(format(r.lossDelta))\n"
        }
        return s
    }
}
