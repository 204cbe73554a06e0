/// How the Error Group threshold I_threshold is chosen.
public enum ErrorThreshold: Equatable {
    /// d_i > value (a cross-entropy, in nats).
    case value(Double)
    /// The threshold that puts this fraction of all training samples D into E
    /// (the document reports 5-12 %): the (fraction x |D|)-th largest deviation.
    case fraction(Double)
}

/// The PDMM method's settings (names as in the research document; see the README).
public struct PDMMConfig: Equatable {
    /// k: Ideal learning uses blockwise(k); defect learning trains the top k layers.
    public var k = 2
    /// Fraction of each class taken (seeded) into D_Ideal when the data has no "verified" flag.
    public var idealFraction = 0.20
    /// Train G_Ideal with full backprop instead of blockwise(k).
    public var idealBackprop = false
    public var idealEpochs = 30
    public var defectEpochs = 30
    public var threshold = ErrorThreshold.fraction(0.08)
    /// IVC runs every `ivcPeriod` defect-learning steps (0 = never).
    public var ivcPeriod = 10
    public var alpha = 0.5
    public var beta = 1.0
    public var gamma = 0.1
    /// 0 <= lambdaMax < 1.
    public var lambdaMax = 0.5
    public var batch = 32
    public var learningRate = 0.05
    public var optimizer = OptimizerKind.sgd
    public var seed: UInt64 = 1
    public init() {}

    public func validate(layers L: Int) throws(EngineError) {
        if k < 1 || k > L { throw .invalidK(k: k, layers: L) }
        if !(idealFraction > 0 && idealFraction < 1) {
            throw .invalidParameter(name: "idealFraction", reason: "must satisfy 0 < idealFraction < 1")
        }
        _ = try DualSystem.validate(lambdaMax: lambdaMax)
        switch threshold {
        case .value(let v):
            if !(v >= 0 && v < 32768) { throw .invalidParameter(name: "threshold", reason: "must be in [0, 32768)") }
        case .fraction(let f):
            if !(f > 0 && f < 1) { throw .invalidParameter(name: "error fraction", reason: "must satisfy 0 < f < 1") }
        }
        if ivcPeriod < 0 { throw .invalidParameter(name: "ivcPeriod", reason: "must be >= 0") }
        if !(alpha >= 0 && beta >= 0 && gamma >= 0) {
            throw .invalidParameter(name: "alpha, beta, gamma", reason: "must be >= 0")
        }
        if alpha * beta >= 1 || alpha * gamma >= 1 {
            throw .invalidParameter(name: "alpha*beta, alpha*gamma", reason: "must be < 1 (IVC rates are Q0.32)")
        }
    }
}

/// One phase of the pipeline: its planned and measured bytes and its MACs.
public struct PhaseRecord: Equatable {
    public var name: String
    public var planned: ByteCounts
    public var measured: ByteCounts
    public var macs: MACCounts
    public var steps = 0
}

/// The PDMM method end to end, every phase inside an arena:
/// 1. Ideal Value Criterion learning: G_Ideal from D_Ideal with blockwise(k) (or bp).
/// 2. Error Group separation: d_i = cross-entropy of the true class under G_Ideal
///    for every sample of D_new; E = {d_i > I_threshold}, each with (true, predicted).
/// 3. Local defect learning: a copy of G_Ideal whose top k layers (the last one is
///    the Error-Aware head, a second output layer) train on E; the L-k layers below
///    are frozen (shared with G_Ideal, read-only) and store nothing.
/// 4. Information Value Calibration every `ivcPeriod` steps: U_E = mean predictive
///    entropy over E / ln C; one backprop pass on a validation batch (from D_Ideal)
///    gives grad L_BP; W <- W - alpha U_E (beta grad L_BP + gamma (W - W_provenance)),
///    W_provenance = the top k layers at the end of Ideal learning.
/// 5. Dual-System Decision: A_final = (1 - lambda) softmax(stable) + lambda softmax(error-aware),
///    lambda = lambdaMax (1 - PII), PII = the stable head's top probability.
///
/// The host times each public phase method; the engine records bytes and MACs.
public final class PDMMPipeline {
    public let config: PDMMConfig
    public let shape: NetworkShape
    public let train: Dataset
    public private(set) var ideal: Dataset
    public private(set) var rest: Dataset
    public let stable: Model
    public let errorAware: Model
    public private(set) var errorGroup: Dataset
    /// (true class, predicted class) of each Error Group member, in E's order.
    public private(set) var errorPairs: [(Int, Int)] = []
    /// The deviation threshold used (Q16.16 nats).
    public private(set) var thresholdQ16: Int32 = 0
    public private(set) var phases: [PhaseRecord] = []
    public private(set) var saturations: UInt64 = 0
    public private(set) var lastUncertainty: Int32 = 0
    public private(set) var ivcCount = 0

