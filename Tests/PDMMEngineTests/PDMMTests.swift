import CMallocCounter
import PDMMHost
import XCTest
@testable import PDMMEngine

final class PDMMTests: XCTestCase {
    func smallPipeline(_ cfg: PDMMConfig = PDMMConfig()) throws -> PDMMPipeline {
        var c = cfg
        if cfg.threshold == PDMMConfig().threshold { c.threshold = .fraction(0.08) }  // random labels: E by share
        c.batch = 8
        c.idealEpochs = 3
        c.defectEpochs = 3
        c.ivcPeriod = 2
        let shape = try NetworkShape(widths: [12, 16, 16, 4])
        let data = syntheticData(features: 12, classes: 4, count: 200, seed: 3)
        return try PDMMPipeline(shape: shape, config: c, train: data)
    }

    func testIdealSetIsStratifiedAndSeeded() throws {
        var cfg = PDMMConfig()
        cfg.idealSelection = .random
        let p = try smallPipeline(cfg)
        var perClass = [Int](repeating: 0, count: 4), idealPerClass = [Int](repeating: 0, count: 4)
        for i in 0..<p.train.count { perClass[Int(p.train.label(i))] += 1 }
        for i in 0..<p.ideal.count { idealPerClass[Int(p.ideal.label(i))] += 1 }
        for c in 0..<4 {
            XCTAssertEqual(idealPerClass[c], Int((Double(perClass[c]) * 0.2).rounded(.up)), "class \(c)")
        }
        XCTAssertEqual(p.ideal.count + p.rest.count, p.train.count)
        // A seeded, stratified 20 % of D_Ideal is held out from G_Ideal's training.
        XCTAssertEqual(p.idealTrain.count + p.idealHoldout.count, p.ideal.count)
        XCTAssertGreaterThanOrEqual(p.idealHoldout.count, p.ideal.count / 5)
        let q = try smallPipeline(cfg)
        XCTAssertEqual((0..<p.ideal.count).map { p.ideal.feature($0, 0) }, (0..<q.ideal.count).map { q.ideal.feature($0, 0) })
    }

    func testVerifiedColumnBecomesDIdealAndSurvivesTheSplit() throws {
        var text = "v,a,b,label\n"
        for i in 0..<40 { text += "\(i % 4 == 0 ? 1 : 0),\(i),\(i % 3),\(i % 2)\n" }
        let d = try CSVParser.parse(Array(text.utf8), labelColumn: "label", verifiedColumn: "v")
        XCTAssertEqual(d.featureCount, 2)
        XCTAssertEqual(d.verified?.filter { $0 }.count, 10)
        let (train, _) = d.split(trainPercent: 80, seed: 2)
        let scaled = train.scaled(by: train.scalingStatistics())
        let flagged = scaled.verified!.filter { $0 }.count
        let p = try PDMMPipeline(shape: try NetworkShape(widths: [2, 4, 2]), config: PDMMConfig(), train: scaled)
        XCTAssertEqual(p.ideal.count, flagged)
        XCTAssertEqual(p.rest.count, scaled.count - flagged)
        // every D_Ideal sample is a verified one: its feature a = i is a multiple of 4
        let (rawTrain, _) = d.split(trainPercent: 80, seed: 2)
        var verifiedA = Set<Int32>()
        for i in 0..<rawTrain.count where rawTrain.verified![i] { verifiedA.insert(rawTrain.feature(i, 0)) }
        XCTAssertTrue(verifiedA.allSatisfy { ($0 >> 16) % 4 == 0 })
        XCTAssertThrowsError(try CSVParser.parse(Array("v,a,label\n2,1,0\n0,1,1\n".utf8), verifiedColumn: "v")) { e in
            XCTAssertEqual((e as! CSVError).message, "line 2, column 1: verified flag '2' is not 0 or 1")
        }
    }

