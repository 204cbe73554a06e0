import XCTest
import PDMMHost
@testable import PDMMEngine

/// The run layer shared by the host tool and the board program: the option
/// parser, the settings read from it, and the streaming CSV parser.
final class RunLayerTests: XCTestCase {
    func usage(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as UsageError { return e.message } catch { return "other: \(error)" }
        return nil
    }

    func testEveryTrainFlagIsAcceptedWithItsValue() throws {
        var argv: [String] = []
        for f in RunOptions.trainFlags.sorted() { argv += ["--\(f)", "v-\(f)"] }
        argv.append("--ideal-bp")
        let a = try Arguments(argv, valued: RunOptions.trainFlags, switches: RunOptions.trainSwitches)
        for f in RunOptions.trainFlags { XCTAssertEqual(a.string(f), "v-\(f)") }
        XCTAssertTrue(a.has("ideal-bp"))
        XCTAssertEqual(RunOptions.trainFlags.count, 38)
        for f in ["save", "resume", "checkpoint-every", "stop-after", "verified-column", "mode", "trace", "threads"] {
            XCTAssertTrue(RunOptions.trainFlags.contains(f), f)
        }
        XCTAssertEqual(RunOptions.evalFlags, ["model", "data", "label-column", "batch"])
    }

    /// `--threads`: the program's default when absent (the host: online cores; the board: 1),
    /// the value when given, refused above the team's maximum; the PDMM settings carry it too.
    func testThreadsOptionAndDefault() throws {
        let v = RunOptions.trainFlags
        XCTAssertEqual(try Arguments([], valued: v).runConfig().threads, 1)
        XCTAssertEqual(try Arguments([], valued: v).runConfig(defaultThreads: 3).threads, 3)
        let c = try Arguments(["--threads", "2"], valued: v).runConfig(defaultThreads: 4)
        XCTAssertEqual(c.threads, 2)
        XCTAssertEqual(try Arguments(["--threads", "2"], valued: v).pdmmConfig(c).threads, 2)
        XCTAssertEqual(usage { _ = try Arguments(["--threads", "0"], valued: v).runConfig() },
                       "--threads: must be at least 1, got 0")
        let over = WorkerTeam.maxThreads + 1
        XCTAssertEqual(usage { _ = try Arguments(["--threads", "\(over)"], valued: v).runConfig() },
                       "--threads: at most \(WorkerTeam.maxThreads)")
    }

    func testParserMessages() {
        let v = RunOptions.trainFlags, s = RunOptions.trainSwitches
        XCTAssertEqual(usage { _ = try Arguments(["--nope", "1"], valued: v, switches: s) }, "unknown flag --nope")
        XCTAssertEqual(usage { _ = try Arguments(["--epochs"], valued: v, switches: s) }, "--epochs needs a value")
        XCTAssertEqual(usage { _ = try Arguments(["--ideal-bp=1"], valued: v, switches: s) }, "--ideal-bp takes no value")
        XCTAssertEqual(usage { _ = try Arguments(["--epochs", "x"], valued: v).int("epochs", default: 1) },
                       "--epochs: 'x' is not an integer")
        XCTAssertEqual(usage { _ = try Arguments(["--epochs=-1"], valued: v).int("epochs", default: 1, min: 0) },
                       "--epochs: must be at least 0, got -1")
        XCTAssertEqual(usage { _ = try Arguments(["--lr", "inf"], valued: v).double("lr", default: 1) },
                       "--lr: 'inf' is not a number")
        XCTAssertEqual(usage { _ = try Arguments(["--budget", "12 parsecs"], valued: v).size("budget") },
                       "--budget: '12 parsecs' is not a size (examples: 4096, 512B, 64KiB, 2MiB)")
        XCTAssertEqual(usage { _ = try Arguments(["--mode", "fast"], valued: v).runConfig() },
                       "unknown mode 'fast' (expected bp, bp-checkpoint, local, blockwise, pdmm)")
        XCTAssertEqual(usage { _ = try Arguments(["--threshold", "1", "--error-fraction", "0.1"], valued: v)
                                   .pdmmConfig(RunConfig()) },
                       "give only one of --threshold-quantile, --threshold and --error-fraction (got --threshold, --error-fraction)")
        XCTAssertEqual(usage { _ = try Arguments(["--optimizer", "adam"], valued: v).optimizer() },
                       "unknown optimizer 'adam' (expected sgd, momentum, riemannian)")
    }

