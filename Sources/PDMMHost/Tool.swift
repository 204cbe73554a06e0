import Foundation
import PDMMEngine

/// The `pdmm` command-line tool as a library: `Tool.run` takes the arguments
/// and returns an exit code; output goes through the two sinks (the
/// executable prints them; tests collect them).
public final class Tool {
    public var out: (String) -> Void
    public var err: (String) -> Void

    public init(out: @escaping (String) -> Void, err: @escaping (String) -> Void) {
        self.out = out
        self.err = err
    }

    public static let usage = """
    pdmm -- Q16.16 training runtime: memory reports, training runs, claims, benchmarks

    USAGE: pdmm <command> [options]   (pdmm <command> --help for its options)

    COMMANDS:
      report   planned and measured bytes per category for every training mode
      train    train a network (built-in digits data unless --data)
      eval     evaluate a saved model (checkpoint) on data
      fit      the largest batch and the deepest k that fit a budget, per mode
      bench    kernel and training-step benchmarks, float32 reference in the same process
      claims   checks each claim of the PDMM document on the built-in data
      compare  the PDMM pipeline beside bp and bp-checkpoint, same epochs
      noise    label noise: the Error Group against the flipped samples, bp and PDMM per level
      reference  train the float32 reference and print its accuracy
    """

    /// Runs one command line (without the program name). 0 = ok, 1 = failure, 2 = usage.
    public func run(_ argv: [String]) -> Int32 {
        guard let cmd = argv.first else {
            err(Tool.usage)
            return 2
        }
        let rest = Array(argv.dropFirst())
        do {
            if rest.contains("--help") || rest.contains("-h") {
                out(Tool.help(cmd) ?? Tool.usage)
                return Tool.help(cmd) == nil ? 2 : 0
            }
            switch cmd {
            case "--help", "-h", "help": out(Tool.usage); return 0
            case "report": return try report(rest)
            case "train": return try train(rest)
            case "fit": return try fit(rest)
            case "bench": return try bench(rest)
            case "reference": return try reference(rest)
            case "compare": return try compare(rest)
            case "noise": return try noise(rest)
            case "claims": return try claims(rest)
            case "eval": return try eval(rest)
            default: throw UsageError("unknown command '\(cmd)' (try pdmm --help)")
            }
        } catch let e as UsageError {
            err("pdmm: \(e.message)")
            return 2
        } catch let e as EngineError {
            err("pdmm: \(e.message)")
            return 2
        } catch let e as RunError {
            err("pdmm: \(e.message)")
            return e.exitCode
        } catch let e as DataError {
            err("pdmm: \(e.message)")
            return 2
        } catch {
            err("pdmm: \(error)")
            return 1
        }
    }

