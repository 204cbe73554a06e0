import CFixed
import XCTest
@testable import PDMMEngine

/// Issue 10: extreme sizes are refused or computed exactly, and no public call
/// reads or writes outside memory it owns for any argument values.
final class SafetyTests: XCTestCase {
    // MARK: initialisation and sizes

    /// The He bound for every fan-in a width allows, against a double model of its two
    /// documented roundings (6 / fanIn to the nearest Q16.16 word, then the correctly
    /// rounded square root): exact. Against the ideal sqrt(6 / fanIn) the first rounding
    /// (0.5 LSB of a ratio >= 6 LSB) bounds the relative error by 0.5 / 6 / 2 < 4.2 %.
    func testHeBoundMatchesItsDoubleModelForEveryFanIn() {
        var mismatches = 0, worstRelative = 0.0, at = 0
        for fanIn in 1...65_535 {
            let got = Double(Model.heBound(fanIn: fanIn))
            let ratio = (6.0 * 65536 / Double(fanIn)).rounded(.toNearestOrAwayFromZero)
            if got != (ratio * 65536).squareRoot().rounded(.toNearestOrAwayFromZero) { mismatches += 1 }
            let ideal = (6.0 / Double(fanIn)).squareRoot() * 65536
            if abs(got - ideal) / ideal > worstRelative { worstRelative = abs(got - ideal) / ideal; at = fanIn }
        }
        print("SafetyTests: heBound: 65535 fan-ins, \(mismatches) mismatches, worst relative error \(worstRelative) at fanIn \(at)")
        XCTAssertEqual(mismatches, 0)
        XCTAssertLessThan(worstRelative, 0.042)
    }

    /// Widths >= 32768 used to overflow `Int32(fanIn) << 16`, and the discarded
    /// sqrt status made every weight 0.
    func testWideLayersGetNonZeroWeightsWithinTheBound() throws {
        let model = Model(shape: try NetworkShape(widths: [40_000, 3]), seed: 5)
        let a = Model.heBound(fanIn: 40_000)  // 810: sqrt(6 / 40000) = 0.01225 = 802.7 LSB, +0.9 %
        XCTAssertEqual(Double(a), (6.0 / 40_000).squareRoot() * 65536, accuracy: 0.042 * 802.7)
        var nonZero = 0, maxAbs: Int32 = 0
        for i in 0..<(3 * 40_000) {
            if model[i] != 0 { nonZero += 1 }
            maxAbs = max(maxAbs, abs(model[i]))
        }
        XCTAssertGreaterThan(nonZero, 3 * 40_000 * 9 / 10)
        XCTAssertLessThanOrEqual(Int64(maxAbs), a)
        XCTAssertGreaterThan(Int64(maxAbs), a * 9 / 10)
    }

    /// The entropy normaliser ln(classes) used `Int32(classes) << 16` too.
    func testEntropyOfManyClassesIsNormalised() throws {
        let classes = 40_000
        let model = Model(shape: try NetworkShape(widths: [2, classes]), seed: 1)
        for i in 0..<model.parameterCount { model[i] = 0 }  // uniform output: entropy = ln(classes)
        let data = try Dataset(featureCount: 2, classes: classes, features: [1 << 16, 0, 0, 1 << 16], labels: [0, 39_999])
        let t = try Trainer(model: model, batch: 2, mode: .bp, optimizer: .sgd, options: TrainingOptions(),
                            budget: 1 << 22)
        t.beginStage(0)
        let u = try t.normalizedEntropy(data)
        XCTAssertEqual(Double(u) / 65536, 1.0, accuracy: 0.001)
        XCTAssertEqual(Double(Kernels.logOfInteger(classes)) / 65536, log(Double(classes)), accuracy: 2.0 / 65536)
        XCTAssertEqual(Double(Kernels.logOfInteger(32_767)) / 65536, log(32_767.0), accuracy: 1.0 / 65536)
    }

    /// A layer the engine cannot index is refused by the shape, before any allocation.
    func testOversizedLayersAndBatchesAreRefusedBeforeAllocation() {
        XCTAssertThrowsError(try NetworkShape(widths: [65_535, 65_535])) { e in
            XCTAssertEqual((e as? EngineError)?.message,
                           "layer 1 (65535 x 65535 weights + 65535 biases, more than 33554432 words) is too large: the engine indexes at most 33554432 words (128 MiB) per model, layer or batch")
        }
        XCTAssertThrowsError(try NetworkShape(widths: [4096, 4096, 4096, 10])) { e in
            XCTAssertEqual((e as? EngineError)?.message,
                           "the model (more than 33554432 parameter words) is too large: the engine indexes at most 33554432 words (128 MiB) per model, layer or batch")
        }
        XCTAssertNoThrow(try NetworkShape(widths: [4096, 4096, 10]))
        XCTAssertThrowsError(try MemoryPlan(shape: NetworkShape(widths: [1000, 10]), batch: 40_000, mode: .bp,
                                            optimizer: .sgd)) { e in
            XCTAssertEqual((e as? EngineError)?.message,
                           "batch 40000 x the sum of the widths is too large: the engine indexes at most 33554432 words (128 MiB) per model, layer or batch")
        }
    }

