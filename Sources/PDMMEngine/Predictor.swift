/// Forward-only inference in its own arena: every layer frozen (read in place
/// from the model image), two ping-pong buffers, nothing stored.
///
/// Plan (bytes): input 4 B (n_0 + 1); activations.working 4 B (2 max(n_1..n_L)
/// + Z + D n_L + 1), where Z = the largest pre-pool tensor max |z_l| of a pooling
/// layer (0 without pooling), D = 1 when a second model's probabilities are combined
/// (the dual-system decision keeps the stable head's probabilities) else 0, and
/// the + 1 is the per-sample loss row; scratch 8 x `perSampleCount` (the Error
/// Group separation keeps each sample's deviation and prediction: 8 bytes per
/// sample) + 4 G (the largest forward scratch of one layer: the dense forward's
/// packed block `q16_gemm_nt_buffer_size(B, n_l, n_{l-1})`, a convolution's
/// `q16_conv_forward_buffer_size`); weights.frozen = the models'
/// parameter bytes (read-only).
///
/// ```swift
/// let p = try Predictor(shape: model.shape, batch: 32, dual: false, perSampleCount: 0, budget: 1 << 20)
/// let stats = try p.evaluate(model, test)
/// ```
public final class Predictor {
    public let shape: NetworkShape
    public let batch: Int
    public let planned: ByteCounts
    public let arena: Arena
    public private(set) var macs: UInt64 = 0
    public private(set) var saturations: UInt64 = 0
    let input: Tensor
    let labels: UnsafeMutablePointer<Int32>
    let L: Int
    /// Scratch words of each layer's dense forward (index 1...L), computed once.
    let forwardScratch: [Int]
    /// The predictor runs on the calling thread alone (a team of one: no thread is started).
    let team: WorkerTeam
    let perSampleCount: Int
    /// Bumped by every `deviations` call: older tables then refuse to be read.
    var generation = 0

    /// `dual`: room for combining two models; `perSampleCount`: samples whose
    /// (deviation, prediction) pairs `deviations` will keep in scratch.
    public init(shape: NetworkShape, batch: Int, dual: Bool, perSampleCount: Int,
                frozenBytes: Int? = nil, budget: Int) throws(EngineError) {
        if batch < 1 { throw .batchZero(value: batch) }
        let n = shape.widths
        let L = shape.layerCount
        var b = ByteCounts()
        b.input = 4 * batch * (n[0] + 1)
        b.activationsWorking = 4 * batch * (Predictor.pingPongWords(shape) + (dual ? n[L] : 0) + 1)
        if perSampleCount < 0 || perSampleCount > NetworkShape.maxWords {
            throw .invalidParameter(name: "perSampleCount", reason: "must lie in 0...\(NetworkShape.maxWords)")
        }
        try MemoryPlan.checkBatchSize(shape, batch)
        b.scratch = 8 * perSampleCount + 4 * MemoryPlan.forwardScratchWords(shape, batch, lastLayer: L, head: false)
        b.weightsFrozen = frozenBytes ?? 4 * shape.totalParameterCount
        self.shape = shape
        self.batch = batch
        self.planned = b
        self.L = L
        self.forwardScratch = MemoryPlan.forwardScratchWordsPerLayer(shape, batch, packed: true)
        team = try WorkerTeam(threads: 1)
        self.perSampleCount = perSampleCount
        if b.writable > budget { throw .budgetExceeded(planned: b, budget: budget) }
        arena = Arena(plannedBytes: b, budget: budget)
        input = arena.take(.input, batch * n[0])
        labels = arena.take(.input, batch).base
        arena.noteReadOnly(b.weightsFrozen)
    }

    /// Words per sample of the forward's buffers: the ping-pong pair and the pre-pool buffer.
    static func pingPongWords(_ s: NetworkShape) -> Int {
        2 * s.maxWidth(1..<(s.layerCount + 1)) + s.maxOver(1..<(s.layerCount + 1)) { $0.poolTemporaryWords }
    }

    /// The forward's buffers (ping-pong pair, pre-pool buffer) from the working activations.
    func takeForwardBuffers() -> (Tensor, Tensor, Tensor) {
        let maxw = shape.maxWidth(1..<(L + 1))
        return (arena.take(.activationsWorking, batch * maxw), arena.take(.activationsWorking, batch * maxw),
                arena.take(.activationsWorking, batch * shape.maxOver(1..<(L + 1)) { $0.poolTemporaryWords }))
    }

