import Foundation
import PDMMEngine

/// Everything that defines a training run on the host.
public struct RunConfig {
    public var widths: [Int] = [64, 128, 128, 128, 10]
    /// The network (from `--net`, `--layers`, `--input-shape`); nil = the dense stack over `widths`.
    public var network: NetworkShape?
    public var batch = 32
    public var mode: TrainingMode = .bp
    public var optimizer: OptimizerKind = .sgd
    public var epochs = 30
    public var learningRate = 0.05
    public var seed: UInt64 = 1
    /// Writable arena budget in bytes; nil = exactly the plan.
    public var budget: Int?
    /// Worker threads of the kernels (`--threads`; the weights are the same for every count).
    public var threads = 1
    public init() {}
}

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

/// Splits and scales a data set the way every run does: seeded 80/20 split,
/// feature scaling statistics from the training split only, per feature or, with
/// `channels` (`NetworkOptions.scalingChannels`), per input channel.
public func prepareSplit(_ data: Dataset, seed: UInt64, channels: Int? = nil) -> (train: Dataset, test: Dataset, scaling: FeatureScaling) {
    let (rawTrain, rawTest) = data.split(trainPercent: 80, seed: seed)
    let scaling = rawTrain.scalingStatistics(channels: channels)
    return (rawTrain.scaled(by: scaling), rawTest.scaled(by: scaling), scaling)
}

/// Trains a fresh model (seeded) on `train`, evaluates on `test`.
public func runTraining(_ cfg: RunConfig, train: Dataset, test: Dataset, scaling: FeatureScaling?,
                        model existing: Model? = nil, resume: Checkpoint? = nil,
                        afterEpoch: ((Trainer, Int, Int) throws -> Void)? = nil,
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
    var lastTrain = PassStats()
    var trainEval = PassStats(), testEval = PassStats()
    var firstStage = 0, firstEpoch = 0
    if let c = resume {
        do { try t.restore(c) } catch { throw DataError(message: "resume: \(error.message)") }
        firstStage = c.stage
        firstEpoch = c.epochsDone
    }
    for s in firstStage..<t.stageCount {
        // A resumed run's first stage was begun by `restore`, and continues after its saved epoch.
        let resumedStage = resume != nil && s == firstStage
        if !resumedStage { t.beginStage(s) }
        let from = resumedStage ? firstEpoch : 0
        for e in from..<max(cfg.epochs, from) {
            lastTrain = try t.trainEpoch(train, epoch: e)
            try afterEpoch?(t, s, e)
            if let progress {
                let te = try t.evaluate(test)
                progress(s, e, lastTrain, te, Date().timeIntervalSince(start), t)
            }
        }
        if s == t.stageCount - 1 {
            trainEval = try t.evaluate(train)
            testEval = try t.evaluate(test)
        }
    }
    t.endStage()
    let secs = Date().timeIntervalSince(start)
    let result = RunResult(
        config: cfg, plan: t.plan, measured: t.arena.peak, peakLive: t.arena.peakLive, macs: t.macs,
        trainAccuracy: Double(trainEval.correct) / Double(max(trainEval.samples, 1)),
        testAccuracy: Double(testEval.correct) / Double(max(testEval.samples, 1)),
        finalLoss: Double(lastTrain.lossSum) / 65536.0 / Double(max(lastTrain.samples, 1)),
        seconds: secs, weightsHash: model.weightsHash, saturations: t.saturations, steps: t.stepCount)
    return (result, model)
}