    /// Splits `train` into D_Ideal (the samples flagged in `verified`, or else in
    /// `train.verified`, if the data has such a column; otherwise a seeded,
    /// class-stratified fraction) and D_new.
    public init(shape: NetworkShape, config: PDMMConfig, train: Dataset, verified explicit: [Bool]? = nil) throws(EngineError) {
        let verified = explicit ?? train.verified
        try config.validate(layers: shape.layerCount)
        if train.featureCount != shape.inputWidth {
            throw .featureMismatch(expected: shape.inputWidth, got: train.featureCount)
        }
        self.config = config
        self.shape = shape
        self.train = train
        var idealIdx: [Int] = []
        var restIdx: [Int] = []
        if let verified {
            if verified.count != train.count {
                throw .invalidParameter(name: "verified", reason: "needs one flag per sample")
            }
            for i in 0..<train.count { if verified[i] { idealIdx.append(i) } else { restIdx.append(i) } }
        } else {
            (idealIdx, restIdx) = PDMMPipeline.stratified(train, fraction: config.idealFraction, seed: config.seed)
        }
        if idealIdx.isEmpty || restIdx.isEmpty {
            throw .invalidParameter(name: "idealFraction", reason: "leaves D_Ideal or D_new empty")
        }
        ideal = train.subset(idealIdx)
        rest = train.subset(restIdx)
        errorGroup = rest.subset([])
        stable = Model(shape: shape, seed: config.seed)
        errorAware = Model(shape: shape, seed: config.seed)
    }

    /// Per class, a seeded shuffle of its samples; the first ceil(fraction x count) go to D_Ideal.
    static func stratified(_ d: Dataset, fraction: Double, seed: UInt64) -> ([Int], [Int]) {
        var ideal: [Int] = [], rest: [Int] = []
        for c in 0..<d.classes {
            var members: [Int] = []
            for i in 0..<d.count where Int(d.label(i)) == c { members.append(i) }
            if members.isEmpty { continue }
            for i in stride(from: members.count - 1, to: 0, by: -1) {
                let r = Int(UInt64(Kernels.randomBits(seed ^ 0x1DEA1, UInt64(c) << 32 | UInt64(i))) % UInt64(i + 1))
                members.swapAt(i, r)
            }
            var take = Int(Double(members.count) * fraction)
            if Double(take) < Double(members.count) * fraction { take += 1 }
            take = min(take, members.count)
            ideal.append(contentsOf: members[0..<take])
            rest.append(contentsOf: members[take...])
        }
        return (ideal, rest)
    }

    var idealMode: TrainingMode { config.idealBackprop ? .bp : .blockwise(k: config.k) }

    /// Phase 1: trains G_Ideal on D_Ideal.
    public func learnIdeal() throws(EngineError) {
        let plan = try MemoryPlan(shape: shape, batch: config.batch, mode: idealMode, optimizer: config.optimizer)
        let t = try Trainer(model: stable, batch: config.batch, mode: idealMode, optimizer: config.optimizer,
                            options: TrainingOptions(learningRate: config.learningRate, seed: config.seed),
                            budget: plan.peakWritable)
        for s in 0..<t.stageCount {
            t.beginStage(s)
            for e in 0..<config.idealEpochs { _ = try t.trainEpoch(ideal, epoch: e) }
        }
        t.endStage()
        saturations += t.saturations
        phases.append(PhaseRecord(name: "ideal learning (\(idealMode.name))", planned: plan.bytes,
                                  measured: t.arena.peak, macs: t.macs, steps: t.stepCount))
        errorAware.copyParameters(from: stable)
    }

    /// Phase 2: the Error Group. Forward passes of G_Ideal over D_new only.
    public func separate() throws(EngineError) {
        let p = try Predictor(shape: shape, batch: config.batch, dual: false, perSampleCount: rest.count,
                              budget: Int.max)
        let table = try p.deviations(stable, rest)
        switch config.threshold {
        case .value(let v):
            thresholdQ16 = Trainer.q16(v)
        case .fraction(let f):
            // the (f |D|)-th largest deviation of D_new (|D| = all training samples)
            let want = min(max(Int((f * Double(train.count)).rounded()), 1), rest.count)
            thresholdQ16 = PDMMPipeline.kthLargest(table, want)
            thresholdQ16 = thresholdQ16 > 0 ? thresholdQ16 - 1 : 0  // d_i > threshold keeps the k-th
        }
        var idx: [Int] = []
        errorPairs = []
        for i in 0..<rest.count where table.deviation(i) > thresholdQ16 {
            idx.append(i)
            errorPairs.append((Int(rest.label(i)), Int(table.predicted(i))))
        }
        errorGroup = rest.subset(idx)
        saturations += p.saturations
        var m = MACCounts()
        m.forward = p.macs
        phases.append(PhaseRecord(name: "error group separation", planned: p.planned, measured: p.arena.peak,
                                  macs: m, steps: 0))
    }

