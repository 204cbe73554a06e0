import Foundation
import PDMMEngine

extension Tool {
    func bench(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["seconds"])
        let what = a.positional.first ?? "kernels"
        let seconds = try a.double("seconds", default: 0.5)
        switch what {
        case "kernels": out(runKernelBench(sizes: [64, 128, 256, 512], seconds: seconds))
        case "train": out(try TrainBench.run(seconds: seconds))
        case "conv": out(runConvBench(seconds: seconds))
        default: throw UsageError("bench: unknown benchmark '\(what)' (expected kernels, train, conv)")
        }
        return 0
    }
}

enum TrainBench {
    /// Samples/s and MAC/s per mode on the built-in data, with the float32
    /// reference's samples/s in the same process for the ratio.
    static func run(seconds: Double) throws -> String {
        let (train, _, _) = Run.split(BuiltinData.digits(), seed: 1)
        let widths = [64, 128, 128, 128, 10]
        var s = "| mode | samples/s | MMAC/s | MACs per sample | vs float32 reference |\n|---|---:|---:|---:|---:|\n"
        // float32 reference: one epoch
        let ref = FloatReference(model: Model(shape: try NetworkShape(widths: widths), seed: 1))
        let t0 = Date()
        ref.train(train, epochs: 1, batch: 32, learningRate: 0.05, seed: 1)
        let refRate = Double(train.count) / Date().timeIntervalSince(t0)
        for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 1), .local(k: 2), .blockwise(k: 2)] {
            var cfg = RunConfig()
            cfg.widths = widths
            cfg.mode = mode
            cfg.epochs = 1
            let start = Date()
            var samples = 0
            var macs: UInt64 = 0
            repeat {
                let (r, _) = try runTraining(cfg, train: train, test: train.subset([0]), scaling: nil)
                samples += r.steps > 0 ? train.count * r.plan.stages.count : 0
                macs += r.macs.total
            } while Date().timeIntervalSince(start) < seconds
            let dt = Date().timeIntervalSince(start)
            s += "| \(mode.name) | \(String(format: "%.0f", Double(samples) / dt)) | \(String(format: "%.0f", Double(macs) / dt / 1e6)) | "
            s += "\(macs / UInt64(max(samples, 1))) | \(String(format: "%.2f", Double(samples) / dt / refRate)) |\n"
        }
        s += "\nfloat32 reference (naive Swift loops, bp, same network and batch): \(String(format: "%.0f", refRate)) samples/s\n"
        return s
    }
}