    /// Forward of `model` on the loaded rows; returns the logits view (a ping-pong buffer).
    func forward(_ model: Model, rows: Int, _ buffers: (Tensor, Tensor, Tensor)) -> Tensor {
        var x = input
        for l in 1...L {
            let out = l % 2 == 1 ? buffers.0 : buffers.1
            let layer = shape.layer(l)
            let mark = arena.mark(.scratch)
            let scratch = arena.take(.scratch, forwardScratch[l])
            layer.forward(out: out, z: buffers.2, x: x, params: model.layer(l), scratch: scratch, idx: nil,
                          rows: rows, team: team, sat: &saturations)
            arena.release(.scratch, to: mark)
            macs += UInt64(rows * layer.macsPerSample)
            x = out
        }
        return x
    }

    func load(_ data: Dataset, start: Int, rows: Int) {
        let w = shape.inputWidth
        (input.base).update(from: data.features + start * w, count: rows * w)
        labels.update(from: data.labels + start, count: rows)
    }

    func check(_ model: Model, _ data: Dataset) throws(EngineError) {
        if model.shape != shape {
            throw .invalidParameter(name: "model", reason: "shape \(model.shape.description) differs from \(shape.description)")
        }
        if data.featureCount != shape.inputWidth {
            throw .featureMismatch(expected: shape.inputWidth, got: data.featureCount)
        }
        for i in 0..<data.count where Int(data.label(i)) >= shape.classCount {
            throw .labelOutOfRange(sample: i, label: Int(data.label(i)), classes: shape.classCount)
        }
    }

    /// Accuracy and loss of `model` over `data`.
    public func evaluate(_ model: Model, _ data: Dataset) throws(EngineError) -> PassStats {
        try check(model, data)
        var stats = PassStats()
        try forEachBatch(model, data) { logits, lossRow, start, rows in
            stats.samples += rows
            for r in 0..<rows {
                stats.lossSum += Int64(lossRow[r])
                if Int32(argmaxOfGradient(logits, r)) == labels[r] { stats.correct += 1 }
            }
        }
        return stats
    }

    /// Runs `model` over `data` in batches; `body` gets the loss gradient
    /// (p - onehot), the per-sample losses, the first sample and the row count.
    func forEachBatch(_ model: Model, _ data: Dataset,
                      _ body: (Tensor, Tensor, Int, Int) -> Void) throws(EngineError) {
        let n = shape.widths
        let mark = arena.mark(.activationsWorking)
        let buffers = takeForwardBuffers()
        let lossRow = arena.take(.activationsWorking, batch)
        var start = 0
        while start < data.count {
            let rows = min(batch, data.count - start)
            load(data, start: start, rows: rows)
            let logits = forward(model, rows: rows, buffers)
            Kernels.softmaxCrossEntropy(logits, loss: lossRow, labels: labels, rows: rows, classes: n[L],
                                        sat: &saturations)
            body(logits, lossRow, start, rows)
            start += rows
        }
        arena.release(.activationsWorking, to: mark)
    }

    /// arg max_j of p = grad + onehot for row r (ties: lowest index).
    func argmaxOfGradient(_ g: Tensor, _ r: Int) -> Int {
        let c = shape.classCount
        var best = 0
        var bestP: Int32 = Int32.min
        for j in 0..<c {
            var p = g[r * c + j]
            if Int32(j) == labels[r] { p &+= 1 << 16 }
            if p > bestP { bestP = p; best = j }
        }
        return best
    }

    /// Each sample's deviation d_i (cross-entropy of the true class, Q16.16)
    /// and predicted class, kept in the arena's scratch (8 bytes per sample;
    /// `data.count` must not exceed the `perSampleCount` planned).
    ///
    /// The table reads that memory through this predictor (it keeps it alive)
    /// and is valid until the next `deviations` call; reading an older table
    /// traps instead of returning another call's values.
    ///
    /// ```swift
    /// let t = try p.deviations(model, data)
    /// for i in 0..<t.count where t.deviation(i) > threshold { ... }
    /// ```
    public func deviations(_ model: Model, _ data: Dataset) throws(EngineError) -> DeviationTable {
        try check(model, data)
        if data.count > perSampleCount {
            throw .invalidParameter(name: "deviations",
                                    reason: "\(data.count) samples but the predictor was planned for \(perSampleCount)")
        }
        generation &+= 1
        arena.release(.scratch, to: 0)
        let raw = arena.takeScratch64(data.count)
        let dev = Tensor(base: UnsafeMutableRawPointer(raw).assumingMemoryBound(to: Int32.self), count: data.count)
        let pred = Tensor(base: dev.base + data.count, count: data.count)
        try forEachBatch(model, data) { g, lossRow, start, rows in
            for r in 0..<rows {
                dev[start + r] = lossRow[r]
                pred[start + r] = Int32(argmaxOfGradient(g, r))
            }
        }
        return DeviationTable(owner: self, generation: generation, deviations: dev, predicted: pred)
    }

