import Foundation
import PDMMEngine

/// A training set with a seeded share of its labels flipped, and which ones.
public struct LabelNoise {
    /// The noisy copy (features and verified flags as in the original).
    public let data: Dataset
    /// Indices of the flipped samples, ascending.
    public let flipped: [Int]
    /// The flipped samples' original labels, in `flipped`'s order.
    public let original: [Int32]
}

/// How well a selection of samples (the Error Group, or a baseline's pick)
/// finds the flipped ones among a candidate set (D_new).
public struct SeparationScore: Equatable {
    /// Samples selected.
    public var selected: Int
    /// Selected samples that are flipped.
    public var hits: Int
    /// Flipped samples among the candidates.
    public var positives: Int
    /// hits / selected (nil when nothing was selected).
    public var precision: Double? { selected > 0 ? Double(hits) / Double(selected) : nil }
    /// hits / positives (nil when no candidate is flipped).
    public var recall: Double? { positives > 0 ? Double(hits) / Double(positives) : nil }
    /// The harmonic mean of precision and recall (nil when either is nil; 0 when both are 0).
    public var f1: Double? {
        guard let p = precision, let r = recall else { return nil }
        return p + r > 0 ? 2 * p * r / (p + r) : 0
    }
    public init(selected: Int, hits: Int, positives: Int) {
        self.selected = selected
        self.hits = hits
        self.positives = positives
    }
}

/// One noise level of the experiment.
public struct NoiseRow {
    /// Percent of the training split's labels flipped.
    public var level: Int
    public var trainCount: Int
    public var flipped: Int
    public var idealCount: Int
    /// Flipped samples that landed in D_Ideal (E, a subset of D_new, can never hold them).
    public var flippedInIdeal: Int
    public var restCount: Int
    /// The Error Group against the flipped samples of D_new.
    public var errorGroup: SeparationScore
    /// The |E| highest-loss samples of D_new under the bp model trained on the same noisy data.
    public var baseline: SeparationScore
    public var threshold: Double
    public var bpAccuracy: Double
    public var stableAccuracy: Double
    public var finalAccuracy: Double
    /// Per-sample gradient passes over flipped samples: bp (epochs x flipped) and the
    /// whole PDMM pipeline (the selection folds, (k - 1) x selection epochs each; G_Ideal,
    /// stages x ideal epochs per flipped sample of D_Ideal; defect learning, defect epochs
    /// per flipped member of E; IVC's validation batches not counted).
    public var noisyPassesBP = 0
    public var noisyPassesPDMM = 0
    /// Share of the flipped samples G_Ideal never trains on (they are outside D_Ideal).
    public var removedFromIdeal: Double? { flipped > 0 ? 1 - Double(flippedInIdeal) / Double(flipped) : nil }
    /// The same share expected of a random D_Ideal of the same size (|D_new| / |D|).
    public var removedBySize: Double { Double(restCount) / Double(trainCount) }
}

/// The label-noise experiment (issue 13, item 5): flip a seeded share of the
/// training labels, run bp and the PDMM pipeline on the noisy data, and score
/// the Error Group against the flipped samples next to a plain loss ranking.
public enum NoiseExperiment {
    /// SplitMix64's finaliser: the host's seeded generator for label noise (the
    /// same bits on every platform).
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Random bits for (seed, stream, counter).
    static func bits(_ seed: UInt64, _ stream: UInt64, _ counter: UInt64) -> UInt64 {
        mix(mix(seed ^ 0x401_5E00) ^ mix(stream &* 0x1_0000_0001 ^ counter))
    }

    /// round(count x fraction), within 0...count.
    public static func flipCount(_ count: Int, fraction: Double) -> Int {
        min(max(Int((Double(count) * fraction).rounded()), 0), count)
    }