    static func help(_ cmd: String) -> String? {
        switch cmd {
        case "report":
            return """
            pdmm report [--layers 64,128,128,128,10 | --net TEXT] [--input-shape CxHxW] [--batch 32] [--k 1,2,3] [--budget SIZE]
                        [--optimizer sgd|momentum] [--format md|csv|json] [--svg FILE] [--seed N]
              Plans every mode (bp, bp-checkpoint, local(k), blockwise(k)) and measures it by
              running real steps in its arena (built-in digits data when the network reads 64
              features into 10 classes, synthetic data of the right shape otherwise). --net as in
              pdmm train --help. SIZE: 4096, 512B, 64KiB, 2MiB.
            """
        case "train":
            return """
            pdmm train [--data FILE.csv] [--layers 64,128,128,128,10 | --net TEXT] [--input-shape CxHxW]
                       [--mode bp|bp-checkpoint|local|blockwise]
                       [--k N] [--epochs N] [--batch N] [--budget SIZE] [--optimizer sgd|momentum]
                       [--momentum MU] [--lr X] [--seed N] [--label-column N|NAME]
                       [--save FILE [--checkpoint-every N]] [--resume FILE] [--stop-after N] [--threads N]
              --threads N: worker threads of the kernels (default: the online cores, at most 4); the
              weights (and their hash) are the same for every N.
              --save writes an atomic checkpoint after every N epochs; --resume continues a saved
              run bit-identically; --stop-after N stops after N epochs (exit 3), as a crash would.
              --net "1x28x28: conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 10": a layer graph
              (dense N, conv F KHxKW [stride S] [same|valid], maxpool PHxPW, avgpool PHxPW, relu,
              flatten); the INPUT: prefix may be left out when --input-shape gives it (CSV features
              in channel-major order; 1-D series are C x 1 x W).
              Seeded 80/20 split; feature scaling from the training split (per channel for image and
              series inputs, else per feature). A progress line per epoch on stderr, the summary on stdout.
              --optimizer riemannian [--riemann-alpha A] [--riemann-rho R] [--phi grad2|absw]
              --mode pdmm: [--k N] [--ideal-select verified|confident|random] [--ideal-fraction F] [--verified-column N|NAME]
                 [--selection-epochs N] [--holdout-fraction F] [--ideal-epochs N] [--ideal-bp]
                 [--threshold-quantile Q | --threshold NATS | --error-fraction F]
                 [--ivc-target ideal|error-aware-copy] [--ivc-period STEPS] [--alpha A] [--beta B] [--gamma G]
                 [--lambda-max L]  (0 <= L < 1)  [--trace FILE]
                 D_Ideal: verified when the data has a --verified-column, else confident: per class the fraction
                 F (default 0.2) with the highest 3-fold out-of-fold probability of their own label (bp runs of
                 --selection-epochs, default 10); random: a seeded stratified F, for comparison. --holdout-fraction
                 (0.2) of D_Ideal is held out from G_Ideal's training. I_threshold: by default the Q = 0.95-quantile
                 of G_Ideal's deviations on that held-out part (|E| is then an outcome); --threshold and
                 --error-fraction set it instead. IVC updates G_Ideal's top k layers (Theorem 1) or, with
                 --ivc-target error-aware-copy, the copy trained on E. --trace FILE writes step,U_E,L_BP,L_Delta
                 per IVC step as CSV.
            """
        case "eval":
            return """
            pdmm eval --model FILE [--data FILE.csv] [--label-column N|NAME] [--batch N]
              Evaluates a checkpoint written by `pdmm train --save FILE`: on --data (all samples, scaled
              with the model's stored feature statistics) or on the built-in data's test split.
            """
        case "fit":
            return """
            pdmm fit --budget SIZE [--layers ... | --net TEXT] [--input-shape CxHxW] [--optimizer sgd|momentum]
              For each mode: the largest batch that fits the budget, and for local/blockwise the
              largest k that fits at batch 1 and at --batch (default 32).
            """
        case "bench":
            return """
            pdmm bench [kernels|train|conv] [--seconds S] [--threads N]
              kernels: GEMM GMAC/s at 64..512 next to a float32 GEMM in the same process.
              train: samples/s and MAC/s per mode on the built-in data, float32 reference beside
              (the Q16.16 runs on N worker threads; default: the online cores, at most 4).
              conv: 3x3 (and 1-D) convolution forward / backward GMAC/s next to the GEMM and float32.
            """
        case "claims":
            return """
            pdmm claims [--epochs 30] [--k 2] [--seed 1] [--target 0.95] [--cnn-only]
                        [--net TEXT [--input-shape CxHxW]] [--cnn-batch 32] [--noise-epochs 20] [--no-noise]
              Runs bp, local(k) and the PDMM pipeline on the built-in data and prints each claim of
              the PDMM document (L/k activation memory, 25x memory, 48x compute, 10x epochs),
              the measured value, a verdict and the command that reproduces the row; then the CNN
              block: the same memory claims on a CNN where activations dominate (--net picks another).
            """
        case "compare":
            return """
            pdmm compare [--data FILE.csv] [--layers ... | --net TEXT] [--input-shape CxHxW] [--k N] [--epochs N] [--batch N] [--lr X] [--seed N]
                         [PDMM options as in pdmm train --help]
              Trains bp, bp-checkpoint and the PDMM pipeline for the same number of epochs and
              prints accuracy, planned/measured peak bytes, MACs and wall time side by side.
              --curve FILE.csv [--svg FILE.svg]: test accuracy per epoch of bp and of the PDMM pipeline
              per phase (G_Ideal per ideal epoch; G_Ideal, error-aware and A_final per defect epoch;
              columns run,phase,model,epoch,cumulative_epochs,data_epochs,test_accuracy), the SVG of
              accuracy vs cumulative epochs and vs data epochs, and "epochs to X %" read off them.
            """
        case "noise":
            return """
            pdmm noise [--data FILE.csv] [--layers ... | --net TEXT] [--input-shape CxHxW] [--levels 0,10,20,40]
                       [--epochs N] [--k N] [--batch N] [--lr X] [--seed N] [PDMM options as in pdmm train --help]
              Per level, flips that percentage of the training split's labels (seeded, each to another
              class; test labels never), trains bp and the PDMM pipeline on the noisy data, and prints
              |E|, the Error Group's precision and recall against the flipped samples of D_new, the same
              for the |E| highest-loss samples of D_new under the bp model, and the test accuracy of bp,
              the stable head and A_final: one Markdown row per level.
            """
        case "reference":
            return """
            pdmm reference [--data FILE.csv] [--layers ... | --net TEXT] [--input-shape CxHxW] [--epochs N] [--batch N] [--lr X] [--seed N]
              Trains the float32 reference exactly as `pdmm train` trains bp (same data, split, scaling,
              network, initial weights, batch order, lr), then the Q16.16 bp run, and prints both.
            """
        default: return nil
        }
    }