    /// The Dual-System Decision over `data`: A_final = (1 - lambda) p_stable +
    /// lambda p_error, lambda = lambdaMax (1 - PII), PII from both systems
    /// (`DualSystem.pii`). Returns the correct counts of the stable head, the
    /// error-aware model and A_final, the samples where A_final's class differs
    /// from the stable head's, and, when the predictor was planned with
    /// `perSampleCount` >= data.count, lambda's quartiles (kept per sample in scratch).
    /// lambdaMax must satisfy 0 <= lambdaMax < 1.
    public func dualDecision(stable: Model, errorAware: Model, lambdaMax: Double,
                             _ data: Dataset) throws(EngineError) -> DualDecision {
        let lm = try DualSystem.validate(lambdaMax: lambdaMax)
        try check(stable, data)
        try check(errorAware, data)
        if planned.activationsWorking < 4 * batch * (Predictor.pingPongWords(shape) + shape.classCount + 1) {
            throw .invalidParameter(name: "dualDecision", reason: "the predictor was planned with dual: false")
        }
        let c = shape.classCount
        let mark = arena.mark(.activationsWorking)
        let buffers = takeForwardBuffers()
        let keep = arena.take(.activationsWorking, batch * c)
        _ = arena.take(.activationsWorking, batch)  // loss row (unused here, planned for symmetry)
        var result = DualDecision()
        let keepLambda = data.count <= perSampleCount
        arena.release(.scratch, to: 0)
        generation &+= 1  // a deviation table's scratch is reused below
        // Per sample (as `deviations` keeps them): lambda, then A_final's class.
        let kept = keepLambda ? data.count : 0
        let raw = UnsafeMutableRawPointer(arena.takeScratch64(kept)).assumingMemoryBound(to: Int32.self)
        let lambdas = Tensor(base: raw, count: kept), finals = Tensor(base: raw + kept, count: kept)
        var start = 0
        while start < data.count {
            let rows = min(batch, data.count - start)
            load(data, start: start, rows: rows)
            let zs = forward(stable, rows: rows, buffers)
            Kernels.softmax(zs, rows: rows, cols: c, sat: &saturations)
            keep.base.update(from: zs.base, count: rows * c)
            let ze = forward(errorAware, rows: rows, buffers)
            Kernels.softmax(ze, rows: rows, cols: c, sat: &saturations)
            for r in 0..<rows {
                let ps = keep.slice(r * c, c), pe = ze.slice(r * c, c)
                let label = Int(labels[r])
                let lam = DualSystem.lambda(lambdaMaxQ16: lm, pii: DualSystem.pii(ps, pe))
                let s = DualSystem.argmax(ps), f = DualSystem.combinedArgmax(ps, pe, lambda: lam)
                if s == label { result.stable += 1 }
                if DualSystem.argmax(pe) == label { result.errorAware += 1 }
                if f == label { result.final += 1 }
                if f != s { result.differs += 1 }
                if keepLambda {
                    lambdas[start + r] = lam
                    finals[start + r] = Int32(f)
                }
            }
            start += rows
        }
        arena.release(.activationsWorking, to: mark)
        if keepLambda && data.count > 0 {
            func q(_ p: Double) -> Int32 { Selection.quantile(count: data.count, p) { lambdas[$0] } }
            result.lambda = LambdaQuartiles(min: q(0), lower: q(0.25), median: q(0.5), upper: q(0.75), max: q(1))
        }
        arena.release(.scratch, to: 0)
        return result
    }
}

/// What `Predictor.dualDecision` counted.
public struct DualDecision: Equatable {
    /// Correct predictions of the stable head (G_Ideal), the error-aware model and A_final.
    public var stable = 0
    public var errorAware = 0
    public var final = 0
    /// Samples where A_final's class differs from the stable head's.
    public var differs = 0
    /// lambda's distribution over the samples, or nil when not kept.
    public var lambda: LambdaQuartiles?
    public init() {}
}

/// The min, quartiles and max of lambda over a data set (Q16.16, nearest rank).
public struct LambdaQuartiles: Equatable {
    public var min: Int32
    public var lower: Int32
    public var median: Int32
    public var upper: Int32
    public var max: Int32
}

