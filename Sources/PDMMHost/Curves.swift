import Foundation
import PDMMEngine

/// One point of a learning curve: a model's test accuracy after one epoch.
public struct CurvePoint: Equatable {
    /// "bp" or "pdmm".
    public var run: String
    /// "bp", "ideal stage S/N" (G_Ideal's learning, per blockwise stage), "defect" or "decision".
    public var phase: String
    /// Whose accuracy: "bp", "G_Ideal", "error-aware" or "A_final".
    public var model: String
    /// 1-based epoch within the phase.
    public var epoch: Int
    /// Every epoch of every training run of the method so far counts 1, whatever its
    /// data (PDMM: the selection folds' epochs, then the ideal stages', then the defect epochs).
    public var cumulativeEpochs: Int
    /// Training samples passed so far / |D| (PDMM: selection folds, G_Ideal, defect
    /// batches and IVC's BP validation batches).
    public var dataEpochs: Double
    public var testAccuracy: Double

    public init(run: String, phase: String, model: String, epoch: Int, cumulativeEpochs: Int, dataEpochs: Double,
                testAccuracy: Double) {
        self.run = run
        self.phase = phase
        self.model = model
        self.epoch = epoch
        self.cumulativeEpochs = cumulativeEpochs
        self.dataEpochs = dataEpochs
        self.testAccuracy = testAccuracy
    }
}

/// A PDMM run recorded epoch by epoch.
public struct PDMMCurve {
    public var points: [CurvePoint]
    /// Epochs and data epochs of D_Ideal's selection (confident learning's fold runs;
    /// 0 for verified or random selection), before the first point.
    public var selectionEpochs: Int
    public var selectionDataEpochs: Double
    /// The pipeline's own decision (`PDMMPipeline.decide`) at the end.
    public var decision: DualDecision
    public var errorCount: Int
    /// Weights hashes at the end: equal to a `runPDMM` of the same configuration.
    public var stableHash: UInt64
    public var errorAwareHash: UInt64
}

/// Learning curves (issue 13, item 6): test accuracy per epoch of bp and of the
/// PDMM pipeline per phase, a CSV, an SVG, and "epochs to X %" read off them.
public enum Curves {
    /// bp's curve from per-epoch test accuracies (the `progress` callback of `runTraining`).
    public static func bp(_ accuracies: [Double], trainCount: Int) -> [CurvePoint] {
        accuracies.enumerated().map { e, acc in
            CurvePoint(run: "bp", phase: "bp", model: "bp", epoch: e + 1, cumulativeEpochs: e + 1,
                       dataEpochs: Double(e + 1), testAccuracy: acc)
        }
    }

    /// Trains bp (`cfg`, mode bp) and records its test accuracy after every epoch.
    public static func bpRun(_ cfg: RunConfig, train: Dataset, test: Dataset) throws -> ([CurvePoint], RunResult) {
        var c = cfg
        c.mode = .bp
        c.budget = nil
        var acc: [Double] = []
        let (r, _) = try runTraining(c, train: train, test: test, scaling: nil, progress: { _, _, _, te, _, _ in
            acc.append(Double(te.correct) / Double(max(te.samples, 1)))
        })
        return (bp(acc, trainCount: train.count), r)
    }

