import Foundation
import PDMMEngine

extension Tool {
    static let pdmmFlags: Set<String> = ["ideal-fraction", "ideal-epochs", "threshold", "error-fraction", "ivc-period",
                                         "alpha", "beta", "gamma", "lambda-max"]

    func pdmmConfig(_ a: Arguments, _ cfg: RunConfig) throws -> PDMMConfig {
        var p = PDMMConfig()
        p.k = try a.int("k", default: 2)
        p.batch = cfg.batch
        p.learningRate = cfg.learningRate
        p.optimizer = cfg.optimizer
        p.seed = cfg.seed
        p.idealEpochs = try a.int("ideal-epochs", default: cfg.epochs, min: 0)
        p.defectEpochs = cfg.epochs
        p.idealFraction = try a.double("ideal-fraction", default: p.idealFraction)
        if a.string("threshold") != nil && a.string("error-fraction") != nil {
            throw UsageError("give either --threshold or --error-fraction, not both")
        }
        if a.string("threshold") != nil { p.threshold = .value(try a.double("threshold", default: 0)) }
        if a.string("error-fraction") != nil { p.threshold = .fraction(try a.double("error-fraction", default: 0.08)) }
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
                                                                  "verified-column"]),
                              switches: ["ideal-bp"])
        var cfg = try runConfig(a)
        let data = try loadData(a)
        let shape = try network(a, data)
        cfg.network = shape
        let (train, test, _) = prepareSplit(data, seed: cfg.seed, channels: NetworkOptions.scalingChannels(shape))
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
        let macs = r.phases.reduce(UInt64(0)) { $0 + $1.macs.total + ($1.name.hasPrefix("information") ? $1.macs.evaluation : 0) }
        for (name, acc) in [("pdmm stable head", r.stableAccuracy), ("pdmm error-aware", r.errorAwareAccuracy),
                            ("pdmm A_final", r.finalAccuracy)] {
            s += "| \(name) | \(String(format: "%.2f%%", 100 * acc)) | \(r.peakPlanned) | \(r.peakMeasured) | "
            s += "\(r.phases.map { $0.measured.weightsFrozen }.max() ?? 0) | \(macs) | \(String(format: "%.2f", r.seconds.reduce(0, +))) |\n"
        }
        s += "\n" + PDMMText.summary(r)
        out(s)
        return 0
    }
}