    // MARK: shared option parsing

    /// `--threads`' default: the online cores, at most 4 (the weights are the same for every count).
    static var defaultThreads: Int {
        min(max(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 1), 4)
    }

    /// The host's I/O for the shared run layer (`Run`): Foundation files, gzip, atomic checkpoints.
    var io: RunIO {
        RunIO(loadCSV: { (path, label, verified) throws(RunError) -> Dataset in
            let data: Dataset
            do { data = try CSVLoader.load(path: path, labelColumn: label, verifiedColumn: verified) } catch {
                throw .data((error as? DataError)?.message ?? "\(path): \(error)")
            }
            if let h = data.header { self.err("pdmm: " + CSVParser.headerNote(h, file: path)) }
            return data
        }, builtinData: { BuiltinData.digits() },
        readCheckpoint: { (path) throws(RunError) -> Checkpoint in
            do { return try CheckpointFile.load(path) } catch { throw .data((error as? DataError)?.message ?? "\(error)") }
        }, writeCheckpoint: { (c, path) throws(RunError) in
            do { try CheckpointFile.save(c, to: path) } catch { throw .data((error as? DataError)?.message ?? "\(error)") }
        }, defaultThreads: Tool.defaultThreads)
    }

    /// What every run command starts from: the data (`--data` or the built-in set),
    /// its network (`Arguments.network`, recorded in `cfg`) and the seeded 80/20 split
    /// scaled from the training part (per channel for image and series inputs).
    func preparedRun(_ a: Arguments, _ cfg: inout RunConfig) throws
        -> (shape: NetworkShape, train: Dataset, test: Dataset, scaling: FeatureScaling) {
        let data = try loadData(a)
        let shape = try a.network(features: data.featureCount, classes: data.classes)
        cfg.network = shape
        let (train, test, scaling) = Run.split(data, seed: cfg.seed, channels: NetworkOptions.scalingChannels(shape))
        return (shape, train, test, scaling)
    }

    func loadData(_ a: Arguments) throws -> Dataset {
        guard let path = a.string("data") else { return BuiltinData.digits() }
        return try io.loadCSV(path, a.string("label-column"), a.string("verified-column"))
    }

    // MARK: train