    func testValues() throws {
        let a = try Arguments(["--layers", "64, 32,10", "--batch=8", "--epochs", "3", "--lr", "0.125", "--seed", "9",
                               "--mode", "local", "--k", "2", "--budget", "1.5KiB", "--optimizer", "momentum",
                               "--momentum", "0.5", "--ideal-epochs", "4", "--ivc-target", "error-aware-copy",
                               "--lambda-max", "0.25", "--ideal-bp", "extra"],
                              valued: RunOptions.trainFlags, switches: RunOptions.trainSwitches)
        let c = try a.runConfig()
        XCTAssertEqual(c.widths, [64, 32, 10])
        XCTAssertEqual(c.batch, 8)
        XCTAssertEqual(c.epochs, 3)
        XCTAssertEqual(c.learningRate, 0.125)
        XCTAssertEqual(c.seed, 9)
        XCTAssertEqual(c.mode, .local(k: 2))
        XCTAssertEqual(c.budget, 1536)
        XCTAssertEqual(c.optimizer.name, OptimizerKind.momentum(mu: 0.5).name)
        let p = try a.pdmmConfig(c)
        XCTAssertEqual(p.k, 2)
        XCTAssertEqual(p.idealEpochs, 4)
        XCTAssertEqual(p.defectEpochs, 3)
        XCTAssertEqual(p.ivcTarget, .errorAwareCopy)
        XCTAssertEqual(p.lambdaMax, 0.25)
        XCTAssertTrue(p.idealBackprop)
        XCTAssertEqual(a.positional, ["extra"])
        XCTAssertEqual(try Arguments.parseSize("2MiB", flag: "b"), 2_097_152)
        XCTAssertEqual(try Arguments.parseSize(" 64KB ", flag: "b"), 64_000)
    }

    /// The chunked two-pass parse gives the array parse's data set for any chunk size
    /// (lines and a BOM split across chunks), and a failing stream is `unreadable`.
    func testStreamingParseEqualsArrayParse() throws {
        let text = "\u{FEFF}x1,x2,label\r\n1.5,-2,0\n\n  3,4e-1 ,1\r\n0.25,7,2"
        let bytes = Array(text.utf8)
        let whole = try CSVParser.parse(bytes)
        XCTAssertEqual(whole.count, 3)
        XCTAssertEqual(whole.header ?? [], ["x1", "x2", "label"])
        XCTAssertEqual(whole.feature(1, 1), 26214)  // 0.4 * 65536 rounded
        for chunk in [16, 17, 64] {
            var pos = 0
            let d = try CSVParser.parse(chunkBytes: chunk, rewind: { pos = 0; return true }, read: { buf in
                let n = min(buf.count, bytes.count - pos)
                for k in 0..<n { buf[k] = bytes[pos + k] }
                pos += n
                return n
            })
            XCTAssertEqual(d.count, whole.count)
            XCTAssertEqual(d.header ?? [], whole.header ?? [])
            for s in 0..<d.count {
                XCTAssertEqual(d.label(s), whole.label(s))
                for f in 0..<d.featureCount { XCTAssertEqual(d.feature(s, f), whole.feature(s, f)) }
            }
        }
        XCTAssertThrowsError(try CSVParser.parse(rewind: { true }, read: { _ in -1 })) { e in
            XCTAssertEqual(e as? CSVError, .unreadable)
        }
        XCTAssertThrowsError(try CSVParser.parse(rewind: { false }, read: { _ in 0 })) { e in
            XCTAssertEqual(e as? CSVError, .unreadable)
        }
        // A ragged line keeps its line number (blank lines counted).
        XCTAssertThrowsError(try CSVParser.parse(Array("1,0\n\n2,1,3\n".utf8))) { e in
            XCTAssertEqual((e as? CSVError)?.message, "line 3: expected 2 fields, found 3")
        }
    }