    /// The PDMM pipeline with a test evaluation after every epoch of phases 1 and 3
    /// (`PDMMPipeline.epochObserver`): the same run as `runPDMM`, bit for bit
    /// (checked by the hashes).
    /// G_Ideal's accuracy is the whole network's (during a non-final blockwise stage
    /// its upper layers are still untrained; the stage's auxiliary head is not used).
    public static func pdmmRun(_ cfg: PDMMConfig, shape: NetworkShape, train: Dataset, test: Dataset) throws -> PDMMCurve {
        let p = try PDMMPipeline(shape: shape, config: cfg, train: train)
        try p.selectIdeal()
        let n = Double(train.count)
        var selEpochs = 0
        var selData = 0.0
        if p.selection == .confident {
            // every fold trains on all folds but one: (folds - 1) x |D| samples per epoch in total
            selEpochs = cfg.selectionFolds * cfg.selectionEpochs
            selData = Double(cfg.selectionEpochs * (cfg.selectionFolds - 1))
        }
        let eval = try Predictor(shape: shape, batch: cfg.batch, dual: true, perSampleCount: 0, budget: Int.max)
        var points: [CurvePoint] = []
        var cum = selEpochs
        var data = selData

        // Phases 1-4 by the pipeline itself; after every epoch it hands over the
        // current weights and the curve evaluates them (reading changes nothing).
        var failure: Error? = nil
        p.epochObserver = { ev in
            if failure != nil { return }
            cum += 1
            data += Double(ev.samples) / n
            do {
                if ev.phase == 1 {
                    let r = try eval.evaluate(p.stable, test)
                    points.append(CurvePoint(run: "pdmm", phase: "ideal stage \(ev.stage + 1)/\(ev.stages)", model: "G_Ideal",
                                             epoch: ev.epoch + 1, cumulativeEpochs: cum, dataEpochs: data,
                                             testAccuracy: Double(r.correct) / Double(test.count)))
                } else {
                    let r = try eval.dualDecision(stable: p.stable, errorAware: p.errorAware, lambdaMax: cfg.lambdaMax, test)
                    for (model, correct) in [("G_Ideal", r.stable), ("error-aware", r.errorAware), ("A_final", r.final)] {
                        points.append(CurvePoint(run: "pdmm", phase: "defect", model: model, epoch: ev.epoch + 1,
                                                 cumulativeEpochs: cum, dataEpochs: data,
                                                 testAccuracy: Double(correct) / Double(test.count)))
                    }
                }
            } catch { failure = error }
        }
        try p.learnIdeal()
        try p.separate()
        try p.learnDefects()
        p.epochObserver = nil
        if let failure { throw failure }
        let E = p.errorGroup
        // Phase 5: the pipeline's decision.
        let decision = try p.decide(test)
        if E.count == 0 || cfg.defectEpochs == 0 {
            points.append(CurvePoint(run: "pdmm", phase: "decision", model: "A_final", epoch: 0, cumulativeEpochs: cum,
                                     dataEpochs: data, testAccuracy: Double(decision.final) / Double(test.count)))
        }
        return PDMMCurve(points: points, selectionEpochs: selEpochs, selectionDataEpochs: selData, decision: decision,
                         errorCount: E.count, stableHash: p.stable.weightsHash, errorAwareHash: p.errorAware.weightsHash)
    }

    /// The CSV: a header, then one row per point.
    public static func csv(_ points: [CurvePoint]) -> String {
        var s = "run,phase,model,epoch,cumulative_epochs,data_epochs,test_accuracy\n"
        for p in points {
            s += "\(p.run),\(p.phase),\(p.model),\(p.epoch),\(p.cumulativeEpochs),"
            s += String(format: "%.4f,%.6f\n", p.dataEpochs, p.testAccuracy)
        }
        return s
    }

    /// The first point (in order) whose accuracy reaches `x` (within 1e-9), or nil.
    public static func epochsTo(_ x: Double, _ points: [CurvePoint]) -> CurvePoint? {
        points.first { $0.testAccuracy >= x - 1e-9 }
    }

    /// The PDMM points that count as the method's output at their time: G_Ideal
    /// during its learning (the stable head is the system before E exists), A_final afterwards.
    public static func deliverable(_ points: [CurvePoint]) -> [CurvePoint] {
        points.filter { $0.run == "pdmm" && ($0.phase.hasPrefix("ideal") ? $0.model == "G_Ideal" : $0.model == "A_final") }
    }

    /// One reading of "epochs to X": bp's epoch, PDMM's point (nil = never).
    public struct Reading {
        public var label: String
        public var target: Double
        public var bp: CurvePoint?
        public var pdmm: CurvePoint?
    }

    /// The targets of the epochs claim: 90 %, 95 % and bp's final accuracy minus 1 pp (plus `extra`).
    public static func readings(bp: [CurvePoint], pdmm: [CurvePoint], extra: [Double] = []) -> [Reading] {
        var targets: [(String, Double)] = [("90 %", 0.90), ("95 %", 0.95)]
        if let last = bp.last {
            targets.append((String(format: "%.2f %% (bp final - 1 pp)", 100 * (last.testAccuracy - 0.01)),
                            last.testAccuracy - 0.01))
        }
        for x in extra where !targets.contains(where: { abs($0.1 - x) < 1e-9 }) {
            targets.append((String(format: "%.2f %%", 100 * x), x))
        }
        let out = deliverable(pdmm)
        return targets.map { Reading(label: $0.0, target: $0.1, bp: epochsTo($0.1, bp), pdmm: epochsTo($0.1, out)) }
    }

