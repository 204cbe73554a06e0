import Foundation
import PDMMEngine

/// What a run measured.
public struct RunResult {
    public var config: RunConfig
    public var plan: MemoryPlan
    public var measured: ByteCounts
    public var peakLive: Int
    public var macs: MACCounts
    public var trainAccuracy: Double
    public var testAccuracy: Double
    public var finalLoss: Double
    public var seconds: Double
    public var weightsHash: UInt64
    public var saturations: UInt64
    public var steps: Int
}

/// Per-epoch progress callback: (stage, epoch, train stats, test stats, elapsed s, the trainer).
public typealias Progress = (Int, Int, PassStats, PassStats, Double, Trainer) -> Void

/// Trains a fresh model (seeded) or `existing` on `train` in a heap arena of the
/// budget (default: the plan), evaluates on `test` (`Run.train`, the loop the board
/// program runs too); `progress` also gets the seconds since the start.
public func runTraining(_ cfg: RunConfig, train: Dataset, test: Dataset, scaling: FeatureScaling?,
                        model existing: Model? = nil, resume: Checkpoint? = nil,
                        policy: CheckpointPolicy = CheckpointPolicy(), io: RunIO? = nil,
                        progress: Progress? = nil) throws -> (RunResult, Model) {
    let shape = try cfg.network ?? NetworkShape(widths: cfg.widths)
    let model = existing ?? Model(shape: shape, seed: cfg.seed)
    model.scaling = scaling
    let plan = try MemoryPlan(shape: shape, batch: cfg.batch, mode: cfg.mode, optimizer: cfg.optimizer,
                              threads: cfg.threads)
    let t = try Trainer(model: model, batch: cfg.batch, mode: cfg.mode, optimizer: cfg.optimizer,
                        options: TrainingOptions(learningRate: cfg.learningRate, seed: cfg.seed, threads: cfg.threads),
                        budget: cfg.budget ?? plan.peakWritable)
    let start = Date()
    let o = try Run.train(t, epochs: cfg.epochs, train: train, test: test, resume: resume, policy: policy, io: io,
                          progress: progress.map { p in { s, e, tr, te, t in p(s, e, tr, te, Date().timeIntervalSince(start), t) } })
    let result = RunResult(
        config: cfg, plan: o.plan, measured: o.measured, peakLive: o.peakLive, macs: o.macs,
        trainAccuracy: Double(o.trainEval.correct) / Double(max(o.trainEval.samples, 1)),
        testAccuracy: Double(o.testEval.correct) / Double(max(o.testEval.samples, 1)),
        finalLoss: Double(o.lastTrain.lossSum) / 65536.0 / Double(max(o.lastTrain.samples, 1)),
        seconds: Date().timeIntervalSince(start), weightsHash: o.weightsHash, saturations: o.saturations, steps: o.steps)
    return (result, model)
}
