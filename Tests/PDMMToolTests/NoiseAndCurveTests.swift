import Foundation
import PDMMEngine
import PDMMHost
import XCTest

/// The label-noise experiment (`pdmm noise`, the claims' noise block) and the
/// learning curves (`pdmm compare --curve`, the epochs claim).
final class NoiseAndCurveTests: XCTestCase {
    func run(_ args: [String]) -> (code: Int32, out: String, err: String) {
        var out = "", err = ""
        let tool = Tool(out: { out += $0 + "\n" }, err: { err += $0 + "\n" })
        let code = tool.run(args)
        return (code, out, err)
    }

    /// A small data set: 3 classes, 4 features, 50 samples.
    func small() throws -> Dataset {
        var f: [Int32] = [], l: [Int32] = []
        for i in 0..<50 {
            for j in 0..<4 { f.append(Int32((i * 7 + j * 13) % 23) << 12) }
            l.append(Int32(i % 3))
        }
        return try Dataset(featureCount: 4, classes: 3, features: f, labels: l)
    }

    // MARK: flipping

    func testFlippingIsSeededExactAndToAnotherClass() throws {
        let d = try small()
        for fraction in [0.0, 0.1, 0.2, 0.4, 1.0] {
            let a = try NoiseExperiment.flipLabels(d, fraction: fraction, seed: 7)
            let b = try NoiseExperiment.flipLabels(d, fraction: fraction, seed: 7)
            let want = Int((Double(d.count) * fraction).rounded())
            XCTAssertEqual(a.flipped.count, want, "fraction \(fraction)")
            XCTAssertEqual(a.flipped, b.flipped)
            XCTAssertEqual(a.flipped, a.flipped.sorted())
            XCTAssertEqual(Set(a.flipped).count, want)
            let flipped = Set(a.flipped)
            for i in 0..<d.count {
                XCTAssertEqual(a.data.label(i), b.data.label(i))
                if flipped.contains(i) {
                    XCTAssertNotEqual(a.data.label(i), d.label(i), "sample \(i) flipped to its own class")
                } else {
                    XCTAssertEqual(a.data.label(i), d.label(i))
                }
                for j in 0..<d.featureCount { XCTAssertEqual(a.data.feature(i, j), d.feature(i, j)) }
            }
            XCTAssertEqual(a.original, a.flipped.map { d.label($0) })
        }
        // Another seed flips other samples; a lower level's flipped set is part of a higher one's.
        let s7 = try NoiseExperiment.flipLabels(d, fraction: 0.2, seed: 7)
        let s8 = try NoiseExperiment.flipLabels(d, fraction: 0.2, seed: 8)
        XCTAssertNotEqual(s7.flipped, s8.flipped)
        let low = try NoiseExperiment.flipLabels(d, fraction: 0.1, seed: 7)
        let high = try NoiseExperiment.flipLabels(d, fraction: 0.4, seed: 7)
        XCTAssertTrue(Set(low.flipped).isSubset(of: Set(high.flipped)))
        for i in low.flipped { XCTAssertEqual(low.data.label(i), high.data.label(i)) }
        // Every other class is drawn: over all 50 samples flipped, both other classes occur for class 0.
        let all = try NoiseExperiment.flipLabels(d, fraction: 1, seed: 3)
        let targets = Set((0..<d.count).filter { d.label($0) == 0 }.map { all.data.label($0) })
        XCTAssertEqual(targets, [1, 2])
        XCTAssertThrowsError(try NoiseExperiment.flipLabels(d, fraction: 1.5, seed: 1))
    }

    // MARK: precision and recall

