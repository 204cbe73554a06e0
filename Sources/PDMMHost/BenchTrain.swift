// BenchTrain.swift -- `pdmm bench train`: how close a real training step gets to the
// machine's integer GEMM rate, where the rest of its time goes, and how it compares with
// float32 in the same process.
//
// Per shape (digits dense, mnist dense at two batch sizes, an mnist CNN):
//  - the step rate: bp + SGD steps on real data for `seconds`, MACs counted by the trainer
//    (forward + backward data + weight update), divided by the wall time of the steps;
//  - the GEMM rate: q16_gemm_nn at 256^3, measured in the same process just before;
//  - the phases: the trainer's own per-phase times (`Trainer.phaseTimes`, a clock given by
//    this file), as shares of the step time;
//  - float32: the float reference (`FloatReference`: plain Swift loops, same network, batch
//    and batch order) training the same samples, as samples/s ratio.
// A second table keeps the per-mode samples/s of the digits network.

import CFixed
import Foundation
import PDMMEngine

enum TrainBench {
    struct Shape {
        let name: String
        let net: String?       // --net text (nil: dense widths)
        let widths: [Int]
        let batch: Int
        let data: String       // "digits" or a CSV path
    }

    static let shapes = [
        Shape(name: "digits 64-128x3-10", net: nil, widths: [64, 128, 128, 128, 10], batch: 32, data: "digits"),
        Shape(name: "mnist 784-256x3-10", net: nil, widths: [784, 256, 256, 256, 10], batch: 32,
              data: "Data/mnist_5k.csv.gz"),
        Shape(name: "mnist 784-256x3-10", net: nil, widths: [784, 256, 256, 256, 10], batch: 128,
              data: "Data/mnist_5k.csv.gz"),
        Shape(name: "mnist CNN (conv 16, conv 32, dense 10)",
              net: "1x28x28: conv 16 3x3 same, relu, maxpool 2x2, conv 32 3x3 same, relu, maxpool 2x2, flatten, dense 10",
              widths: [], batch: 32, data: "Data/mnist_5k.csv.gz"),
    ]

    static func nanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// One row of the step table: the measured rates and phase shares.
    struct Row {
        var samplesPerSecond = 0.0
        var gmacs = 0.0
        var macsPerSample: UInt64 = 0
        var phases = PhaseTimes()
        var floatSamplesPerSecond = 0.0
    }

    static func run(seconds: Double, threads: Int = 1) throws -> String {
        var s = "Training steps: bp + SGD, real data (the first 80 % of a seeded split), "
        s += "\(benchCell(seconds)) s per shape and thread count after a warm-up, the fastest 0.1 s group of steps "
        s += "counted (samples/s, GMAC/s); the phases are the whole one-thread run's; "
        s += "the last column is the same steps on \(threads) worker thread(s) (--threads), "
        s += "as a speed-up over one thread (the weights are identical).\n\n"
        var gemm = [Int32](repeating: 0, count: 256 * 256)
        let (a, b) = benchSquareOperands(256)
        var failed = 0
        let peak = benchQ16GemmNN(256, a: a, b: b, c: &gemm, seconds: max(seconds / 2, 0.2), failed: &failed)
        s += "q16_gemm_nn 256^3 in this process: \(benchCell(peak)) GMAC/s\n\n"
        s += "| shape | batch | step GMAC/s | / GEMM | samples/s | forward | backward data | update | softmax+loss | other | float32 samples/s | q16 / float32 | \(threads) threads |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        var cache: [String: Dataset] = [:]
        for shape in shapes {
            let data: Dataset
            if let d = cache[shape.data] { data = d } else {
                if shape.data != "digits" && !FileManager.default.fileExists(atPath: shape.data) {
                    s += "| \(shape.name) | \(shape.batch) | (\(shape.data) not found: run from the repository) |||||||||\n"
                    continue
                }
                data = shape.data == "digits" ? BuiltinData.digits() : try CSVLoader.load(path: shape.data)
                cache[shape.data] = data
            }
            let r = try measure(shape, data: data, seconds: seconds, threads: 1)
            let rt = threads > 1 ? try measure(shape, data: data, seconds: seconds, threads: threads, float: false) : r
            let p = r.phases, t = Double(max(p.total, 1))
            func pct(_ v: UInt64) -> String { String(format: "%.0f %%", 100 * Double(v) / t) }
            s += "| \(shape.name) | \(shape.batch) | \(benchCell(r.gmacs)) | \(String(format: "%.0f %%", 100 * r.gmacs / peak)) | "
            s += "\(String(format: "%.0f", r.samplesPerSecond)) | \(pct(p.forward)) | \(pct(p.backwardData)) | \(pct(p.update)) | "
            s += "\(pct(p.loss)) | \(pct(p.other)) | \(String(format: "%.0f", r.floatSamplesPerSecond)) | "
            s += "\(benchCell(r.samplesPerSecond / r.floatSamplesPerSecond)) | \(benchCell(rt.samplesPerSecond / r.samplesPerSecond))x |\n"
        }
        s += "\nforward: GEMM/conv with the bias, pooling and ReLU; backward data: the transposed GEMM/conv, ReLU mask "
        s += "and pool backward; update: the fused exact weight-gradient sums and the stochastic-rounding steps "
        s += "(one counter-based draw per weight); softmax+loss: the integer exp, the loss and its gradient; "
        s += "other: batch copy and bookkeeping. float32: the float reference (plain Swift loops, not BLAS).\n\n"
        s += try modes(seconds: seconds, threads: threads)
        return s
    }

