/// Why a run stopped: the one error type of the shared run layer (`Run`).
public enum RunError: Error {
    /// A command-line mistake (exit 2).
    case usage(UsageError)
    /// The engine refused (exit 2).
    case engine(EngineError)
    /// A file or its data cannot be used: the message names it (exit 2).
    case data(String)
    /// `--stop-after N` stopped the run after N epochs, as a crash would (exit 3).
    case stopped

    public var message: String {
        switch self {
        case .usage(let u): return u.message
        case .engine(let e): return e.message
        case .data(let m): return m
        case .stopped: return "stopped as asked by --stop-after (the last checkpoint is kept)"
        }
    }

    /// The exit code both programs return: 3 for `.stopped`, else 2.
    public var exitCode: Int32 {
        if case .stopped = self { return 3 }
        return 2
    }
}

/// What a program supplies to `Run`: its I/O. The host tool implements it with
/// Foundation, the board program with C stdio (tools/board/board.c).
public struct RunIO {
    /// Reads a CSV file (path, `--label-column`, `--verified-column`) into a data set.
    public var loadCSV: (String, String?, String?) throws(RunError) -> Dataset
    /// The built-in digits data.
    public var builtinData: () -> Dataset
    /// Reads a checkpoint file.
    public var readCheckpoint: (String) throws(RunError) -> Checkpoint
    /// Writes a checkpoint file atomically (the previous one survives a crash).
    public var writeCheckpoint: (Checkpoint, String) throws(RunError) -> Void
    /// `--threads`' default on this machine (e.g. the online cores, at most 4).
    public var defaultThreads: Int

    public init(loadCSV: @escaping (String, String?, String?) throws(RunError) -> Dataset,
                builtinData: @escaping () -> Dataset,
                readCheckpoint: @escaping (String) throws(RunError) -> Checkpoint,
                writeCheckpoint: @escaping (Checkpoint, String) throws(RunError) -> Void,
                defaultThreads: Int = 1) {
        self.defaultThreads = defaultThreads
        self.loadCSV = loadCSV
        self.builtinData = builtinData
        self.readCheckpoint = readCheckpoint
        self.writeCheckpoint = writeCheckpoint
    }
}

/// Where a run is, reported to `Run.train`'s `mark` (the board program counts
/// its heap allocations per part: training steps must make none).
public enum RunPhase {
    case stage, training, evaluation, checkpoint, done
}

/// The settings of `--save`, `--checkpoint-every` and `--stop-after`.
public struct CheckpointPolicy {
    public var path: String?
    public var every = 1
    public var stopAfter = Int.max
    public init(path: String? = nil, every: Int = 1, stopAfter: Int = Int.max) {
        self.path = path
        self.every = every
        self.stopAfter = stopAfter
    }
}

/// A `train` command line made ready: data loaded, network built, checkpoint
/// to resume (its settings override the flags), split and scaled.
public struct PreparedRun {
    public var config: RunConfig
    public let isPDMM: Bool
    public let shape: NetworkShape
    public let train: Dataset
    public let test: Dataset
    public let scaling: FeatureScaling
    public let resume: Checkpoint?
    public let policy: CheckpointPolicy
    /// "built-in digits" or the `--data` path.
    public let dataName: String
    /// Sample, feature and class counts of the whole data set (before the split).
    public let dataCount: Int, featureCount: Int, classes: Int
}

/// What a training run measured (integers only: each program prints it its way).
public struct RunOutcome {
    public let plan: MemoryPlan
    public let measured: ByteCounts
    public let peakLive: Int
    public let macs: MACCounts
    public let lastTrain: PassStats
    public let trainEval: PassStats
    public let testEval: PassStats
    public let weightsHash: UInt64
    public let saturations: UInt64
    public let steps: Int
}

/// The run layer shared by `pdmm train` / `pdmm eval` and the board program: data
/// split and scaling, `--resume`, the epoch loop with `--save` / `--checkpoint-every` /
/// `--stop-after`, evaluation of a checkpoint. The programs differ only in I/O (`RunIO`),
/// in where the trainer's arena lives and in how they print.
public enum Run {
    /// Splits and scales a data set the way every run does: seeded 80/20 split,
    /// feature scaling statistics from the training split only, per feature or, with
    /// `channels` (`NetworkOptions.scalingChannels`), per input channel.
    public static func split(_ data: Dataset, seed: UInt64, channels: Int? = nil)
        -> (train: Dataset, test: Dataset, scaling: FeatureScaling) {
        var d: Dataset? = data
        return split(consuming: &d, seed: seed, channels: channels)
    }