    /// The k-th largest value (1-based) of `t`, by counting on a copy-free binary search.
    static func kthLargest(_ t: DeviationTable, _ k: Int) -> Int32 {
        var lo = Int64(Int32.min), hi = Int64(Int32.max)  // invariant: count(>= lo) >= k
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2
            var c = 0
            for i in 0..<t.count where Int64(t.deviation(i)) >= mid { c += 1 }
            if c >= k { lo = mid } else { hi = mid - 1 }
        }
        return Int32(lo)
    }

    /// Phases 3 and 4: local defect learning on E with IVC every `ivcPeriod` steps.
    public func learnDefects() throws(EngineError) {
        if errorGroup.count == 0 {
            throw .invalidParameter(name: "Error Group", reason: "is empty: lower the threshold")
        }
        let mode = TrainingMode.local(k: config.k)
        let calibrate = config.ivcPeriod > 0
        let plan = try MemoryPlan(shape: shape, batch: config.batch, mode: mode, optimizer: config.optimizer,
                                  calibration: calibrate)
        let t = try Trainer(model: errorAware, batch: config.batch, mode: mode, optimizer: config.optimizer,
                            options: TrainingOptions(learningRate: config.learningRate, seed: config.seed ^ 0xDEF),
                            budget: plan.peakWritable, calibration: calibrate)
        t.beginStage(0)
        var defect = PhaseRecord(name: "local defect learning (local(\(config.k)))", planned: plan.bytes,
                                 measured: ByteCounts(), macs: MACCounts())
        var ivc = PhaseRecord(name: "information value calibration", planned: plan.bytes,
                              measured: ByteCounts(), macs: MACCounts())
        // Planned per phase: a defect step uses the optimizer's own buffers; an IVC
        // step is fused (scratch, no gradient buffer) and keeps W_provenance.
        defect.planned.scratch = try MemoryPlan(shape: shape, batch: config.batch, mode: mode,
                                                optimizer: config.optimizer).bytes.scratch
        ivc.planned.gradients = 0
        var step = 0
        var validationStart = 0
        for e in 0..<config.defectEpochs {
            var start = 0
            while start < errorGroup.count {
                let before = t.macs
                t.arena.resetStagePeak()
                _ = try t.trainBatch(errorGroup, epoch: e, start: start)
                defect.measured = defect.measured.maximum(t.arena.stagePeak)
                defect.macs = PDMMPipeline.add(defect.macs, t.macs, minus: before)
                defect.steps += 1
                start += config.batch
                step += 1
                if calibrate && step % config.ivcPeriod == 0 {
                    let b2 = t.macs
                    t.arena.resetStagePeak()
                    let u = try t.normalizedEntropy(errorGroup)
                    lastUncertainty = u
                    let uE = Double(u) / 65536
                    try t.calibrate(ideal, start: validationStart,
                                gradRate: config.alpha * uE * config.beta, pullRate: config.alpha * uE * config.gamma)
                    validationStart += config.batch
                    if validationStart >= ideal.count { validationStart = 0 }
                    ivc.measured = ivc.measured.maximum(t.arena.stagePeak)
                    var m = PDMMPipeline.add(ivc.macs, t.macs, minus: b2)
                    m.evaluation = ivc.macs.evaluation + (t.macs.evaluation - b2.evaluation)
                    ivc.macs = m
                    ivc.steps += 1
                    ivcCount += 1
                }
            }
        }
        t.endStage()
        saturations += t.saturations
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
    public func decide(_ data: Dataset) throws(EngineError) -> (stable: Int, errorAware: Int, final: Int) {
        // Read-only: G_Ideal entirely plus the error-aware copy's top k layers (its
        // frozen layers are G_Ideal's own).
        let frozen = 4 * (shape.totalParameterCount
            + shape.parameterCount(layers: (shape.layerCount - config.k + 1)...shape.layerCount))
        let p = try Predictor(shape: shape, batch: config.batch, dual: true, perSampleCount: 0,
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
            p = max(p, ph.planned.writable)
            m = max(m, ph.measured.writable)
        }
        return (p, m)
    }
}