    /// `Run.train` with `--stop-after` and `--save`, then `--resume`: the same hash as one
    /// uninterrupted run (the loop both programs run).
    func testStopSaveResumeMatchesOneRun() throws {
        let (train, test, scaling) = Run.split(BuiltinData.digits(), seed: 3)
        let shape = try NetworkShape(widths: [64, 16, 10])
        func trainer(_ m: Model) throws -> Trainer {
            m.scaling = scaling
            return try Trainer(model: m, batch: 16, mode: .local(k: 1), optimizer: .sgd,
                               options: TrainingOptions(learningRate: 0.05, seed: 3), budget: Int.max)
        }
        let full = try Run.train(trainer(Model(shape: shape, seed: 3)), epochs: 3, train: train, test: test)
        var saved: Checkpoint?
        let io = RunIO(loadCSV: { _, _, _ throws(RunError) in throw .data("no") }, builtinData: { BuiltinData.digits() },
                       readCheckpoint: { _ throws(RunError) in saved! }, writeCheckpoint: { c, _ in saved = c })
        var stopped = false
        do {
            _ = try Run.train(trainer(Model(shape: shape, seed: 3)), epochs: 3, train: train, test: test,
                              policy: CheckpointPolicy(path: "x", every: 1, stopAfter: 2), io: io)
        } catch let e as RunError {
            if case .stopped = e { stopped = true }
            XCTAssertEqual(e.exitCode, 3)
        }
        XCTAssertTrue(stopped)
        XCTAssertEqual(saved?.epochsDone, 2)  // saved after epochs 1 and 2, then stopped
        let resumed = try Run.train(trainer(Model(shape: shape, seed: 3)), epochs: 3, train: train, test: test,
                                    resume: saved)
        XCTAssertEqual(resumed.weightsHash, full.weightsHash)
        XCTAssertEqual(resumed.testEval, full.testEval)
    }

    /// The in-place split (the data set's buffers become the training split's) gives
    /// exactly the copying split's samples, labels, flags and scaling.
    func testSplitConsumingEqualsCopyingSplit() throws {
        func make() throws -> Dataset {
            var f: [Int32] = [], l: [Int32] = []
            for i in 0..<97 { f += [Int32(i * 977 % 65536), Int32(-i * 131), Int32(i * i)]; l.append(Int32(i % 4)) }
            let d = try Dataset(featureCount: 3, classes: 4, features: f, labels: l)
            d.verified = (0..<97).map { $0 % 3 == 0 }
            return d
        }
        let kept = try make()
        let a = Run.split(kept, seed: 5)
        var owned: Dataset? = try make()
        let b = Run.split(consuming: &owned, seed: 5)
        XCTAssertNil(owned)
        XCTAssertEqual(a.scaling, b.scaling)
        for (x, y) in [(a.train, b.train), (a.test, b.test)] {
            XCTAssertEqual(x.count, y.count)
            XCTAssertEqual(x.verified, y.verified)
            for s in 0..<x.count {
                XCTAssertEqual(x.label(s), y.label(s))
                for j in 0..<3 { XCTAssertEqual(x.feature(s, j), y.feature(s, j)) }
            }
        }
        XCTAssertEqual(a.train.count, 77)
        XCTAssertEqual(kept.count, 97)  // the copying split leaves its input alone
    }

    /// The board's integer-only decimal text.
    func testDecimalText() {
        XCTAssertEqual(DecimalText.percent(347, 360), "96.39%")
        XCTAssertEqual(DecimalText.percent(1, 8), "12.50%")
        XCTAssertEqual(DecimalText.percent(0, 0), "0.00%")
        XCTAssertEqual(DecimalText.ratio(1, over: 8, digits: 2), "0.13")  // 0.125: half up
        XCTAssertEqual(DecimalText.ratioEven(1, over: 8, digits: 2), "0.12")  // the tie to even, as printf
        XCTAssertEqual(DecimalText.ratioEven(-98304, over: 65536, digits: 0), "-2")
        XCTAssertEqual(DecimalText.ratioEven(-1, over: 65536, digits: 4), "0.0000")  // no "-0.0000"
        var s = PassStats()
        s.lossSum = -3 * 65536
        s.samples = 2
        XCTAssertEqual(DecimalText.meanLoss(s), "-1.5000")
        XCTAssertEqual(DecimalText.padLeft("7", 3) + "|" + DecimalText.padRight("ab", 4) + "|", "  7|ab  |")
    }
}