    /// The Markdown table of the readings.
    public static func readingTable(_ rs: [Reading], pdmmEnd: CurvePoint?, selectionEpochs: Int) -> String {
        var s = "| test accuracy X | bp epochs to X | PDMM cumulative epochs to X | PDMM data epochs to X | reached by | bp / PDMM epochs |\n"
        s += "|---|---:|---:|---:|---|---:|\n"
        for r in rs {
            let never = pdmmEnd.map { "never (in \($0.cumulativeEpochs))" } ?? "never"
            s += "| \(r.label) | \(r.bp.map { "\($0.epoch)" } ?? "never") | \(r.pdmm.map { "\($0.cumulativeEpochs)" } ?? never) | "
            s += "\(r.pdmm.map { String(format: "%.2f", $0.dataEpochs) } ?? "-") | "
            s += "\(r.pdmm.map { "\($0.model), \($0.phase) epoch \($0.epoch)" } ?? "-") | "
            if let b = r.bp, let q = r.pdmm {
                s += String(format: "%.2fx", Double(b.epoch) / Double(q.cumulativeEpochs))
            } else { s += "-" }
            s += " |\n"
        }
        return s
    }

    /// How the epochs are counted (for the reports).
    public static func countingNote(_ c: PDMMCurve, _ cfg: PDMMConfig) -> String {
        var s = "PDMM's cumulative epochs count every epoch of every training run as 1: "
        if c.selectionEpochs > 0 {
            s += "D_Ideal's confident selection (\(cfg.selectionFolds) folds x \(cfg.selectionEpochs) bp epochs, each on "
            s += "\(cfg.selectionFolds - 1)/\(cfg.selectionFolds) of D: \(c.selectionEpochs) epochs, "
            s += String(format: "%.2f data epochs", c.selectionDataEpochs) + ", no test model), "
        }
        s += "then G_Ideal's epochs (per blockwise stage), then the defect epochs (IVC interleaved). "
        s += "Data epochs = training samples passed / |D| (selection folds, G_Ideal on D_Ideal's training part, "
        s += "defect batches on E and IVC's BP validation batches). bp: 1 epoch = 1 data epoch. "
        s += "PDMM reaches X when G_Ideal (during its learning) or A_final (after each defect epoch) first does."
        return s
    }

    // MARK: SVG

    static let colors = ["bp": "#1f77b4", "G_Ideal": "#ff7f0e", "error-aware": "#2ca02c", "A_final": "#d62728"]

