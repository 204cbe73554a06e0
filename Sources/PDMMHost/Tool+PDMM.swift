import Foundation
import PDMMEngine

extension Tool {
    static let pdmmFlags: Set<String> = ["ideal-fraction", "ideal-epochs", "threshold", "error-fraction", "ivc-period",
                                         "alpha", "beta", "gamma", "lambda-max", "ideal-select", "selection-epochs",
                                         "holdout-fraction", "threshold-quantile", "ivc-target", "trace", "threads"]

    func pdmmConfig(_ a: Arguments, _ cfg: RunConfig) throws -> PDMMConfig {
        var p = PDMMConfig()
        p.k = try a.int("k", default: 2)
        p.batch = cfg.batch
        p.learningRate = cfg.learningRate
        p.optimizer = cfg.optimizer
        p.seed = cfg.seed
        p.threads = cfg.threads
        p.idealEpochs = try a.int("ideal-epochs", default: cfg.epochs, min: 0)
        p.defectEpochs = cfg.epochs
        p.idealFraction = try a.double("ideal-fraction", default: p.idealFraction)
        switch a.string("ideal-select") {
        case nil: break  // verified when the data has a verified column, else confident
        case "verified":
            if a.string("verified-column") == nil { throw UsageError("--ideal-select verified needs --verified-column N|NAME") }
            p.idealSelection = .verified
        case "confident": p.idealSelection = .confident
        case "random": p.idealSelection = .random
        case let s?: throw UsageError("--ideal-select: unknown selection '\(s)' (expected verified, confident, random)")
        }
        p.selectionEpochs = try a.int("selection-epochs", default: p.selectionEpochs, min: 0)
        p.holdoutFraction = try a.double("holdout-fraction", default: p.holdoutFraction)
        let rules = ["threshold", "error-fraction", "threshold-quantile"].filter { a.string($0) != nil }
        if rules.count > 1 {
            throw UsageError("give only one of --threshold-quantile, --threshold and --error-fraction (got "
                             + rules.map { "--" + $0 }.joined(separator: ", ") + ")")
        }
        if a.string("threshold") != nil { p.threshold = .value(try a.double("threshold", default: 0)) }
        if a.string("error-fraction") != nil { p.threshold = .fraction(try a.double("error-fraction", default: 0.08)) }
        if a.string("threshold-quantile") != nil { p.threshold = .idealQuantile(try a.double("threshold-quantile", default: 0.95)) }
        switch a.string("ivc-target") {
        case nil, "ideal": p.ivcTarget = .ideal
        case "error-aware-copy": p.ivcTarget = .errorAwareCopy
        case let s?: throw UsageError("--ivc-target: unknown target '\(s)' (expected ideal, error-aware-copy)")
        }
        p.ivcPeriod = try a.int("ivc-period", default: p.ivcPeriod, min: 0)
        p.alpha = try a.double("alpha", default: p.alpha)
        p.beta = try a.double("beta", default: p.beta)
        p.gamma = try a.double("gamma", default: p.gamma)
        p.lambdaMax = try a.double("lambda-max", default: p.lambdaMax)
        p.idealBackprop = a.has("ideal-bp")
        return p
    }

    /// `pdmm compare`: the PDMM pipeline beside bp and bp-checkpoint trained for the same epochs.
    func compare(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: Tool.pdmmFlags.union(["data", "layers", "net", "input-shape", "k", "epochs", "batch", "optimizer",
                                                                  "momentum", "lr", "seed", "label-column",
                                                                  "verified-column", "curve", "svg"]),
                              switches: ["ideal-bp"])
        if a.string("svg") != nil && a.string("curve") == nil { throw UsageError("compare: --svg needs --curve FILE.csv") }
        var cfg = try runConfig(a)
        let (shape, train, test, _) = try preparedRun(a, &cfg)
        let p = try pdmmConfig(a, cfg)
        try p.validate(layers: shape.layerCount)
        var s = "# PDMM vs backprop: \(a.string("data") ?? "built-in digits"), layers \(shape.description), "
        s += "batch \(cfg.batch), \(cfg.epochs) epochs, lr \(cfg.learningRate), seed \(cfg.seed), seeded 80/20 split (\(train.count)/\(test.count))\n\n"
        s += "| run | test accuracy | peak writable planned B | measured B | read-only B | training MACs | wall s |\n|---|---:|---:|---:|---:|---:|---:|\n"
        for mode in [TrainingMode.bp, .bpCheckpoint] {
            var c = cfg
            c.mode = mode
            c.budget = nil
            let (r, _) = try runTraining(c, train: train, test: test, scaling: nil)
            s += "| \(mode.name) | \(String(format: "%.2f%%", 100 * r.testAccuracy)) | \(r.plan.peakWritable) | \(r.measured.writable) | "
            s += "\(r.measured.weightsFrozen) | \(r.macs.total) | \(String(format: "%.2f", r.seconds)) |\n"
        }
        let r = try runPDMM(p, shape: shape, train: train, test: test)
        try writePDMMTrace(a, r)
        let macs = r.phases.reduce(UInt64(0)) { $0 + $1.macs.total + ($1.name.hasPrefix("information") ? $1.macs.evaluation : 0) }
        for (name, acc) in [("pdmm stable head", r.stableAccuracy), ("pdmm error-aware", r.errorAwareAccuracy),
                            ("pdmm A_final", r.finalAccuracy)] {
            s += "| \(name) | \(String(format: "%.2f%%", 100 * acc)) | \(r.peakPlanned) | \(r.peakMeasured) | "
            s += "\(r.phases.map { $0.measured.weightsFrozen }.max() ?? 0) | \(macs) | \(String(format: "%.2f", r.seconds.reduce(0, +))) |\n"
        }
        s += "\n" + PDMMText.summary(r)
        if let curve = a.string("curve") {
            s += "\n" + (try curveReport(cfg, p, shape: shape, train: train, test: test, pipelineHash: r.hash, csvPath: curve,
                                         svgPath: a.string("svg"), title: "Test accuracy per epoch: \(a.string("data") ?? "built-in digits"), \(shape.description)"))
        }
        out(s)
        return 0
    }
}