    func testErrorGroupIsExactlyTheSamplesAboveTheThreshold() throws {
        var cfg = PDMMConfig()
        cfg.threshold = .value(1.2)
        let p = try smallPipeline(cfg)
        try p.learnIdeal()
        try p.separate()
        // Recompute every deviation independently: G_Ideal's forward pass and the
        // cross-entropy of the true class in double precision from the model's
        // weights (no engine kernel involved). Q16.16 and double agree within a few
        // 1e-3 nats, so samples within 0.02 nats of the threshold are not judged.
        let n = p.shape.widths
        var expected: [Int] = [], judged = 0
        var j = 0  // position in the Error Group
        for i in 0..<p.rest.count {
            var x = (0..<n[0]).map { Double(p.rest.feature(i, $0)) / 65536 }
            var off = 0
            for l in 1..<n.count {
                var y = [Double](repeating: 0, count: n[l])
                for o in 0..<n[l] {
                    var acc = Double(p.stable[off + n[l] * n[l - 1] + o]) / 65536
                    for k in 0..<n[l - 1] { acc += Double(p.stable[off + o * n[l - 1] + k]) / 65536 * x[k] }
                    y[o] = l < n.count - 1 ? max(acc, 0) : acc
                }
                off += n[l] * n[l - 1] + n[l]
                x = y
            }
            let mx = x.max()!
            let lse = mx + log(x.map { exp($0 - mx) }.reduce(0, +))
            let label = Int(p.rest.label(i))
            let d = lse - x[label]
            let inGroup = j < p.errorGroup.count && p.errorPairs.count > j
                && p.errorGroup.label(j) == p.rest.label(i) && (0..<n[0]).allSatisfy { p.errorGroup.feature(j, $0) == p.rest.feature(i, $0) }
            if d > 1.2 { expected.append(i) }
            if abs(d - 1.2) > 0.02 {
                judged += 1
                XCTAssertEqual(inGroup, d > 1.2, "sample \(i): double deviation \(d) nats")
            }
            if inGroup {
                // the recorded prediction is the arg max of the logits (unless a near-tie)
                let sorted = x.sorted(by: >)
                if sorted[0] - sorted[1] > 0.01 {
                    XCTAssertEqual(p.errorPairs[j].1, x.firstIndex(of: mx)!, "sample \(i)")
                }
                XCTAssertEqual(p.errorPairs[j].0, label)
                j += 1
            }
        }
        XCTAssertEqual(j, p.errorGroup.count, "every Error Group member is a sample of D_new, in order")
        XCTAssertGreaterThan(expected.count, 0)
        XCTAssertGreaterThan(judged, p.rest.count * 9 / 10)
    }

    func testErrorFractionPicksThatShareOfD() throws {
        var cfg = PDMMConfig()
        cfg.threshold = .fraction(0.1)
        let p = try smallPipeline(cfg)
        try p.learnIdeal()
        try p.separate()
        XCTAssertGreaterThanOrEqual(p.errorGroup.count, 20)  // 10 % of |D| = 200, ties may add members
        XCTAssertLessThanOrEqual(p.errorGroup.count, 24)
    }

    /// PII = the stable head's top probability x (1 - total variation distance to the error-aware model).
    func testPIIFromBothSystems() {
        let one: Int32 = 1 << 16, half: Int32 = 1 << 15
        XCTAssertEqual(DualSystem.piiValue(stable: [one, 0], errorAware: [one, 0]), one)       // sure, agreeing
        XCTAssertEqual(DualSystem.piiValue(stable: [half, half], errorAware: [half, half]), half)  // unsure
        XCTAssertEqual(DualSystem.piiValue(stable: [one, 0], errorAware: [0, one]), 0)         // disagreeing
        XCTAssertEqual(DualSystem.piiValue(stable: [one, 0], errorAware: [half, half]), half)  // TV = 1/2
        // lambda is largest where PII is lowest, and never above lambdaMax
        let lm = try! DualSystem.validate(lambdaMax: 0.5)
        XCTAssertEqual(DualSystem.lambda(lambdaMaxQ16: lm, pii: 0), lm)
        XCTAssertEqual(DualSystem.lambda(lambdaMaxQ16: lm, pii: one), 0)
    }

    func testLambdaNeverReachesOneForAnyPII() throws {
        for lmDouble in [0.0, 0.25, 0.5, 0.99, 0.999_99, 1 - 1.0 / 65536] {
            let lm = try DualSystem.validate(lambdaMax: lmDouble)
            for pii in Int32(-5)...Int32(65536 + 5) {
                let lam = DualSystem.lambda(lambdaMaxQ16: lm, pii: pii)
                XCTAssertLessThan(lam, 1 << 16)
                XCTAssertGreaterThanOrEqual(lam, 0)
                XCTAssertLessThanOrEqual(lam, lm)
            }
        }
        for bad in [1.0, 1.5, -0.1, Double.nan] {
            XCTAssertThrowsError(try DualSystem.validate(lambdaMax: bad)) { e in
                XCTAssertEqual((e as? EngineError)?.message, "lambdaMax: must satisfy 0 <= lambdaMax < 1")
            }
        }
    }