    /// `split` that takes over `data` when it is the only reference (then set to nil):
    /// the samples are permuted and scaled in place, so the heap holds the data once
    /// plus its test part (20 %) instead of three copies.
    public static func split(consuming data: inout Dataset?, seed: UInt64, channels: Int? = nil)
        -> (train: Dataset, test: Dataset, scaling: FeatureScaling) {
        let (train, test) = Dataset.split(consuming: &data, trainPercent: 80, seed: seed)
        let scaling = train.scalingStatistics(channels: channels)
        train.scaleInPlace(by: scaling)
        test.scaleInPlace(by: scaling)
        return (train, test, scaling)
    }

    /// `train`'s arguments (`RunOptions.trainFlags`) made ready: `--data` or the
    /// built-in data, the network, `--resume` (checked against the flags; its mode,
    /// optimizer, batch, lr and seed win), the scaled split. The whole data set is
    /// released before this returns (only the split stays).
    public static func prepare(_ a: Arguments, io: RunIO) throws(RunError) -> PreparedRun {
        let isPDMM = a.string("mode") == "pdmm"
        var cfg: RunConfig
        do { cfg = try a.runConfig(skipMode: isPDMM, defaultThreads: io.defaultThreads) } catch { throw .usage(error) }
        var data: Dataset? = try a.string("data").map { (p: String) throws(RunError) -> Dataset in
            try io.loadCSV(p, a.string("label-column"), a.string("verified-column"))
        } ?? io.builtinData()
        let name = a.string("data") ?? "built-in digits"
        let count = data!.count, features = data!.featureCount, classes = data!.classes
        var shape = try a.network(features: features, classes: classes)
        var resume: Checkpoint? = nil
        if let path = a.string("resume") {
            let c = try io.readCheckpoint(path)
            let saved: NetworkShape
            do { saved = try NetworkShape(spec: c.network) } catch { throw .engine(error) }
            do { try a.checkAgainst(c, flagged: shape, saved: saved) } catch { throw .usage(error) }
            shape = saved
            cfg.mode = c.mode
            cfg.optimizer = c.optimizer
            cfg.batch = c.batch
            cfg.learningRate = c.learningRate
            cfg.seed = c.seed
            resume = c
        }
        cfg.network = shape
        cfg.widths = shape.widths
        let (train, test, scaling) = split(consuming: &data, seed: cfg.seed, channels: NetworkOptions.scalingChannels(shape))
        if let c = resume, c.scaling != scaling {
            throw .usage(UsageError("resume: the data differs from the checkpoint's (feature statistics do not match)"))
        }
        var policy = CheckpointPolicy(path: a.string("save"))
        do {
            policy.every = try a.int("checkpoint-every", default: 1, min: 1)
            policy.stopAfter = try a.int("stop-after", default: Int.max, min: 1)
        } catch { throw .usage(error) }
        if isPDMM && (policy.path != nil || resume != nil) {
            throw .usage(UsageError("--save and --resume are for bp, bp-checkpoint, local and blockwise runs"))
        }
        return PreparedRun(config: cfg, isPDMM: isPDMM, shape: shape, train: train, test: test, scaling: scaling,
                           resume: resume, policy: policy, dataName: name, dataCount: count, featureCount: features,
                           classes: classes)
    }