    /// bp + SGD steps over `data` for `seconds` (after one warm-up pass over 8 batches).
    static func measure(_ shape: Shape, data raw: Dataset, seconds: Double, threads: Int,
                        float: Bool = true) throws -> Row {
        let network: NetworkShape
        if let text = shape.net { network = try NetworkShape(spec: NetworkSpec.parse(text)) } else {
            network = try NetworkShape(widths: shape.widths)
        }
        let channels = network.spec.input.channels
        let (train, _, _) = Run.split(raw, seed: 1, channels: channels)
        let model = Model(shape: network, seed: 1)
        let plan = try MemoryPlan(shape: network, batch: shape.batch, mode: .bp, optimizer: .sgd, threads: threads)
        let t = try Trainer(model: model, batch: shape.batch, mode: .bp, optimizer: .sgd,
                            options: TrainingOptions(learningRate: 0.05, seed: 1, threads: threads),
                            budget: plan.peakWritable)
        t.beginStage(0)
        t.clock = nanos
        let batches = train.count / shape.batch
        var start = 0, epoch = 0
        func next() throws {
            _ = try t.trainBatch(train, epoch: epoch, start: start * shape.batch)
            start += 1
            if start == batches { start = 0; epoch += 1 }
        }
        for _ in 0..<8 { try next() }
        t.resetPhaseTimes()
        // Groups of steps of >= 0.1 s; the fastest group counts (as in `bench kernels`), so a
        // group the OS preempted on a busy machine does not count against the run.
        let t0 = nanos()
        var row = Row()
        repeat {
            let g0 = nanos(), m0 = t.macs.total
            var steps = 0
            repeat { try next(); steps += 1 } while nanos() - g0 < 100_000_000
            let dt = Double(nanos() - g0) / 1e9
            let rate = Double(steps * shape.batch) / dt
            if rate > row.samplesPerSecond {
                row.samplesPerSecond = rate
                row.gmacs = Double(t.macs.total - m0) / dt / 1e9
                row.macsPerSample = (t.macs.total - m0) / UInt64(steps * shape.batch)
            }
        } while Double(nanos() - t0) < seconds * 1e9
        row.phases = t.phaseTimes
        if !float { return row }
        // float32: the same network and batch, timed the same way (fastest 0.1 s group of passes over
        // the first 4 batches, for about half the time).
        let ref = FloatReference(model: Model(shape: network, seed: 1))
        let probe = train.subset(Array(0..<min(train.count, 4 * shape.batch)))
        let f0 = nanos()
        repeat {
            let g0 = nanos()
            var passes = 0
            repeat {
                ref.train(probe, epochs: 1, batch: shape.batch, learningRate: 0.05, seed: 1)
                passes += 1
            } while nanos() - g0 < 100_000_000
            row.floatSamplesPerSecond = max(row.floatSamplesPerSecond,
                                            Double(passes * probe.count) / (Double(nanos() - g0) / 1e9))
        } while Double(nanos() - f0) < seconds / 2 * 1e9
        return row
    }

    /// Samples/s and MAC/s per mode on the built-in data, with the float32
    /// reference's samples/s in the same process for the ratio.
    static func modes(seconds: Double, threads: Int) throws -> String {
        let (train, _, _) = Run.split(BuiltinData.digits(), seed: 1)
        let widths = [64, 128, 128, 128, 10]
        var s = "Per mode, digits 64-128-128-128-10, batch 32, one epoch per run, \(threads) thread(s):\n\n"
        s += "| mode | samples/s | MMAC/s | MACs per sample | vs float32 reference |\n|---|---:|---:|---:|---:|\n"
        let ref = FloatReference(model: Model(shape: try NetworkShape(widths: widths), seed: 1))
        let t0 = Date()
        ref.train(train, epochs: 1, batch: 32, learningRate: 0.05, seed: 1)
        let refRate = Double(train.count) / Date().timeIntervalSince(t0)
        for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 1), .local(k: 2), .blockwise(k: 2)] {
            var cfg = RunConfig()
            cfg.widths = widths
            cfg.mode = mode
            cfg.epochs = 1
            cfg.threads = threads
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
        s += "\nQ16.16 on \(threads) thread(s) (--threads); float32 reference (naive Swift loops, bp, same network "
        s += "and batch, one thread): \(String(format: "%.0f", refRate)) samples/s\n"
        return s
    }
}