    func testIVCWithZeroUncertaintyChangesNothing() throws {
        let shape = try NetworkShape(widths: [12, 16, 16, 4])
        let model = Model(shape: shape, seed: 4)
        let data = syntheticData(features: 12, classes: 4, count: 40, seed: 4)
        let t = try Trainer(model: model, batch: 8, mode: .local(k: 2), optimizer: .sgd,
                            options: TrainingOptions(), budget: 1 << 20, calibration: true)
        t.beginStage(0)
        _ = try t.trainEpoch(data, epoch: 0)
        t.syncModel()
        let before = model.weightsHash
        let uE = 0.0
        try t.calibrate(data, start: 0, gradRate: 0.5 * uE * 1.0, pullRate: 0.5 * uE * 0.1)
        t.syncModel()
        XCTAssertEqual(model.weightsHash, before)
        // ... while a non-zero U_E does change the weights.
        try t.calibrate(data, start: 0, gradRate: 0.5, pullRate: 0.05)
        t.syncModel()
        XCTAssertNotEqual(model.weightsHash, before)
    }

    func testIVCPullAloneMovesTowardProvenance() throws {
        let shape = try NetworkShape(widths: [4, 3])
        let model = Model(shape: shape, seed: 1)
        let data = syntheticData(features: 4, classes: 3, count: 8, seed: 1)
        let t = try Trainer(model: model, batch: 8, mode: .bp, optimizer: .sgd,
                            options: TrainingOptions(learningRate: 0.5, seed: 1), budget: 1 << 20, calibration: true)
        t.beginStage(0)
        let w0 = (0..<model.parameterCount).map { t.params[1][$0] }
        for e in 0..<5 { _ = try t.trainEpoch(data, epoch: e) }
        func distance() -> Int64 { (0..<w0.count).reduce(0) { $0 + abs(Int64(t.params[1][$1]) - Int64(w0[$1])) } }
        let d1 = distance()
        try t.calibrate(data, start: 0, gradRate: 0, pullRate: 0.5)  // pull only: halves the distance
        let d2 = distance()
        XCTAssertGreaterThan(d1, 0)
        XCTAssertEqual(Double(d2), Double(d1) / 2, accuracy: Double(w0.count))
    }

    func testPipelineMeasuredEqualsPlannedPerPhaseAndIsDeterministic() throws {
        func run() throws -> (PDMMPipeline, DualDecision) {
            let p = try smallPipeline()
            try p.learnIdeal()
            try p.separate()
            try p.learnDefects()
            let r = try p.decide(p.rest)
            return (p, r)
        }
        let (p, r) = try run()
        XCTAssertEqual(p.phases.map(\.name), ["ideal selection (confident, 3-fold bp)", "ideal learning (blockwise(2))",
                                             "error group separation", "local defect learning (local(2))",
                                             "information value calibration (G_Ideal)", "dual-system decision"])
        for ph in p.phases { XCTAssertEqual(ph.measured, ph.planned, ph.name) }
        XCTAssertGreaterThan(p.ivcCount, 0)
        let (q, r2) = try run()
        XCTAssertEqual(p.errorAware.weightsHash, q.errorAware.weightsHash)
        XCTAssertEqual(p.stable.weightsHash, q.stable.weightsHash)
        XCTAssertEqual(r.final, r2.final)
        XCTAssertEqual(p.peakWritable.planned, p.phases.map { $0.planned.writable + $0.alsoResident.writable }.max())
        XCTAssertEqual(p.peakWritable.planned, p.peakWritable.measured)
        let lq = try XCTUnwrap(r.lambda)
        XCTAssertLessThanOrEqual(lq.max, try DualSystem.validate(lambdaMax: p.config.lambdaMax))
        let five = [lq.min, lq.lower, lq.median, lq.upper, lq.max]
        XCTAssertEqual(five, five.sorted())
        XCTAssertGreaterThanOrEqual(lq.min, 0)
    }