    func train(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: RunOptions.trainFlags, switches: RunOptions.trainSwitches)
        let io = self.io
        let p = try Run.prepare(a, io: io)
        let cfg = p.config, train = p.train, test = p.test
        if p.isPDMM {
            let pc = try a.pdmmConfig(cfg)
            let r = try runPDMM(pc, shape: p.shape, train: train, test: test)
            if let budget = cfg.budget, r.peakPlanned > budget {
                throw UsageError("the PDMM pipeline's peak (\(r.peakPlanned) B) exceeds the budget (\(budget) B)")
            }
            try writePDMMTrace(a, r)
            out(PDMMText.summary(r) + "\nstable model hash \(Hex.format(r.stableHash))\nweights hash \(Hex.format(r.hash))")
            return 0
        }
        let sat = train.saturatedValues + test.saturatedValues
        if sat > 0 { err("pdmm: warning: \(sat) feature values saturated to the Q16.16 range after scaling") }
        let totalEpochs = cfg.epochs * (try MemoryPlan(shape: p.shape, batch: cfg.batch,
                                                       mode: cfg.mode, optimizer: cfg.optimizer).stages.count)
        var done = 0
        let (r, _) = try runTraining(cfg, train: train, test: test, scaling: p.scaling, resume: p.resume,
                                     policy: p.policy, io: io) { stage, e, tr, te, t, trainer in
            done += 1
            let left = t / Double(done) * Double(totalEpochs - done)
            self.err(String(format: "stage %d epoch %3d  loss %.4f  train %.2f%%  test %.2f%%  saturations %llu  peak %d B  %6.0f samples/s  %.1fs left",
                            stage, e + 1, Double(tr.lossSum) / 65536 / Double(tr.samples),
                            100 * Double(tr.correct) / Double(tr.samples),
                            100 * Double(te.correct) / Double(max(te.samples, 1)), trainer.saturations,
                            trainer.arena.peak.writable, Double(done * train.count) / max(t, 1e-9), left))
        }
        out(trainSummary(r, trainCount: train.count, testCount: test.count))
        return 0
    }

    func eval(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: RunOptions.evalFlags)
        let r = try Run.evaluate(a, io: io)
        out(String(format: "model %@ (%@, %@): accuracy %.2f%% on %@, mean loss %.4f", a.string("model")!,
                   r.shape.description, r.checkpoint.mode.name, 100 * Double(r.stats.correct) / Double(r.stats.samples),
                   r.what, Double(r.stats.lossSum) / 65536 / Double(r.stats.samples)))
        return 0
    }

    func trainSummary(_ r: RunResult, trainCount: Int, testCount: Int) -> String {
        var s = "mode \(r.config.mode.name), layers \(r.plan.shape.description), batch \(r.config.batch), threads \(r.config.threads), "
        s += "epochs \(r.config.epochs), optimizer \(r.config.optimizer.name), lr \(r.config.learningRate), seed \(r.config.seed)\n"
        s += "split: seeded 80/20 (\(trainCount) train / \(testCount) test)\n"
        s += String(format: "train accuracy %.2f%%  test accuracy %.2f%%  final loss %.4f\n",
                    100 * r.trainAccuracy, 100 * r.testAccuracy, r.finalLoss)
        s += "peak writable: planned \(r.plan.peakWritable) B, measured \(r.measured.writable) B; read-only \(r.measured.weightsFrozen) B\n"
        s += "MACs: forward \(r.macs.forward) backward \(r.macs.backward) recompute \(r.macs.recompute) update \(r.macs.update)\n"
        s += "saturations \(r.saturations)  steps \(r.steps)  time \(String(format: "%.2f", r.seconds)) s\n"
        s += "weights hash \(Hex.format(r.weightsHash))"
        return s
    }

    // MARK: reference

    /// `pdmm reference`: the float32 reference and the Q16.16 bp run side by side:
    /// same data, split, scaling, network, initial weights, batch order and lr.
    func reference(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["data", "label-column", "layers", "net", "input-shape", "epochs", "batch", "threads",
                                             "lr", "seed"])
        var cfg = try a.runConfig(defaultThreads: Tool.defaultThreads)
        cfg.mode = .bp
        cfg.optimizer = .sgd
        let (shape, train, test, scaling) = try preparedRun(a, &cfg)
        let ref = FloatReference(model: Model(shape: shape, seed: cfg.seed))
        ref.train(train, epochs: cfg.epochs, batch: cfg.batch, learningRate: Float(cfg.learningRate), seed: cfg.seed)
        let f = ref.accuracy(test)
        let (r, _) = try runTraining(cfg, train: train, test: test, scaling: scaling)
        out(String(format: "float32 reference: layers %@ batch %d epochs %d lr %g seed %d: test accuracy %.2f%% (%d test samples)",
                   shape.description, cfg.batch, cfg.epochs, cfg.learningRate, Int(cfg.seed), 100 * f, test.count))
        out(String(format: "Q16.16 bp, same split, weights and order: test accuracy %.2f%% (difference %+.2f pp), weights hash %@",
                   100 * r.testAccuracy, 100 * (r.testAccuracy - f), Hex.format(r.weightsHash)))
        return 0
    }
}

func NetworkShapeText(_ w: [Int]) -> String { w.map(String.init).joined(separator: "-") }
