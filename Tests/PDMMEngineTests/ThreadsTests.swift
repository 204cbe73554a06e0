import PDMMHost
import XCTest
@testable import PDMMEngine

/// Deterministic threads: the weights (hash), saturations and MAC counts of a run
/// are the same for 1...4 worker threads; the plan counts one scratch per worker
/// (measured == planned to the byte); steady-state steps allocate nothing.
final class ThreadsTests: XCTestCase {
    static let cnn = "1x8x8: conv 6 3x3 same, relu, maxpool 2x2, conv 8 3x3 same, relu, flatten, dense 32, relu, dense 10"

    /// Trains on the built-in digits (seeded split) with `threads` workers.
    func digits(threads: Int, mode: TrainingMode, optimizer: OptimizerKind = .sgd, epochs: Int = 3,
                net: String? = nil) throws -> RunResult {
        var cfg = RunConfig()
        cfg.mode = mode
        cfg.optimizer = optimizer
        cfg.epochs = epochs
        cfg.threads = threads
        if let net {
            cfg.network = try NetworkShape(spec: NetworkSpec.parse(net))
            cfg.widths = cfg.network!.widths
        }
        let (train, test, scaling) = Run.split(BuiltinData.digits(), seed: cfg.seed,
                                                  channels: cfg.network.flatMap { NetworkOptions.scalingChannels($0) })
        let r = try runTraining(cfg, train: train, test: test, scaling: scaling).0
        XCTAssertEqual(r.measured, r.plan.bytes, "measured == planned, \(threads) threads \(mode.name)")
        XCTAssertEqual(r.plan.threads, threads)
        return r
    }

    func testDenseHashesEqualForOneToFourThreads() throws {
        let runs: [(TrainingMode, OptimizerKind)] = [
            (.bp, .sgd), (.local(k: 2), .sgd), (.blockwise(k: 2), .momentum(mu: 0.9)),
            (.bpCheckpoint, .riemannian(alpha: 2, rho: 0.9, phi: .gradSquared)),
            (.bp, .riemannian(alpha: 2, rho: 0.9, phi: .weightMagnitude)),
        ]
        for (mode, opt) in runs {
            let one = try digits(threads: 1, mode: mode, optimizer: opt)
            XCTAssertGreaterThan(one.testAccuracy, 0.5, "\(mode.name) \(opt.name) learns")
            for n in 2...4 {
                let r = try digits(threads: n, mode: mode, optimizer: opt)
                let what = "\(mode.name) \(opt.name) \(n) threads"
                XCTAssertEqual(Hex.format(r.weightsHash), Hex.format(one.weightsHash), what)
                XCTAssertEqual(r.saturations, one.saturations, what)
                XCTAssertEqual(r.macs, one.macs, what)
                XCTAssertEqual(r.finalLoss, one.finalLoss, what)
            }
        }
    }

    /// The README's golden digits hash (bp, 30 epochs) with 2 worker threads.
    func testGoldenDigitsHashWithTwoThreads() throws {
        let r = try digits(threads: 2, mode: .bp, epochs: 30)
        XCTAssertEqual(Hex.format(r.weightsHash), "3a342e6349c4f03f")
    }

    func testCNNHashesEqualForOneToFourThreads() throws {
        for opt in [OptimizerKind.sgd, .riemannian(alpha: 2, rho: 0.9, phi: .gradSquared)] {
            for mode in [TrainingMode.bp, .local(k: 2)] {
                let one = try digits(threads: 1, mode: mode, optimizer: opt, epochs: 2, net: Self.cnn)
                XCTAssertGreaterThan(one.testAccuracy, 0.3, "CNN \(mode.name) \(opt.name) learns")
                for n in 2...4 {
                    let r = try digits(threads: n, mode: mode, optimizer: opt, epochs: 2, net: Self.cnn)
                    let what = "CNN \(mode.name) \(opt.name) \(n) threads"
                    XCTAssertEqual(Hex.format(r.weightsHash), Hex.format(one.weightsHash), what)
                    XCTAssertEqual(r.saturations, one.saturations, what)
                }
            }
        }
    }