    /// Confident learning on a set where the answer is known: two well-separated
    /// classes with 15 % of the labels flipped. The out-of-fold probability of the
    /// own label is low for flipped samples, so D_Ideal (the most confident 20 % of
    /// each class) holds none of them, while a random 20 % would hold about 15 %.
    func testConfidentSelectionPicksCleanSamplesOverFlippedOnes() throws {
        var rng = SplitMix(21)
        let n = 300
        var f: [Int32] = [], l: [Int32] = [], flipped = Set<Int>()
        for i in 0..<n {
            let c = i % 2
            for j in 0..<6 {
                let noise = Int32(truncatingIfNeeded: rng.next() >> 48) - (1 << 15)  // +-0.5
                f.append((c == 0 ? -(1 << 16) : (1 << 16)) * (j % 2 == 0 ? 1 : -1) + noise)
            }
            var label = Int32(c)
            if rng.next() % 100 < 15 { label = 1 - label; flipped.insert(i) }
            l.append(label)
        }
        let data = try Dataset(featureCount: 6, classes: 2, features: f, labels: l)
        var cfg = PDMMConfig()
        cfg.batch = 16
        cfg.selectionEpochs = 8
        let p = try PDMMPipeline(shape: try NetworkShape(widths: [6, 8, 2]), config: cfg, train: data)
        XCTAssertEqual(p.selection, .confident)
        try p.selectIdeal()
        XCTAssertEqual(p.phases.first?.name, "ideal selection (confident, 3-fold bp)")
        XCTAssertEqual(p.phases.first?.measured, p.phases.first?.planned)
        let flippedInIdeal = p.idealIndices.filter { flipped.contains($0) }.count
        XCTAssertGreaterThan(flipped.count, 30)
        XCTAssertEqual(flippedInIdeal, 0, "D_Ideal holds flipped samples")
        XCTAssertEqual(p.ideal.count, 60)  // ceil(0.2 x 150) per class
        // the flipped samples are the least confident ones: most are in the bottom 20 %
        let conf = p.outOfFoldConfidence
        let order = (0..<n).sorted { conf[$0] < conf[$1] }
        let lowest = Set(order.prefix(flipped.count))
        XCTAssertGreaterThan(Double(lowest.intersection(flipped).count), 0.8 * Double(flipped.count))
    }

    /// The measured threshold is the nearest-rank quantile of G_Ideal's deviations
    /// on the held-out D_Ideal, recomputed here from the deviation table; the rule on known values too.
    func testMeasuredThresholdIsTheQuantileOfHeldOutIdealDeviations() throws {
        let values: [Int32] = [5, 1, 9, 3, 7, 2, 8, 6, 4, 10]  // 1...10
        XCTAssertEqual(Selection.quantile(count: 10, 0.95) { values[$0] }, 10)  // ceil(9.5) = 10th smallest
        XCTAssertEqual(Selection.quantile(count: 10, 0.9) { values[$0] }, 9)
        XCTAssertEqual(Selection.quantile(count: 10, 0.5) { values[$0] }, 5)
        XCTAssertEqual(Selection.quantile(count: 10, 0.0) { values[$0] }, 1)
        XCTAssertEqual(Selection.quantile(count: 1, 0.95) { _ in -3 }, -3)
        var cfg = PDMMConfig()
        cfg.idealSelection = .random
        cfg.threshold = .idealQuantile(0.9)
        let p = try smallPipeline(cfg)
        try p.learnIdeal()
        try p.separate()
        let pr = try Predictor(shape: p.shape, batch: 8, dual: false, perSampleCount: p.idealHoldout.count, budget: 1 << 22)
        let t = try pr.deviations(p.stable, p.idealHoldout)
        let sorted = (0..<t.count).map { t.deviation($0) }.sorted()
        let rank = Int((0.9 * Double(sorted.count)).rounded(.up))
        XCTAssertEqual(p.thresholdQ16, sorted[rank - 1])
        XCTAssertGreaterThan(p.errorGroup.count, 0)
        for i in 0..<p.errorGroup.count { XCTAssertGreaterThan(p.errorIndices[i], -1) }
    }

    /// Theorem 1: IVC updates G_Ideal's top k layers only; with U_E = 0 (alpha = 0)
    /// it changes nothing; L_Delta is 0 at the first IVC step.
    func testIVCUpdatesOnlyGIdealsTrainableLayers() throws {
        func pipeline(alpha: Double) throws -> (PDMMPipeline, [Int32]) {
            var cfg = PDMMConfig()
            cfg.alpha = alpha
            cfg.idealSelection = .random
            let p = try smallPipeline(cfg)
            try p.learnIdeal()
            let before = (0..<p.stable.parameterCount).map { p.stable[$0] }
            try p.separate()
            try p.learnDefects()
            return (p, before)
        }
        let (p0, w0) = try pipeline(alpha: 0)
        XCTAssertEqual((0..<p0.stable.parameterCount).map { p0.stable[$0] }, w0, "alpha = 0: G_Ideal bit-identical")
        let (p, w) = try pipeline(alpha: 0.5)
        XCTAssertGreaterThan(p.ivcCount, 0)
        XCTAssertEqual(p.ivcTrace.first?.lossDelta, 0)
        XCTAssertGreaterThan(p.ivcTrace.last?.lossDelta ?? 0, 0)
        XCTAssertGreaterThan(p.ivcTrace.first?.lossBP ?? 0, 0)
        let frozen = p.shape.parameterCount(layers: 1...(p.shape.layerCount - p.config.k))
        let now = (0..<p.stable.parameterCount).map { p.stable[$0] }
        XCTAssertEqual(Array(now[0..<frozen]), Array(w[0..<frozen]), "layers below the top k unchanged")
        XCTAssertNotEqual(Array(now[frozen...]), Array(w[frozen...]), "the top k layers calibrated")
        for r in p.ivcTrace { XCTAssertTrue(r.uncertainty >= 0 && r.uncertainty <= 1) }
    }