    /// Accuracy vs cumulative epochs (left) and vs data epochs (right), one line per
    /// (run, model), D_Ideal's selection shaded, the targets `marks` dotted.
    public static func svg(_ points: [CurvePoint], title: String, selection: (epochs: Int, data: Double),
                           marks: [(String, Double)]) -> String {
        let W = 1000.0, H = 470.0, pad = 60.0, gap = 70.0, top = 70.0, ph = 300.0
        let pw = (W - 2 * pad - gap) / 2
        var series: [(String, String, [CurvePoint])] = []  // (name, model, points)
        for (run, model) in [("bp", "bp"), ("pdmm", "G_Ideal"), ("pdmm", "error-aware"), ("pdmm", "A_final")] {
            let ps = points.filter { $0.run == run && $0.model == model }
            if !ps.isEmpty { series.append((run == "bp" ? "bp" : "PDMM \(model)", model, ps)) }
        }
        let lowest = points.map { $0.testAccuracy }.min() ?? 0
        let yMin = min(max(((lowest * 10).rounded(.down)) / 10, 0), 0.8)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(W / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(DepthChart.xmlEscaped(title))</text>\n"
        let panels: [(String, (CurvePoint) -> Double, Double)] = [
            ("cumulative epochs (each epoch of each run = 1)", { Double($0.cumulativeEpochs) }, Double(selection.epochs)),
            ("data epochs (training samples passed / |D|)", { $0.dataEpochs }, selection.data),
        ]
        for (i, (label, x, sel)) in panels.enumerated() {
            let x0 = pad + Double(i) * (pw + gap)
            let xMax = max(points.map(x).max() ?? 1, 1)
            func px(_ v: Double) -> Double { x0 + pw * v / xMax }
            func py(_ v: Double) -> Double { top + ph - ph * (v - yMin) / (1 - yMin) }
            if sel > 0 {
                s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#eeeeee\"/>\n",
                            x0, top, px(sel) - x0, ph)
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#666\">D_Ideal selection</text>\n",
                            (x0 + px(sel)) / 2, top + ph - 8)
            }
            s += "<line x1=\"\(x0)\" y1=\"\(top + ph)\" x2=\"\(x0 + pw)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(top)\" x2=\"\(x0)\" y2=\"\(top + ph)\" stroke=\"black\"/>\n"
            let steps = Int(((1 - yMin) * 10).rounded())
            for k in 0...max(steps, 1) {
                let v = yMin + Double(k) * (1 - yMin) / Double(max(steps, 1))
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n", x0 - 4, py(v) + 4, 100 * v)
                s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, py(v), x0 + pw, py(v))
            }
            // round ticks: 1, 2 or 5 x 10^n apart, about five of them
            let raw = xMax / 5, mag = pow(10, (log10(raw)).rounded(.down))
            let tick = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
            var v = 0.0
            while v <= xMax + 1e-9 {
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", px(v), top + ph + 14,
                            tick >= 1 ? String(format: "%.0f", v) : String(format: "%.1f", v))
                v += tick
            }
            s += "<text x=\"\(x0 + pw / 2)\" y=\"\(top + ph + 32)\" text-anchor=\"middle\">\(DepthChart.xmlEscaped(label))</text>\n"
            // the targets, dotted; their labels staggered from the right so close targets stay readable
            for (j, (name, v)) in marks.enumerated() where v > yMin {
                s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"2,3\"/>\n",
                            x0, py(v), x0 + pw, py(v))
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#666\">%@</text>\n",
                            x0 + pw - 2 - Double(j) * 60, py(v) - 3, DepthChart.xmlEscaped(name))
            }
            for (name, model, ps) in series {
                let path = ps.map { String(format: "%.1f,%.1f", px(x($0)), py(max($0.testAccuracy, yMin))) }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(colors[model] ?? "#000")\" stroke-width=\"2\""
                if model == "error-aware" { s += " stroke-dasharray=\"6,4\"" }
                s += " points=\"\(path)\"><title>\(DepthChart.xmlEscaped(name))</title></polyline>\n"
            }
        }
        s += DepthChart.legend(series.map { ($0.0, colors[$0.1] ?? "#000", $0.1 == "error-aware" ? "6,4" : nil) },
                               y: top + ph + 60, x0: pad)
        return s + "</svg>\n"
    }
}

extension Tool {
    /// `compare --curve FILE.csv [--svg FILE.svg]`: bp (again, with a test evaluation
    /// per epoch) and the PDMM pipeline epoch by epoch; writes the CSV (and SVG) and
    /// returns the Markdown: the epochs-to-X table and how the epochs are counted.
    /// `pipelineHash`: the error-aware weights hash of `runPDMM` with the same
    /// configuration, which the curve run must reproduce.
    func curveReport(_ cfg: RunConfig, _ p: PDMMConfig, shape: NetworkShape, train: Dataset, test: Dataset,
                     pipelineHash: UInt64?, csvPath: String, svgPath: String?, title: String) throws -> String {
        let (bp, _) = try Curves.bpRun(cfg, train: train, test: test)
        let pd = try Curves.pdmmRun(p, shape: shape, train: train, test: test)
        let points = bp + pd.points
        do {
            try Curves.csv(points).write(toFile: csvPath, atomically: true, encoding: .utf8)
        } catch { throw UsageError("--curve: cannot write \(csvPath)") }
        let rs = Curves.readings(bp: bp, pdmm: pd.points)
        if let svgPath {
            let marks = rs.map { ($0.label, $0.target) }
            let svg = Curves.svg(points, title: title, selection: (pd.selectionEpochs, pd.selectionDataEpochs), marks: marks)
            do {
                try svg.write(toFile: svgPath, atomically: true, encoding: .utf8)
            } catch { throw UsageError("--svg: cannot write \(svgPath)") }
        }
        var s = "## Learning curves (\(csvPath)\(svgPath.map { ", " + $0 } ?? ""), \(points.count) points)\n\n"
        s += Curves.readingTable(rs, pdmmEnd: Curves.deliverable(pd.points).last, selectionEpochs: pd.selectionEpochs) + "\n"
        s += Curves.countingNote(pd, p) + "\n"
        if let h = pipelineHash {
            s += h == pd.errorAwareHash
                ? "The curve run reproduces the pipeline bit for bit (error-aware weights hash \(Hex.format(h))).\n"
                : "WARNING: the curve run's weights (\(Hex.format(pd.errorAwareHash))) differ from the pipeline's (\(Hex.format(h))).\n"
        }
        return s
    }
}