    func testPrecisionRecallOnAHandMadeExample() {
        // D_new = samples 0...7; flipped: 2, 3, 5 in D_new and 9 elsewhere (D_Ideal).
        let s = NoiseExperiment.score(selected: [1, 2, 3, 7], flipped: [2, 3, 5, 9], candidates: Array(0...7))
        XCTAssertEqual(s.selected, 4)
        XCTAssertEqual(s.hits, 2)
        XCTAssertEqual(s.positives, 3)
        XCTAssertEqual(s.precision!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(s.recall!, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(s.f1!, 2 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0), accuracy: 1e-12)
        let empty = NoiseExperiment.score(selected: [], flipped: [], candidates: [0, 1])
        XCTAssertNil(empty.precision)
        XCTAssertNil(empty.recall)
        // The baseline's pick: the k largest losses, ties by the lower position.
        XCTAssertEqual(NoiseExperiment.highest([5, 9, 9, 1, 7], count: 3), [1, 2, 4])
        XCTAssertEqual(NoiseExperiment.highest([5, 9], count: 0), [])
    }

    func testNoiseRowsAreDeterministicAndConsistent() throws {
        let (train, test, _) = Run.split(BuiltinData.digits(), seed: 1)
        let shape = try NetworkShape(widths: [64, 32, 10])
        var cfg = RunConfig()
        cfg.epochs = 1
        var p = PDMMConfig()
        p.k = 1
        p.idealEpochs = 1
        p.defectEpochs = 1
        p.selectionEpochs = 1
        let a = try NoiseExperiment.run(train: train, test: test, shape: shape, levels: [0, 20], bp: cfg, pdmm: p)
        let b = try NoiseExperiment.run(train: train, test: test, shape: shape, levels: [0, 20], bp: cfg, pdmm: p)
        XCTAssertEqual(NoiseExperiment.table(a), NoiseExperiment.table(b))
        XCTAssertEqual(a.map { $0.flipped }, [0, Int((Double(train.count) * 0.2).rounded())])
        for r in a {
            XCTAssertEqual(r.idealCount + r.restCount, train.count)
            XCTAssertEqual(r.errorGroup.positives + r.flippedInIdeal, r.flipped)
            XCTAssertEqual(r.baseline.selected, r.errorGroup.selected)
            XCTAssertEqual(r.baseline.positives, r.errorGroup.positives)
        }
        let t = NoiseExperiment.table(a)
        XCTAssertTrue(t.contains("\n| 0% | 0 | 0 of "), t)
        XCTAssertTrue(t.contains("\n| 20% | \(a[1].flipped) | "), t)
        XCTAssertEqual(NoiseExperiment.verdicts(a, idealFraction: p.idealFraction).count, 2)
    }

    func testNoiseCommandPrintsOneRowPerLevel() {
        let r = run(["noise", "--layers", "64,32,10", "--k", "1", "--epochs", "1", "--selection-epochs", "1", "--levels", "0,10"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.hasPrefix("# Label noise and the Error Group: built-in digits, layers 64-32-10"), r.out)
        XCTAssertEqual(r.out.split(separator: "\n").filter { $0.hasPrefix("| 0% |") || $0.hasPrefix("| 10% |") }.count, 2, r.out)
        XCTAssertEqual(run(["noise", "--levels", "5,120"]).err, "pdmm: --levels: percentages in 0...100, e.g. 0,10,20,40\n")
        let help = run(["noise", "--help"])
        XCTAssertEqual(help.code, 0)
        XCTAssertTrue(help.out.contains("pdmm noise"))
    }

    // MARK: curves

    func point(_ run: String, _ phase: String, _ model: String, _ e: Int, _ cum: Int, _ acc: Double) -> CurvePoint {
        CurvePoint(run: run, phase: phase, model: model, epoch: e, cumulativeEpochs: cum, dataEpochs: Double(cum) / 2,
                   testAccuracy: acc)
    }

    func testEpochsToXOnAHandMadeCurve() {
        let bp = Curves.bp([0.50, 0.85, 0.92, 0.91, 0.96, 0.97], trainCount: 100)
        XCTAssertEqual(bp.map { $0.epoch }, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Curves.epochsTo(0.90, bp)?.epoch, 3)
        XCTAssertEqual(Curves.epochsTo(0.96, bp)?.epoch, 5)  // exactly equal counts
        XCTAssertNil(Curves.epochsTo(0.98, bp))
        // PDMM: 30 selection epochs, G_Ideal per ideal epoch, then three models per defect epoch;
        // only G_Ideal (ideal phase) and A_final (after) count as the method's output.
        let pd = [
            point("pdmm", "ideal stage 1/1", "G_Ideal", 1, 31, 0.60),
            point("pdmm", "ideal stage 1/1", "G_Ideal", 2, 32, 0.91),
            point("pdmm", "defect", "G_Ideal", 1, 33, 0.97),
            point("pdmm", "defect", "error-aware", 1, 33, 0.97),
            point("pdmm", "defect", "A_final", 1, 33, 0.93),
            point("pdmm", "defect", "G_Ideal", 2, 34, 0.90),
            point("pdmm", "defect", "error-aware", 2, 34, 0.90),
            point("pdmm", "defect", "A_final", 2, 34, 0.955),
        ]
        XCTAssertEqual(Curves.deliverable(pd).map { $0.cumulativeEpochs }, [31, 32, 33, 34])
        let rs = Curves.readings(bp: bp, pdmm: pd)
        XCTAssertEqual(rs.map { $0.label }, ["90 %", "95 %", "96.00 % (bp final - 1 pp)"])
        XCTAssertEqual(rs[0].bp?.epoch, 3)
        XCTAssertEqual(rs[0].pdmm?.cumulativeEpochs, 32)
        XCTAssertEqual(rs[1].bp?.epoch, 5)
        XCTAssertEqual(rs[1].pdmm?.cumulativeEpochs, 34)
        XCTAssertEqual(rs[1].pdmm?.model, "A_final")
        XCTAssertEqual(rs[2].target, 0.96, accuracy: 1e-12)
        XCTAssertEqual(rs[2].bp?.epoch, 5)
        XCTAssertNil(rs[2].pdmm, "the error-aware model's 97 % is not the method's output")
        let table = Curves.readingTable(rs, pdmmEnd: pd.last, selectionEpochs: 30)
        XCTAssertTrue(table.contains("| 90 % | 3 | 32 | 16.00 | G_Ideal, ideal stage 1/1 epoch 2 | 0.09x |"), table)
        XCTAssertTrue(table.contains("| 96.00 % (bp final - 1 pp) | 5 | never (in 34) | - | - | - |"), table)
    }

    func testCurveCSVHasOneRowPerEpochPerRunAndMatchesThePipeline() throws {
        let (train, test, _) = Run.split(BuiltinData.digits(), seed: 2)
        let shape = try NetworkShape(widths: [64, 32, 32, 10])
        var cfg = RunConfig()
        cfg.network = shape
        cfg.epochs = 3
        cfg.seed = 2
        var p = PDMMConfig()
        p.k = 2
        p.seed = 2
        p.idealEpochs = 2
        p.defectEpochs = 3
        p.selectionEpochs = 1
        p.ivcPeriod = 2
        let (bp, _) = try Curves.bpRun(cfg, train: train, test: test)
        let pd = try Curves.pdmmRun(p, shape: shape, train: train, test: test)
        XCTAssertGreaterThan(pd.errorCount, 0)
        // The curve run ends where the pipeline ends, bit for bit.
        let ref = try PDMMPipeline(shape: shape, config: p, train: train)
        try ref.learnIdeal()
        try ref.separate()
        try ref.learnDefects()
        let decision = try ref.decide(test)
        XCTAssertEqual(pd.stableHash, ref.stable.weightsHash)
        XCTAssertEqual(pd.errorAwareHash, ref.errorAware.weightsHash)
        XCTAssertEqual(pd.decision, decision)
        XCTAssertGreaterThan(ref.ivcCount, 0)

        let csv = Curves.csv(bp + pd.points)
        let lines = csv.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "run,phase,model,epoch,cumulative_epochs,data_epochs,test_accuracy")
        let rows = lines.dropFirst().map { $0.split(separator: ",").map(String.init) }
        func count(_ run: String, _ model: String, phase: String? = nil) -> Int {
            rows.filter { $0[0] == run && $0[2] == model && (phase == nil || $0[1].hasPrefix(phase!)) }.count
        }
        let stages = 2  // blockwise(2) on L = 3
        XCTAssertEqual(count("bp", "bp"), cfg.epochs)
        XCTAssertEqual(count("pdmm", "G_Ideal", phase: "ideal"), stages * p.idealEpochs)
        XCTAssertEqual(count("pdmm", "G_Ideal", phase: "defect"), p.defectEpochs)
        XCTAssertEqual(count("pdmm", "error-aware"), p.defectEpochs)
        XCTAssertEqual(count("pdmm", "A_final"), p.defectEpochs)
        XCTAssertEqual(rows.count, cfg.epochs + stages * p.idealEpochs + 3 * p.defectEpochs)
        // Epochs are counted from the selection's fold epochs on; the last A_final is the pipeline's.
        XCTAssertEqual(pd.selectionEpochs, p.selectionFolds * p.selectionEpochs)
        XCTAssertEqual(pd.points.first?.cumulativeEpochs, pd.selectionEpochs + 1)
        XCTAssertEqual(pd.points.last?.cumulativeEpochs, pd.selectionEpochs + stages * p.idealEpochs + p.defectEpochs)
        XCTAssertEqual(pd.points.last?.model, "A_final")
        XCTAssertEqual(pd.points.last!.testAccuracy, Double(decision.final) / Double(test.count), accuracy: 1e-12)
        let svg = Curves.svg(bp + pd.points, title: "t", selection: (pd.selectionEpochs, pd.selectionDataEpochs),
                             marks: [("90 %", 0.9)])
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2 * 4)  // 4 series x 2 panels
    }

    func testCompareWritesCurveFiles() throws {
        let dir = NSTemporaryDirectory() + "pdmm-curve-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = run(["compare", "--layers", "64,32,32,10", "--k", "2", "--epochs", "1", "--selection-epochs", "1",
                     "--curve", dir + "/c.csv", "--svg", dir + "/c.svg"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("| test accuracy X | bp epochs to X |"), r.out)
        XCTAssertTrue(r.out.contains("The curve run reproduces the pipeline bit for bit"), r.out)
        let csv = try String(contentsOfFile: dir + "/c.csv", encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("run,phase,model,epoch,cumulative_epochs,data_epochs,test_accuracy\nbp,bp,bp,1,1,"), csv)
        XCTAssertTrue(try String(contentsOfFile: dir + "/c.svg", encoding: .utf8).contains("cumulative epochs"))
        XCTAssertEqual(run(["compare", "--svg", dir + "/x.svg"]).err, "pdmm: compare: --svg needs --curve FILE.csv\n")
    }
}