    /// The epochs of a run on trainer `t` (a fresh or, with `resume`, a restored
    /// model): every stage, `epochs` epochs each; after each epoch the checkpoint
    /// policy (save every N epochs and after the last; stop after N epochs run) and,
    /// with `progress`, the test split's evaluation (stage, epoch, last training
    /// pass, test pass, trainer). `mark` is told each part as it starts.
    public static func train(_ t: Trainer, epochs: Int, train: Dataset, test: Dataset, resume: Checkpoint? = nil,
                             policy: CheckpointPolicy = CheckpointPolicy(), io: RunIO? = nil,
                             mark: (RunPhase) -> Void = { _ in },
                             progress: ((Int, Int, PassStats, PassStats, Trainer) -> Void)? = nil)
        throws(RunError) -> RunOutcome {
        var lastTrain = PassStats(), trainEval = PassStats(), testEval = PassStats()
        var firstStage = 0, firstEpoch = 0, epochsRun = 0
        if let c = resume {
            do { try t.restore(c) } catch { throw .data("resume: \(error.message)") }
            firstStage = c.stage
            firstEpoch = c.epochsDone
        }
        for s in firstStage..<t.stageCount {
            // A resumed run's first stage was begun by `restore`, and continues after its saved epoch.
            let resumedStage = resume != nil && s == firstStage
            mark(.stage)
            if !resumedStage { t.beginStage(s) }
            let from = resumedStage ? firstEpoch : 0
            for e in from..<max(epochs, from) {
                mark(.training)
                lastTrain = try engine { () throws(EngineError) in try t.trainEpoch(train, epoch: e) }
                if let path = policy.path, (e + 1) % policy.every == 0 || e + 1 == epochs {
                    mark(.checkpoint)
                    try io?.writeCheckpoint(t.checkpoint(epochsDone: e + 1), path)
                }
                epochsRun += 1
                if epochsRun >= policy.stopAfter { throw .stopped }
                if let progress {
                    mark(.evaluation)
                    let te = try engine { () throws(EngineError) in try t.evaluate(test) }
                    progress(s, e, lastTrain, te, t)
                }
            }
            if s == t.stageCount - 1 {
                mark(.evaluation)
                trainEval = try engine { () throws(EngineError) in try t.evaluate(train) }
                testEval = try engine { () throws(EngineError) in try t.evaluate(test) }
            }
        }
        mark(.stage)
        t.endStage()
        mark(.done)
        return RunOutcome(plan: t.plan, measured: t.arena.peak, peakLive: t.arena.peakLive, macs: t.macs,
                          lastTrain: lastTrain, trainEval: trainEval, testEval: testEval,
                          weightsHash: t.model.weightsHash, saturations: t.saturations, steps: t.stepCount)
    }

    /// `body`'s engine error as a `RunError`.
    public static func engine<T>(_ body: () throws(EngineError) -> T) throws(RunError) -> T {
        do { return try body() } catch { throw .engine(error) }
    }

    /// `eval`'s arguments (`RunOptions.evalFlags`): the checkpoint of `--model`
    /// evaluated on `--data` (all samples, scaled with the model's stored statistics)
    /// or on the built-in data's test split. Returns the checkpoint, its network, the
    /// pass and what was evaluated ("all N samples of FILE", ...).
    public static func evaluate(_ a: Arguments, io: RunIO) throws(RunError)
        -> (checkpoint: Checkpoint, shape: NetworkShape, stats: PassStats, what: String) {
        guard let path = a.string("model") else { throw .usage(UsageError("eval needs --model FILE")) }
        let batch: Int
        do { batch = try a.int("batch", default: 32, min: 1) } catch { throw .usage(error) }
        let c = try io.readCheckpoint(path)
        let shape = try engine { () throws(EngineError) in try NetworkShape(spec: c.network) }
        let model = Model(shape: shape, seed: 0)
        for i in 0..<c.model.count { model[i] = c.model[i] }
        var data: Dataset
        let what: String
        if let file = a.string("data") {
            data = try io.loadCSV(file, a.string("label-column"), nil)
            what = "all \(data.count) samples of \(file)"
        } else {
            data = io.builtinData().split(trainPercent: 80, seed: c.seed).test
            what = "the built-in data's test split (seed \(c.seed), \(data.count) samples)"
        }
        if let s = c.scaling {
            if s.mean.count != data.featureCount {
                throw .engine(.featureMismatch(expected: s.mean.count, got: data.featureCount))
            }
            data = data.scaled(by: s)
        }
        let stats = try engine { () throws(EngineError) in
            let p = try Predictor(shape: shape, batch: batch, dual: false, perSampleCount: 0, budget: Int.max)
            return try p.evaluate(model, data)
        }
        return (c, shape, stats, what)
    }
}