/// Order statistics by counting (a binary search over the value range): no copy, no sort.
enum Selection {
    /// The k-th largest (1-based) of `count` values read by `value`.
    static func kthLargest(count: Int, _ k: Int, _ value: (Int) -> Int32) -> Int32 {
        var lo = Int64(Int32.min), hi = Int64(Int32.max)  // invariant: count(>= lo) >= k
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2
            var c = 0
            for i in 0..<count where Int64(value(i)) >= mid { c += 1 }
            if c >= k { lo = mid } else { hi = mid - 1 }
        }
        return Int32(lo)
    }

    /// The q-quantile by nearest rank: the ceil(q n)-th smallest (the smallest for q = 0).
    static func quantile(count n: Int, _ q: Double, _ value: (Int) -> Int32) -> Int32 {
        var rank = Int(Double(n) * q)
        if Double(rank) < Double(n) * q { rank += 1 }
        rank = min(max(rank, 1), n)
        return kthLargest(count: n, n - rank + 1, value)
    }
}

/// Per-sample deviations and predictions of one `Predictor.deviations` call.
/// A bounds-checked read-only view that keeps its predictor (and so its arena)
/// alive; valid until that predictor's next `deviations` call.
public struct DeviationTable {
    let owner: Predictor
    let generation: Int
    let dev: Tensor
    let pred: Tensor

    init(owner: Predictor, generation: Int, deviations: Tensor, predicted: Tensor) {
        self.owner = owner
        self.generation = generation
        self.dev = deviations
        self.pred = predicted
    }

    /// The number of samples.
    public var count: Int { dev.count }

    /// d_i: the cross-entropy of sample i's true class, Q16.16 nats.
    public func deviation(_ i: Int) -> Int32 {
        checkIndex(i)
        return dev[i]
    }

    /// The class the model predicts for sample i.
    public func predicted(_ i: Int) -> Int32 {
        checkIndex(i)
        return pred[i]
    }

    func checkIndex(_ i: Int) {
        precondition(owner.generation == generation, "DeviationTable: read after the next deviations call")
        precondition(i >= 0 && i < dev.count, "DeviationTable: index out of range")
    }
}

/// The Dual-System Decision's arithmetic, in Q16.16.
public enum DualSystem {
    /// lambdaMax as Q16.16 after checking 0 <= lambdaMax < 1.
    public static func validate(lambdaMax: Double) throws(EngineError) -> Int32 {
        if !(lambdaMax >= 0 && lambdaMax < 1) {
            throw .invalidParameter(name: "lambdaMax", reason: "must satisfy 0 <= lambdaMax < 1")
        }
        return Int32((lambdaMax * 65536).rounded(.down))
    }

    /// The Probabilistic Information Index of one sample, from both systems: the
    /// stable head's top probability times one minus the total variation distance
    /// between the two distributions, PII = max_j ps[j] (1 - 1/2 sum_j |ps[j] - pe[j]|),
    /// in [0, 1] (Q16.16). High when the stable head is sure and the error-aware
    /// model agrees (much information, low threat); low when the stable head is
    /// unsure or the two systems disagree.
    public static func piiValue(stable ps: [Int32], errorAware pe: [Int32]) -> Int32 {
        precondition(ps.count == pe.count, "piiValue: the two distributions differ in length")
        return pii(count: ps.count) { (ps[$0], pe[$0]) }
    }

    static func pii(_ ps: Tensor, _ pe: Tensor) -> Int32 { pii(count: ps.count) { (ps[$0], pe[$0]) } }

    /// PII over `count` classes read as (ps[j], pe[j]) pairs.
    static func pii(count: Int, _ pair: (Int) -> (Int32, Int32)) -> Int32 {
        var top: Int32 = 0
        var l1: Int64 = 0
        for j in 0..<count {
            let (a, b) = pair(j)
            top = max(top, a)
            l1 += abs(Int64(a) - Int64(b))
        }
        let agree = max(0, (1 << 16) - min(Rounding.divNearest(l1, 2), 1 << 16))
        return Kernels.mul(min(max(top, 0), 1 << 16), Int32(agree))
    }

    /// lambda = lambdaMax (1 - PII), Q16.16. With lambdaMax < 1 and PII >= 0,
    /// lambda <= lambdaMax < 1 for every PII.
    public static func lambda(lambdaMaxQ16 lm: Int32, pii: Int32) -> Int32 {
        let p = min(max(pii, 0), 1 << 16)
        return Kernels.mul(lm, (1 << 16) - p)
    }

    static func argmax(_ p: Tensor) -> Int {
        var best = 0
        for j in 1..<max(p.count, 1) where p[j] > p[best] { best = j }
        return best
    }

    /// arg max of (1 - lambda) ps + lambda pe.
    static func combinedArgmax(_ ps: Tensor, _ pe: Tensor, lambda l: Int32) -> Int {
        let lam = Int64(l)
        var best = 0
        var bestV = Int64.min
        for j in 0..<ps.count {
            let v = ((1 << 16) - lam) * Int64(ps[j]) + lam * Int64(pe[j])  // exact Q32.32
            if v > bestV { bestV = v; best = j }
        }
        return best
    }
}