    func testDefectAndIVCStepsAllocateNothing() throws {
        try requireMallocCounter()
        let shape = try NetworkShape(widths: [12, 16, 16, 4])
        let model = Model(shape: shape, seed: 4)
        let data = syntheticData(features: 12, classes: 4, count: 80, seed: 4)
        let t = try Trainer(model: model, batch: 8, mode: .local(k: 2), optimizer: .riemannian(alpha: 1, rho: 0.9, phi: .gradSquared),
                            options: TrainingOptions(), budget: 1 << 20, calibration: true)
        t.beginStage(0)
        _ = try t.trainBatch(data, epoch: 0, start: 0)
        try t.calibrate(data, start: 0, gradRate: 0.1, pullRate: 0.1)
        _ = try t.normalizedEntropy(data)
        let before = malloc_counter_calls()
        for i in 0..<100 {
            _ = try t.trainBatch(data, epoch: 1, start: (i * 8) % 80)
            if i % 10 == 0 {
                _ = try t.normalizedEntropy(data)
                try t.calibrate(data, start: 8, gradRate: 0.1, pullRate: 0.1)
            }
        }
        XCTAssertEqual(malloc_counter_calls() - before, 0)
    }

    func testSeparationAndDecisionPassesAllocateNothing() throws {
        try requireMallocCounter()
        let shape = try NetworkShape(widths: [12, 16, 16, 4])
        let a = Model(shape: shape, seed: 1), b = Model(shape: shape, seed: 2)
        let data = syntheticData(features: 12, classes: 4, count: 100, seed: 4)
        let p = try Predictor(shape: shape, batch: 8, dual: true, perSampleCount: data.count, budget: 1 << 20)
        try predictorPasses(p, a, b, data)
        try assertPredictorPassesAllocateNothing(p, a, b, data, rounds: 10)
    }

    func testConfigErrors() throws {
        let shape = try NetworkShape(widths: [12, 16, 4])
        let data = syntheticData(features: 12, classes: 4, count: 50, seed: 3)
        var c = PDMMConfig()
        c.k = 3
        XCTAssertThrowsError(try PDMMPipeline(shape: shape, config: c, train: data)) { e in
            XCTAssertEqual((e as? EngineError)?.message, "k must be between 1 and L = 2, got 3")
        }
        c = PDMMConfig()
        c.lambdaMax = 1
        XCTAssertThrowsError(try PDMMPipeline(shape: shape, config: c, train: data)) { e in
            XCTAssertEqual((e as? EngineError)?.message, "lambdaMax: must satisfy 0 <= lambdaMax < 1")
        }
        c = PDMMConfig()
        c.idealFraction = 0
        XCTAssertThrowsError(try PDMMPipeline(shape: shape, config: c, train: data)) { e in
            XCTAssertEqual((e as? EngineError)?.message, "idealFraction: must satisfy 0 < idealFraction < 1")
        }
    }

    func testEntropyIsNormalised() throws {
        // A model whose output layer is all zero predicts uniformly: U = 1 exactly (to rounding).
        let shape = try NetworkShape(widths: [3, 4])
        let model = Model(shape: shape, seed: 1)
        for i in 0..<model.parameterCount { model[i] = 0 }
        let data = syntheticData(features: 3, classes: 4, count: 10, seed: 1)
        let t = try Trainer(model: model, batch: 4, mode: .bp, optimizer: .sgd, options: TrainingOptions(), budget: 1 << 20)
        t.beginStage(0)
        let u = try t.normalizedEntropy(data)
        XCTAssertEqual(Double(u) / 65536, 1.0, accuracy: 3.0 / 65536)
    }
}
