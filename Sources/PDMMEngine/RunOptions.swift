/// The option names of a training run, in one place: `pdmm train`, `pdmm eval`
/// and the board program (`pdmm-board`, `pdmm-board eval`) accept exactly these.
public enum RunOptions {
    /// The PDMM pipeline's flags (`--mode pdmm`; also `pdmm compare` and `pdmm noise`).
    public static let pdmmFlags: Set<String> = ["ideal-fraction", "ideal-epochs", "threshold", "error-fraction", "ivc-period",
                                                "alpha", "beta", "gamma", "lambda-max", "ideal-select", "selection-epochs",
                                                "holdout-fraction", "threshold-quantile", "ivc-target", "trace", "threads"]
    /// Every valued flag of `train`.
    public static let trainFlags: Set<String> = pdmmFlags.union([
        "data", "layers", "net", "input-shape", "mode", "k", "epochs", "batch", "budget", "optimizer", "momentum", "lr",
        "seed", "label-column", "riemann-alpha", "riemann-rho", "phi", "save", "resume", "checkpoint-every",
        "stop-after", "verified-column"])
    /// The switches of `train`.
    public static let trainSwitches: Set<String> = ["ideal-bp"]
    /// The flags of `eval`.
    public static let evalFlags: Set<String> = ["model", "data", "label-column", "batch"]
    /// The dense stack when neither `--layers` nor `--net` is given.
    public static let defaultWidths = [64, 128, 128, 128, 10]
}

/// Everything that defines a training run (bp, bp-checkpoint, local, blockwise).
public struct RunConfig {
    public var widths: [Int] = RunOptions.defaultWidths
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

extension Arguments {
    /// The run's settings from `--layers --batch --epochs --lr --seed --k --mode
    /// --optimizer --budget --threads` (`skipMode`: `--mode pdmm`, whose mode is not a trainer's;
    /// `defaultThreads`: the program's default for `--threads`, e.g. its online cores capped at 4).
    public func runConfig(skipMode: Bool = false, defaultThreads: Int = 1) throws(UsageError) -> RunConfig {
        var c = RunConfig()
        c.widths = try intList("layers", default: c.widths)
        c.batch = try int("batch", default: c.batch)
        c.epochs = try int("epochs", default: c.epochs, min: 0)
        c.learningRate = try double("lr", default: c.learningRate)
        c.seed = UInt64(try int("seed", default: 1, min: 0))
        let k = try int("k", default: 1)
        if !skipMode { c.mode = try Arguments.parseMode(string("mode") ?? "bp", k: k) }
        c.optimizer = try optimizer()
        c.budget = try size("budget")
        c.threads = try int("threads", default: defaultThreads, min: 1)
        if c.threads > WorkerTeam.maxThreads { throw UsageError("--threads: at most \(WorkerTeam.maxThreads)") }
        return c
    }

    /// Parses "bp", "bp-checkpoint", "local", "blockwise" (+ k).
    public static func parseMode(_ s: String, k: Int) throws(UsageError) -> TrainingMode {
        guard let m = TrainingMode(name: s, k: k) else {
            throw UsageError("unknown mode '\(s)' (expected bp, bp-checkpoint, local, blockwise, pdmm)")
        }
        return m
    }

    /// `--optimizer --momentum --riemann-alpha --riemann-rho --phi`.
    public func optimizer() throws(UsageError) -> OptimizerKind {
        let name = string("optimizer") ?? "sgd", phi = string("phi") ?? "grad2"
        guard let opt = OptimizerKind(name: name, momentum: try double("momentum", default: 0.9),
                                      alpha: try double("riemann-alpha", default: 1.0),
                                      rho: try double("riemann-rho", default: 0.9), phi: phi) else {
            if name == "riemannian" { throw UsageError("--phi: unknown measure '\(phi)' (expected grad2, absw)") }
            throw UsageError("unknown optimizer '\(name)' (expected sgd, momentum, riemannian)")
        }
        return opt
    }

    /// The run's network from `--net`, `--input-shape` and `--layers` for data of
    /// `features` and `classes` (`NetworkOptions.shape`).
    public func network(features: Int, classes: Int) throws(RunError) -> NetworkShape {
        var layers: [Int]? = nil
        do {
            if string("layers") != nil { layers = try intList("layers", default: []) }
        } catch { throw .usage(error) }
        do {
            return try NetworkOptions.shape(net: string("net"), inputShape: string("input-shape"), layers: layers,
                                            defaultWidths: RunOptions.defaultWidths, features: features, classes: classes)
        } catch { throw .engine(error) }
    }

