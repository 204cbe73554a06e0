import Foundation
import PDMMEngine

extension Tool {
    /// `pdmm compare`: the PDMM pipeline beside bp and bp-checkpoint trained for the same epochs.
    func compare(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: RunOptions.pdmmFlags.union(["data", "layers", "net", "input-shape", "k", "epochs", "batch", "optimizer",
                                                                  "momentum", "lr", "seed", "label-column",
                                                                  "verified-column", "curve", "svg"]),
                              switches: ["ideal-bp"])
        if a.string("svg") != nil && a.string("curve") == nil { throw UsageError("compare: --svg needs --curve FILE.csv") }
        var cfg = try a.runConfig(defaultThreads: Tool.defaultThreads)
        let (shape, train, test, _) = try preparedRun(a, &cfg)
        let p = try a.pdmmConfig(cfg)
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