    /// Scratch is planned per worker: threads x the single-threaded scratch, nothing else changes.
    func testPlanCountsOneScratchPerWorker() throws {
        let shapes = [try NetworkShape(widths: [784, 256, 256, 256, 10]),
                      try NetworkShape(spec: NetworkSpec.parse(Self.cnn))]
        for s in shapes {
            for opt in [OptimizerKind.sgd, .momentum(mu: 0.9), .riemannian(alpha: 1, rho: 0.5, phi: .gradSquared)] {
                let one = try MemoryPlan(shape: s, batch: 32, mode: .bp, optimizer: opt)
                for n in 1...4 {
                    let p = try MemoryPlan(shape: s, batch: 32, mode: .bp, optimizer: opt, threads: n)
                    XCTAssertEqual(p.bytes.scratch, n * one.bytes.scratch, "\(s.description) \(opt.name) \(n)")
                    var rest = p.bytes
                    rest.scratch = one.bytes.scratch
                    XCTAssertEqual(rest, one.bytes)
                }
            }
        }
        XCTAssertGreaterThan(try MemoryPlan(shape: shapes[0], batch: 32, mode: .bp, optimizer: .sgd).bytes.scratch, 0)
        XCTAssertThrowsError(try MemoryPlan(shape: shapes[0], batch: 32, mode: .bp, optimizer: .sgd, threads: 0))
        XCTAssertThrowsError(try WorkerTeam(threads: WorkerTeam.maxThreads + 1))
        XCTAssertEqual(try WorkerTeam(threads: 3).count, 3)
    }

    /// Measured == planned per category with 3 threads, dense and CNN, every optimizer, a few modes.
    func testMeasuredEqualsPlannedWithThreads() throws {
        let shapes = [try NetworkShape(widths: [40, 64, 48, 32, 5]),
                      try NetworkShape(spec: NetworkSpec.parse(Self.cnn))]
        for s in shapes {
            let data = syntheticData(features: s.inputWidth, classes: s.classCount, count: 65, seed: 3)
            for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 2), .blockwise(k: 2)] {
                for opt in [OptimizerKind.sgd, .momentum(mu: 0.9), .riemannian(alpha: 2, rho: 0.9, phi: .gradSquared)] {
                    let t = try Trainer(model: Model(shape: s, seed: 1), batch: 32, mode: mode, optimizer: opt,
                                        options: TrainingOptions(seed: 1, threads: 3), budget: 1 << 24)
                    for st in 0..<t.stageCount {
                        t.beginStage(st)
                        _ = try t.trainEpoch(data, epoch: st)
                    }
                    t.endStage()
                    XCTAssertEqual(t.team.count, 3)
                    for c in MemoryCategory.allCases {
                        XCTAssertEqual(t.arena.peak[c], t.plan.bytes[c], "\(s.description) \(mode.name) \(opt.name) \(c.name)")
                    }
                }
            }
        }
    }

    func testThreadedStepsAllocateNothingInSteadyState() throws {
        try requireMallocCounter()
        let shapes = [try NetworkShape(widths: [128, 128, 128, 10]), try NetworkShape(spec: NetworkSpec.parse(Self.cnn))]
        for s in shapes {
            for opt in [OptimizerKind.sgd, .momentum(mu: 0.5), .riemannian(alpha: 2, rho: 0.9, phi: .gradSquared)] {
                for n in [2, 4] {
                    let data = syntheticData(features: s.inputWidth, classes: s.classCount, count: 320, seed: 2)
                    let t = try Trainer(model: Model(shape: s, seed: 1), batch: 32, mode: .bp, optimizer: opt,
                                        options: TrainingOptions(threads: n), budget: 1 << 22)
                    t.beginStage(0)
                    try assertStepsAllocateNothing(t, data, epochs: 5, "\(s.description) \(opt.name) \(n) threads")
                }
            }
        }
    }

    /// The PDMM pipeline (every phase's trainers) with 1 and 3 threads: the same models,
    /// measured == planned per phase.
    func testPDMMPipelineSameModelsWithThreads() throws {
        func run(_ threads: Int) throws -> PDMMPipeline {
            var c = PDMMConfig()
            c.threshold = .fraction(0.1)
            c.idealEpochs = 2
            c.defectEpochs = 2
            c.ivcPeriod = 2
            c.threads = threads
            let data = syntheticData(features: 64, classes: 4, count: 400, seed: 5)
            let p = try PDMMPipeline(shape: try NetworkShape(widths: [64, 128, 128, 4]), config: c, train: data)
            try p.learnIdeal()
            try p.separate()
            try p.learnDefects()
            for ph in p.phases { XCTAssertEqual(ph.measured, ph.planned, "\(threads) threads: \(ph.name)") }
            return p
        }
        let one = try run(1), three = try run(3)
        XCTAssertGreaterThan(one.ivcCount, 0)
        XCTAssertEqual(one.stable.weightsHash, three.stable.weightsHash)
        XCTAssertEqual(one.errorAware.weightsHash, three.errorAware.weightsHash)
    }
}