    /// The PDMM pipeline's settings: epochs, batch, lr, optimizer and seed from `cfg`;
    /// ideal epochs default to `--epochs`; the PDMM flags (`RunOptions.pdmmFlags`).
    public func pdmmConfig(_ cfg: RunConfig) throws(UsageError) -> PDMMConfig {
        var p = PDMMConfig()
        p.k = try int("k", default: 2)
        p.batch = cfg.batch
        p.learningRate = cfg.learningRate
        p.optimizer = cfg.optimizer
        p.seed = cfg.seed
        p.threads = cfg.threads
        p.idealEpochs = try int("ideal-epochs", default: cfg.epochs, min: 0)
        p.defectEpochs = cfg.epochs
        p.idealFraction = try double("ideal-fraction", default: p.idealFraction)
        switch string("ideal-select") {
        case nil: break  // verified when the data has a verified column, else confident
        case "verified":
            if string("verified-column") == nil { throw UsageError("--ideal-select verified needs --verified-column N|NAME") }
            p.idealSelection = .verified
        case "confident": p.idealSelection = .confident
        case "random": p.idealSelection = .random
        case let s?: throw UsageError("--ideal-select: unknown selection '\(s)' (expected verified, confident, random)")
        }
        p.selectionEpochs = try int("selection-epochs", default: p.selectionEpochs, min: 0)
        p.holdoutFraction = try double("holdout-fraction", default: p.holdoutFraction)
        var rules = ""
        var ruleCount = 0
        for r in ["threshold", "error-fraction", "threshold-quantile"] where string(r) != nil {
            rules += (ruleCount == 0 ? "--" : ", --") + r
            ruleCount += 1
        }
        if ruleCount > 1 {
            throw UsageError("give only one of --threshold-quantile, --threshold and --error-fraction (got \(rules))")
        }
        if string("threshold") != nil { p.threshold = .value(try double("threshold", default: 0)) }
        if string("error-fraction") != nil { p.threshold = .fraction(try double("error-fraction", default: 0.08)) }
        if string("threshold-quantile") != nil { p.threshold = .idealQuantile(try double("threshold-quantile", default: 0.95)) }
        switch string("ivc-target") {
        case nil, "ideal": p.ivcTarget = .ideal
        case "error-aware-copy": p.ivcTarget = .errorAwareCopy
        case let s?: throw UsageError("--ivc-target: unknown target '\(s)' (expected ideal, error-aware-copy)")
        }
        p.ivcPeriod = try int("ivc-period", default: p.ivcPeriod, min: 0)
        p.alpha = try double("alpha", default: p.alpha)
        p.beta = try double("beta", default: p.beta)
        p.gamma = try double("gamma", default: p.gamma)
        p.lambdaMax = try double("lambda-max", default: p.lambdaMax)
        p.idealBackprop = has("ideal-bp")
        return p
    }

    /// `--resume`: the flags given must agree with the checkpoint `c` (`flagged`: the
    /// network of the flags, compared when a network flag was given; `saved`: the checkpoint's).
    public func checkAgainst(_ c: Checkpoint, flagged: NetworkShape, saved: NetworkShape) throws(UsageError) {
        if string("net") != nil || string("input-shape") != nil,
           let d = flagged.spec.firstDifference(from: c.network, mine: "--net", theirs: "the checkpoint") {
            throw UsageError("resume: the network disagrees with the checkpoint's: \(d)")
        }
        if string("net") == nil, let l = string("layers"), flagged.spec != c.network {
            throw UsageError("resume: --layers \(l) disagrees with the checkpoint's \(saved.description)")
        }
        if let name = string("mode") {
            let m = try Arguments.parseMode(name, k: try int("k", default: 1))
            if m != c.mode { throw UsageError("resume: --mode \(m.name) disagrees with the checkpoint's \(c.mode.name)") }
        }
        if string("batch") != nil, try int("batch", default: 0) != c.batch {
            throw UsageError("resume: --batch disagrees with the checkpoint's \(c.batch)")
        }
        if string("seed") != nil, UInt64(try int("seed", default: 0)) != c.seed {
            throw UsageError("resume: --seed disagrees with the checkpoint's \(c.seed)")
        }
    }
}