    /// Flips round(fraction x |d|) labels of `d`: the first ones of one seeded
    /// permutation of the samples (the same permutation for every fraction, so a
    /// lower level's flipped set is part of a higher one's); each flipped label
    /// becomes (y + 1 + r mod (C - 1)) mod C, a different class drawn by the
    /// seeded generator. Everything else is copied unchanged.
    public static func flipLabels(_ d: Dataset, fraction: Double, seed: UInt64) throws -> LabelNoise {
        if !(fraction >= 0 && fraction <= 1) { throw UsageError("noise level must lie in 0...100 %") }
        if d.classes < 2 && fraction > 0 { throw UsageError("label noise needs at least 2 classes") }
        var order = Array(0..<d.count)
        for i in stride(from: d.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(bits(seed, 1, UInt64(i)) % UInt64(i + 1)))
        }
        let flipped = order[0..<flipCount(d.count, fraction: fraction)].sorted()
        var labels = (0..<d.count).map { d.label($0) }
        var original: [Int32] = []
        for i in flipped {
            let y = Int(labels[i])
            let shift = 1 + Int(bits(seed, 2, UInt64(i)) % UInt64(d.classes - 1))
            original.append(labels[i])
            labels[i] = Int32((y + shift) % d.classes)
        }
        var features = [Int32](repeating: 0, count: d.count * d.featureCount)
        for s in 0..<d.count {
            for j in 0..<d.featureCount { features[s * d.featureCount + j] = d.feature(s, j) }
        }
        let noisy = try Dataset(featureCount: d.featureCount, classes: d.classes, features: features, labels: labels)
        noisy.verified = d.verified
        return LabelNoise(data: noisy, flipped: flipped, original: original)
    }

    /// Scores `selected` (sample indices) against the flipped samples among `candidates`.
    public static func score(selected: [Int], flipped: Set<Int>, candidates: [Int]) -> SeparationScore {
        let positives = candidates.reduce(0) { $0 + (flipped.contains($1) ? 1 : 0) }
        let hits = selected.reduce(0) { $0 + (flipped.contains($1) ? 1 : 0) }
        return SeparationScore(selected: selected.count, hits: hits, positives: positives)
    }

    /// Positions of the `k` largest values (ties: the lower position first), in that order.
    public static func highest(_ values: [Int32], count k: Int) -> [Int] {
        let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }
        return Array(order.prefix(max(k, 0)))
    }

    /// Runs every level: the same seeded split `train`/`test` (test labels never
    /// flipped); per level, bp (`bp`, mode bp) and the PDMM pipeline (`pdmm`) on
    /// the noisy training split. `note` gets one line per finished level.
    public static func run(train: Dataset, test: Dataset, shape: NetworkShape, levels: [Int], bp: RunConfig,
                           pdmm: PDMMConfig, note: ((String) -> Void)? = nil) throws -> [NoiseRow] {
        var rows: [NoiseRow] = []
        for level in levels {
            let t0 = Date()
            let noise = try flipLabels(train, fraction: Double(level) / 100, seed: pdmm.seed)
            let flipped = Set(noise.flipped)
            var c = bp
            c.network = shape
            c.mode = .bp
            c.budget = nil
            let (b, model) = try runTraining(c, train: noise.data, test: test, scaling: nil)
            let p = try PDMMPipeline(shape: shape, config: pdmm, train: noise.data)
            try p.learnIdeal()
            try p.separate()
            try p.learnDefects()
            let decision = try p.decide(test)
            let e = p.errorIndices.map { p.restIndices[$0] }
            // The baseline: the |E| samples of D_new with the highest loss under bp's model.
            let pred = try Predictor(shape: shape, batch: c.batch, dual: false, perSampleCount: p.rest.count, budget: Int.max)
            let table = try pred.deviations(model, p.rest)
            let losses = (0..<table.count).map { table.deviation($0) }
            let top = highest(losses, count: e.count).map { p.restIndices[$0] }
            let row = NoiseRow(
                level: level, trainCount: train.count, flipped: noise.flipped.count, idealCount: p.idealIndices.count,
                flippedInIdeal: p.idealIndices.reduce(0) { $0 + (flipped.contains($1) ? 1 : 0) },
                restCount: p.restIndices.count,
                errorGroup: score(selected: e, flipped: flipped, candidates: p.restIndices),
                baseline: score(selected: top, flipped: flipped, candidates: p.restIndices),
                threshold: Double(p.thresholdQ16) / 65536, bpAccuracy: b.testAccuracy,
                stableAccuracy: Double(decision.stable) / Double(test.count),
                finalAccuracy: Double(decision.final) / Double(test.count))
            var r = row
            r.noisyPassesBP = noise.flipped.count * c.epochs
            let stages = pdmm.idealBackprop ? 1 : TrainingMode.blockwise(k: pdmm.k).stages(layers: shape.layerCount).count
            r.noisyPassesPDMM = (p.selection == .confident ? noise.flipped.count * (pdmm.selectionFolds - 1) * pdmm.selectionEpochs : 0)
                + r.flippedInIdeal * stages * pdmm.idealEpochs + r.errorGroup.hits * pdmm.defectEpochs
            rows.append(r)
            note?(String(format: "noise %d %%: |E| %d, bp %.2f%%, A_final %.2f%% (%.1f s)", level, e.count,
                         100 * row.bpAccuracy, 100 * row.finalAccuracy, Date().timeIntervalSince(t0)))
        }
        return rows
    }

    static func thresholdText(_ t: ErrorThreshold) -> String {
        switch t {
        case .value(let v): return "\(v) nats"
        case .fraction(let f): return "the deviation that puts \(f) of D into E"
        case .idealQuantile(let q): return "the \(q)-quantile of G_Ideal's deviations on held-out D_Ideal"
        }
    }

    static func acc(_ v: Double) -> String { String(format: "%.2f%%", 100 * v) }

    static func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "-" }

    /// The Markdown table, one row per level.
    public static func table(_ rows: [NoiseRow]) -> String {
        var s = "| noise | flipped | flipped in D_Ideal | flipped in D_new (base rate) | I_threshold nats | size of E (% of D) "
        s += "| E precision | E recall | loss ranking precision | loss ranking recall | bp test | stable head test | A_final test |\n"
        s += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            let e = r.errorGroup, b = r.baseline
            s += "| \(r.level)% | \(r.flipped) | \(r.flippedInIdeal) of \(r.idealCount) | "
            s += "\(e.positives) of \(r.restCount) (\(pct(Double(e.positives) / Double(max(r.restCount, 1))))) | "
            s += String(format: "%.3f", r.threshold) + " | \(e.selected) (\(pct(Double(e.selected) / Double(max(r.trainCount, 1))))) | "
            s += "\(pct(e.precision)) | \(pct(e.recall)) | \(pct(b.precision)) | \(pct(b.recall)) | "
            s += "\(acc(r.bpAccuracy)) | \(acc(r.stableAccuracy)) | \(acc(r.finalAccuracy)) |\n"
        }
        return s
    }

    /// The paragraph that says how to read the table.
    public static let legend = """
    Flipped: labels of the training split changed to another class (seeded; test labels never). \
    Precision = flipped members / |E|; recall = flipped members of E / flipped samples of D_new (E is drawn \
    from D_new only, so flipped samples in D_Ideal are out of its reach). Loss ranking (the baseline): the |E| samples of D_new \
    with the highest cross-entropy under the bp model trained on the same noisy data (the same bp run as the \
    "bp test" column), scored against the same flipped set. Base rate = the precision of a random pick of D_new.
    """

    /// The document's two E-separation claims, each (claim, measured, verdict), from
    /// the rows of levels > 0 (at least two of them for the trend).
    public static func verdicts(_ rows: [NoiseRow], idealFraction: Double) -> [(String, String, String)] {
        let noisy = rows.filter { $0.level > 0 && $0.flipped > 0 }
        var out: [(String, String, String)] = []
        guard !noisy.isEmpty else { return out }
        // 1. "~80 % of noisy gradient computations removed"
        var m = noisy.map { r in
            "\(r.level)%: G_Ideal trains on \(r.flippedInIdeal) of \(r.flipped) flipped samples, "
                + "\(pct(r.removedFromIdeal)) removed (a random D_Ideal of this size: \(pct(r.removedBySize))); "
                + "E holds \(r.errorGroup.hits) of them (recall \(pct(r.errorGroup.recall)))"
        }.joined(separator: "; ")
        m += ". The whole pipeline's gradient passes over flipped samples (selection folds, G_Ideal, defect learning on E) vs bp's: "
            + noisy.map { r in
                String(format: "%d%%: %d vs %d (%.2fx)", r.level, r.noisyPassesPDMM, r.noisyPassesBP,
                       Double(r.noisyPassesPDMM) / Double(max(r.noisyPassesBP, 1)))
            }.joined(separator: ", ")
        let removed = noisy.compactMap { $0.removedFromIdeal }
        let gain = zip(noisy.compactMap { $0.removedFromIdeal }, noisy.map { $0.removedBySize }).map { $0 - $1 }
        var v1: String
        if removed.allSatisfy({ $0 >= 0.75 }) {
            let lo = 100 * (gain.min() ?? 0), hi = 100 * (gain.max() ?? 0)
            let r0 = 100 * (removed.min() ?? 0), r1 = 100 * (removed.max() ?? 0)
            v1 = String(format: "holds for G_Ideal (%@ %% removed), but %.0f %% of it is D_Ideal's size (a random %.0f %% "
                        + "D_Ideal removes that much); the confident selection adds %@ pp; E plays no part in it",
                        abs(r1 - r0) < 0.05 ? String(format: "%.1f", r0) : String(format: "%.1f-%.1f", r0, r1),
                        100 * (1 - idealFraction),
                        100 * idealFraction,
                        abs(hi - lo) < 0.05 ? String(format: "%+.1f", lo) : String(format: "%+.1f to %+.1f", lo, hi))
            let whole = noisy.map { Double($0.noisyPassesPDMM) / Double(max($0.noisyPassesBP, 1)) }
            if let lo = whole.min(), let hi = whole.max() {
                v1 += String(format: hi > 0.25 ? "; not for the whole pipeline, which makes %.2f-%.2fx bp's gradient passes over flipped samples"
                                               : "; also for the whole pipeline (%.2f-%.2fx bp's gradient passes over flipped samples)", lo, hi)
            }
        } else {
            v1 = "does not hold: G_Ideal trains on more than 25 % of the flipped samples at some level"
        }
        out.append(("~80 % of noisy gradient computations removed (flipped samples G_Ideal never trains on)", m, v1))
        // 2. "higher noise increases E separation efficiency" (efficiency = F1 of E against the flipped samples of D_new)
        let f1 = noisy.map { $0.errorGroup.f1 ?? 0 }
        let bf1 = noisy.map { $0.baseline.f1 ?? 0 }
        // precision over the base rate (the precision of a random pick of D_new), which rises with the noise by itself
        let lift = noisy.map { r -> Double in
            let base = Double(r.errorGroup.positives) / Double(max(r.restCount, 1))
            return base > 0 ? (r.errorGroup.precision ?? 0) / base : 0
        }
        let m2 = zip(noisy, lift).map { r, l in
            "\(r.level)%: E precision \(pct(r.errorGroup.precision)), recall \(pct(r.errorGroup.recall)), F1 \(pct(r.errorGroup.f1)), "
                + String(format: "precision / base rate %.2fx", l) + " (loss ranking: F1 \(pct(r.baseline.f1)))"
        }.joined(separator: "; ")
        let v2: String
        if noisy.count < 2 {
            v2 = "not measurable with one noise level"
        } else {
            let rising = zip(f1, f1.dropFirst()).allSatisfy { $0 < $1 }
            let beats = zip(f1, bf1).filter { $0 > $1 }.count
            let liftRising = zip(lift, lift.dropFirst()).allSatisfy { $0 < $1 }
            v2 = (rising ? "holds: E's F1 rises with the noise level" : "does not hold: E's F1 does not rise at every step")
                + (liftRising ? "; so does its precision over the base rate"
                              : "; but its precision over the base rate does not rise: part of the gain is the larger share of noise itself")
                + "; E beats the loss ranking's F1 at \(beats) of \(noisy.count) levels"
        }
        out.append(("higher noise increases E separation efficiency (F1 of E against the flipped samples of D_new)", m2, v2))
        return out
    }
}