    // MARK: the public API with bad arguments

    func smallTrainer(calibration: Bool = false) throws -> (Trainer, Dataset) {
        let model = Model(shape: try NetworkShape(widths: [4, 6, 3]), seed: 2)
        let t = try Trainer(model: model, batch: 4, mode: .bp, optimizer: .sgd, options: TrainingOptions(),
                            budget: 1 << 16, calibration: calibration)
        var f: [Int32] = [], l: [Int32] = []
        for i in 0..<10 {
            for j in 0..<4 { f.append(Int32((i * 7 + j * 3) % 5 - 2) << 15) }
            l.append(Int32(i % 3))
        }
        return (t, try Dataset(featureCount: 4, classes: 3, features: f, labels: l))
    }

    func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as EngineError { return e.message } catch { return "\(error)" }
        return nil
    }

    /// `trainBatch` and `calibrate` skipped `validate`: a data set of the wrong
    /// width was read out of bounds (the input copy used the network's width).
    func testTrainBatchAndCalibrateValidateTheirData() throws {
        let (t, data) = try smallTrainer(calibration: true)
        let wide = try Dataset(featureCount: 9, classes: 3, features: [Int32](repeating: 1, count: 18), labels: [0, 1])
        let manyClasses = try Dataset(featureCount: 4, classes: 7, features: [Int32](repeating: 0, count: 8), labels: [0, 6])
        XCTAssertEqual(message { _ = try t.trainBatch(data, epoch: 0, start: 0) },
                       "trainBatch: no stage begun: call beginStage first")
        t.beginStage(0)
        let before = t.model.weightsHash
        XCTAssertEqual(message { _ = try t.trainBatch(wide, epoch: 0, start: 0) },
                       "the network's input width is 4 but the data has 9 features")
        XCTAssertEqual(message { try t.calibrate(wide, start: 0, gradRate: 0.1, pullRate: 0.1) },
                       "the network's input width is 4 but the data has 9 features")
        XCTAssertEqual(message { _ = try t.trainBatch(manyClasses, epoch: 0, start: 0) },
                       "sample 1 has label 6, outside 0..<3")
        XCTAssertEqual(message { _ = try t.trainBatch(data, epoch: 0, start: 10) }, "start: 10 is outside 0..<10")
        XCTAssertEqual(message { _ = try t.trainBatch(data, epoch: 0, start: -1) }, "start: -1 is outside 0..<10")
        XCTAssertEqual(message { try t.calibrate(data, start: 12, gradRate: 0.1, pullRate: 0.1) },
                       "start: 12 is outside 0..<10")
        XCTAssertEqual(message { try t.calibrate(data, start: 0, gradRate: 1.5, pullRate: 0.1) },
                       "calibrate: rates must satisfy 0 <= rate < 1")
        t.syncModel()
        XCTAssertEqual(t.model.weightsHash, before, "a refused call changes nothing")
        XCTAssertNil(message { _ = try t.trainBatch(data, epoch: 0, start: 8) })  // the short last batch
        let (u, _) = try smallTrainer(calibration: false)
        u.beginStage(0)
        XCTAssertEqual(message { try u.calibrate(data, start: 0, gradRate: 0.1, pullRate: 0.1) },
                       "calibrate: the plan has no provenance snapshot (calibration: false)")
    }

    func testStepFromBuffersChecksCountsAndLabels() throws {
        let (t, _) = try smallTrainer()
        t.beginStage(0)
        func step(_ f: [Int32], _ l: [Int32]) -> String? {
            message { _ = try f.withUnsafeBufferPointer { fp in try l.withUnsafeBufferPointer { lp in try t.step(features: fp, labels: lp) } } }
        }
        let four = [Int32](repeating: 1 << 14, count: 4)
        XCTAssertEqual(step(four, []), "step: 0 labels: a batch holds 1...4 samples")
        XCTAssertEqual(step([Int32](repeating: 0, count: 20), [0, 1, 2, 0, 1]), "step: 5 labels: a batch holds 1...4 samples")
        XCTAssertEqual(step(four + [1], [0]), "the network's input width is 4 but the data has 5 features")
        XCTAssertEqual(step(four, [3]), "sample 0 has label 3, outside 0..<3")
        XCTAssertEqual(step(four, [-1]), "sample 0 has label -1, outside 0..<3")
        XCTAssertEqual(t.stepCount, 0)
        XCTAssertNil(step(four, [2]))
        XCTAssertEqual(t.stepCount, 1)
    }

    /// `Predictor.deviations` returned views into the predictor's arena that
    /// dangled once the predictor was released. The table keeps it alive.
    func testDeviationTableOutlivesItsPredictorsLastReference() throws {
        let (_, data) = try smallTrainer()
        let model = Model(shape: try NetworkShape(widths: [4, 6, 3]), seed: 2)
        var expected: [Int32] = []
        weak var weakPredictor: Predictor?
        let table: DeviationTable
        do {
            let p = try Predictor(shape: model.shape, batch: 3, dual: false, perSampleCount: data.count, budget: 1 << 16)
            weakPredictor = p
            table = try p.deviations(model, data)
            for i in 0..<table.count { expected.append(table.deviation(i)) }
            // Scribble over the predictor's own memory if it were freed: allocate and fill.
        }
        var garbage = [[Int32]]()
        for _ in 0..<64 { garbage.append([Int32](repeating: -1, count: 64)) }
        XCTAssertNotNil(weakPredictor, "the table keeps its predictor (and arena) alive")
        XCTAssertEqual((0..<table.count).map { table.deviation($0) }, expected)
        XCTAssertEqual(table.count, 10)
        XCTAssertGreaterThan(expected.filter { $0 > 0 }.count, 0)
        XCTAssertEqual(garbage.count, 64)
        let small = try Predictor(shape: model.shape, batch: 3, dual: false, perSampleCount: 4, budget: 1 << 16)
        XCTAssertEqual(message { _ = try small.deviations(model, data) },
                       "deviations: 10 samples but the predictor was planned for 4")
        XCTAssertEqual(message { _ = try small.dualDecision(stable: model, errorAware: model, lambdaMax: 0.5, data) },
                       "dualDecision: the predictor was planned with dual: false")
    }

    /// In a budget that the packed forward's block does not fit, the trainer plans the
    /// unpacked forward instead: less scratch, measured == planned, the same weights.
    func testTightBudgetDropsThePackedForwardWithTheSameResults() throws {
        let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
        let packed = try MemoryPlan(shape: shape, batch: 32, mode: .local(k: 1), optimizer: .sgd)
        let lean = try MemoryPlan(shape: shape, batch: 32, mode: .local(k: 1), optimizer: .sgd, packedForward: false)
        XCTAssertEqual(lean.bytes.scratch, 8 * 128, "only the fused update's int64 row")
        XCTAssertEqual(packed.peakWritable - lean.peakWritable, 4 * 32 * 128 - 8 * 128)
        let data = syntheticData(features: 64, classes: 10, count: 96, seed: 3)
        func run(_ budget: Int) throws -> (UInt64, Trainer) {
            let model = Model(shape: shape, seed: 1)
            let t = try Trainer(model: model, batch: 32, mode: .local(k: 1), optimizer: .sgd,
                                options: TrainingOptions(), budget: budget)
            t.beginStage(0)
            for e in 0..<2 { _ = try t.trainEpoch(data, epoch: e) }
            t.endStage()
            return (model.weightsHash, t)
        }
        let (h1, t1) = try run(packed.peakWritable)
        let (h2, t2) = try run(lean.peakWritable)
        XCTAssertTrue(t1.plan.packedForward)
        XCTAssertFalse(t2.plan.packedForward)
        XCTAssertEqual(t2.arena.peak, lean.bytes, "measured == the unpacked plan")
        XCTAssertEqual(h1, h2, "the unpacked forward gives the same weights bit for bit")
        XCTAssertEqual(message { _ = try run(lean.peakWritable - 1) },
                       "plan needs \(lean.peakWritable) writable bytes but the budget is \(lean.peakWritable - 1) bytes (short by 1 bytes): weights.trainable=5160 input=8320 activations.stored=16384 activations.working=32768 scratch=1024")
    }

    /// The dense forward's packed block is caller scratch now, planned in the
    /// scratch category: the plan equals the kernel's own buffer-size function.
    func testForwardScratchIsPlannedFromTheKernelsBufferSize() throws {
        let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
        let plan = try MemoryPlan(shape: shape, batch: 32, mode: .bp, optimizer: .momentum(mu: 0.9))
        var g = 0
        for l in 1...4 {
            g = max(g, q16_gemm_nt_buffer_size(32, Int32(shape.widths[l]), Int32(shape.widths[l - 1])))
        }
        XCTAssertEqual(g, 32 * 128 * 4, "the 128-wide layers pack 32 rows x 128")
        XCTAssertEqual(plan.bytes.scratch, g, "momentum has no fused row: scratch is the forward's block")
        let sgd = try MemoryPlan(shape: shape, batch: 32, mode: .bp, optimizer: .sgd)
        XCTAssertEqual(sgd.bytes.scratch, max(g, 8 * 128))
    }
}