extension Tool {
    /// `pdmm noise`: the label-noise experiment, one row per level.
    func noise(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: RunOptions.pdmmFlags.union(["data", "layers", "net", "input-shape", "k", "epochs", "batch",
                                                                  "optimizer", "momentum", "lr", "seed", "label-column",
                                                                  "verified-column", "levels"]),
                              switches: ["ideal-bp"])
        var cfg = try a.runConfig(defaultThreads: Tool.defaultThreads)
        let levels = try a.intList("levels", default: [0, 10, 20, 40])
        if levels.isEmpty || levels.contains(where: { $0 < 0 || $0 > 100 }) {
            throw UsageError("--levels: percentages in 0...100, e.g. 0,10,20,40")
        }
        let (shape, train, test, _) = try preparedRun(a, &cfg)
        let p = try a.pdmmConfig(cfg)
        try p.validate(layers: shape.layerCount)
        let rows = try NoiseExperiment.run(train: train, test: test, shape: shape, levels: levels, bp: cfg, pdmm: p,
                                           note: { self.err("pdmm: " + $0) })
        out(noiseReport(rows, data: a.string("data") ?? "built-in digits", shape: shape, cfg: cfg, pdmm: p,
                        trainCount: train.count, testCount: test.count))
        return 0
    }

    func noiseReport(_ rows: [NoiseRow], data: String, shape: NetworkShape, cfg: RunConfig, pdmm p: PDMMConfig,
                     trainCount: Int, testCount: Int) -> String {
        var s = "# Label noise and the Error Group: \(data), layers \(shape.description)\n\n"
        s += "Seeded 80/20 split (\(trainCount) train / \(testCount) test), batch \(cfg.batch), lr \(cfg.learningRate), seed \(cfg.seed); "
        s += "bp \(cfg.epochs) epochs; PDMM k \(p.k), D_Ideal \(p.idealSelection.map { "\($0)" } ?? "by the default rule: verified if flagged, else confident") "
        s += "(\(Int((100 * p.idealFraction).rounded())) % per class, \(p.selectionFolds)-fold, \(p.selectionEpochs) epochs per fold), "
        s += "ideal \(p.idealEpochs) epochs, defect \(p.defectEpochs) epochs, I_threshold \(NoiseExperiment.thresholdText(p.threshold)).\n\n"
        s += NoiseExperiment.table(rows) + "\n" + NoiseExperiment.legend + "\n"
        return s
    }
}
