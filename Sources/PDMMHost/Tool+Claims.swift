import Foundation
import PDMMEngine

extension Tool {
    /// `pdmm claims`: the experiment behind each claim of the PDMM document,
    /// on the built-in data, with the command that reproduces each row.
    func claims(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["epochs", "k", "seed", "target", "net", "input-shape", "cnn-batch", "noise-epochs"],
                              switches: ["cnn-only", "no-noise"])
        let epochs = try a.int("epochs", default: 30, min: 1)
        let k = try a.int("k", default: 2, min: 1)
        let seed = UInt64(try a.int("seed", default: 1, min: 0))
        let target = try a.double("target", default: 0.95)
        if a.has("cnn-only") {
            out(try cnnClaims(a, k: k, seed: seed))
            return 0
        }
        let widths = [64, 128, 128, 128, 10]
        let L = widths.count - 1
        try TrainingMode.local(k: k).validate(layers: L)
        let (train, test, scaling) = Run.split(BuiltinData.digits(), seed: seed)

        // bp, epoch by epoch (accuracy after each epoch for the epochs claim)
        var cfg = RunConfig()
        cfg.widths = widths
        cfg.epochs = epochs
        cfg.seed = seed
        var bpCurve: [Double] = []
        let (bp, _) = try runTraining(cfg, train: train, test: test, scaling: scaling, progress: { _, _, _, te, _, _ in
            bpCurve.append(Double(te.correct) / Double(te.samples))
        })
        var localCfg = cfg
        localCfg.mode = .local(k: k)
        let (local, _) = try runTraining(localCfg, train: train, test: test, scaling: scaling)

        var p = PDMMConfig()
        p.k = k
        p.seed = seed
        p.idealEpochs = epochs
        p.defectEpochs = epochs
        let pd = try runPDMM(p, shape: try NetworkShape(widths: widths), train: train, test: test)
        let pdMACs = pd.phases.reduce(UInt64(0)) { $0 + $1.macs.total + ($1.name.hasPrefix("information") ? $1.macs.evaluation : 0) }

        // epochs to X % read off the learning curves (Curves.swift): bp's above, PDMM's epoch by epoch
        let bpPoints = Curves.bp(bpCurve, trainCount: train.count)
        let pdCurve = try Curves.pdmmRun(p, shape: try NetworkShape(widths: widths), train: train, test: test)
        let readings = Curves.readings(bp: bpPoints, pdmm: pdCurve.points, extra: a.string("target") == nil ? [] : [target])

        let actRatio = Double(bp.plan.layerInputBytes) / Double(local.plan.layerInputBytes)
        let memRatio = Double(bp.measured.writable) / Double(pd.peakMeasured)
        let macRatio = Double(bp.macs.total) / Double(pdMACs)
        let base = "swift run -c release pdmm"
        var rows: [(String, String, String, String)] = []
        rows.append(("activation memory shrinks by L/k = \(L)/\(k) = \(String(format: "%.2f", Double(L) / Double(k)))x (local(k) vs bp)",
                     String(format: "%.2fx (layer-input activations %d B vs %d B); peak writable %.2fx",
                            actRatio, bp.plan.layerInputBytes, local.plan.layerInputBytes,
                            Double(bp.measured.writable) / Double(local.measured.writable)),
                     verdict(actRatio, claim: Double(L) / Double(k), what: "activation bytes"),
                     "\(base) report --k \(k)"))
        rows.append(("25x less memory (PDMM pipeline peak vs bp)",
                     String(format: "%.2fx (bp %d B, PDMM peak over phases %d B)", memRatio, bp.measured.writable, pd.peakMeasured),
                     verdict(memRatio, claim: 25, what: "peak writable bytes"),
                     "\(base) compare --k \(k) --epochs \(epochs)"))
        rows.append(("48x less compute (training MACs, same epochs)",
                     String(format: "%.2fx (bp %llu MACs, PDMM %llu MACs)", macRatio, bp.macs.total, pdMACs),
                     verdict(macRatio, claim: 48, what: "MACs"),
                     "\(base) compare --k \(k) --epochs \(epochs)"))
        let pdEnd = Curves.deliverable(pdCurve.points).last.map { $0.cumulativeEpochs } ?? 0
        let epochText = readings.map { r -> String in
            let b = r.bp.map { "bp \($0.epoch)" } ?? "bp never (in \(epochs))"
            let q = r.pdmm.map { String(format: "PDMM %d (%.1f data epochs, %@)", $0.cumulativeEpochs, $0.dataEpochs, $0.model) }
                ?? "PDMM never (in \(pdEnd))"
            return "\(r.label): \(b) vs \(q)"
        }.joined(separator: "; ") + ". PDMM's count includes D_Ideal's selection (\(pdCurve.selectionEpochs) fold epochs, "
            + String(format: "%.1f data epochs", pdCurve.selectionDataEpochs) + ") and every blockwise stage's epochs"
        let measurable = readings.filter { $0.bp != nil }
        let ratios = measurable.compactMap { r in r.pdmm.map { Double(r.bp!.epoch) / Double($0.cumulativeEpochs) } }
        let epochVerdict: String
        if measurable.isEmpty {
            epochVerdict = "not measurable: bp reached no target"
        } else if ratios.count == measurable.count && ratios.allSatisfy({ $0 >= 10 * 0.999 }) {
            epochVerdict = "holds"
        } else if ratios.count < measurable.count {
            epochVerdict = "does not hold: PDMM never reaches \(measurable.filter { $0.pdmm == nil }.map { $0.label }.joined(separator: ", "))"
                + (ratios.isEmpty ? "" : String(format: "; bp / PDMM epochs %.2fx at best", ratios.max()!))
        } else {
            epochVerdict = String(format: "does not hold: bp / PDMM epochs %.2fx at best", ratios.max()!)
        }
        rows.append(("10x fewer epochs (epochs to X % test accuracy, read off the curves)", epochText, epochVerdict,
                     "\(base) compare --k \(k) --epochs \(epochs) --curve curves.csv --svg curves.svg"))

        var s = "# PDMM claims on the built-in digits data\n\n"
        s += "Network \(NetworkShapeText(widths)), batch 32, lr 0.05, seed \(seed), seeded 80/20 split "
        s += "(\(train.count) train / \(test.count) test), \(epochs) epochs, k = \(k). "
        s += String(format: "Test accuracy: bp %.2f%%, local(%d) %.2f%%, PDMM A_final %.2f%% (stable %.2f%%, error-aware %.2f%%).\n\n",
                    100 * bp.testAccuracy, k, 100 * local.testAccuracy, 100 * pd.finalAccuracy,
                    100 * pd.stableAccuracy, 100 * pd.errorAwareAccuracy)
        s += "| claim | measured | verdict | reproduce |\n|---|---|---|---|\n"
        for r in rows { s += "| \(r.0) | \(r.1) | \(r.2) | `\(r.3)` |\n" }
        if !a.has("no-noise") { s += "\n" + (try noiseClaims(a, epochs: epochs, k: k, seed: seed, train: train, test: test)) }
        out(s + "\n" + (try cnnClaims(a, k: k, seed: seed)))
        return 0
    }

    /// The default network of the CNN block: an MNIST-shaped CNN whose stored
    /// activations are many times its parameters (L = 5). (Two full-resolution
    /// 16-channel convolutions in a row are refused by `NetworkShape`'s size check,
    /// which bounds input words x output words of every layer by 2^25.)
    static let claimsCNN = "1x28x28: conv 16 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, "
        + "conv 32 3x3 same, relu, maxpool 2x2, conv 32 3x3 same, relu, flatten, dense 10"

    /// The CNN block of `pdmm claims`: the L/k activation claim and the 25x memory
    /// claim on a CNN where activations dominate (`--net`/`--input-shape`, default
    /// `claimsCNN`, at `--cnn-batch`, default 32). Every byte figure is planned and
    /// checked against the arena's high-water marks of real steps (2 per stage; the
    /// PDMM pipeline 1 epoch per phase) on seeded synthetic data of the network's shape.
    func cnnClaims(_ a: Arguments, k: Int, seed: UInt64) throws -> String {
        let shape = try flaggedNetwork(a, defaultWidths: [], defaultNet: Tool.claimsCNN)
        let batch = try a.int("cnn-batch", default: 32, min: 1)
        let L = shape.layerCount
        try TrainingMode.local(k: k).validate(layers: L)
        let ks = Array(Set([1, 2, k])).sorted().filter { $0 <= L }
        var modes: [TrainingMode] = [.bp]
        for j in ks { modes.append(.local(k: j)) }
        for j in ks { modes.append(.blockwise(k: j)) }
        let steps = 2
        let data = SyntheticData.make(features: shape.inputWidth, classes: shape.classCount, count: max(batch, 64), seed: seed)
        let rows = try MemoryReport.rows(shape: shape, batch: batch, modes: modes, optimizer: .sgd, budget: nil,
                                         data: data, seed: seed, steps: steps)
        let pd = try MemoryReport.pdmmPhases(shape: shape, data: data, k: k, batch: batch, optimizer: .sgd, seed: seed)
        let bp = rows[0]
        let paramBytes = 4 * shape.totalParameterCount
        func x(_ v: Double) -> String { String(format: "%.2fx", v) }
        func claimVerdict(_ measured: Double, _ claim: Double) -> String {
            if measured >= claim * 0.999 { return "holds" }
            return String(format: "does not hold: %.2fx of the claimed %.2fx", measured, claim)
        }
        var s = "## CNN block: the memory claims where activations dominate\n\n"
        s += "Network `\(shape.description)` (L = \(L) trainable layers, \(shape.totalParameterCount) parameters), "
        s += "batch \(batch), optimizer sgd, seeded synthetic data of the network's shape (\(data.count) samples). "
        s += "Memory figures only: each is the analytic plan, and the arena's high-water marks over \(steps) real steps per stage "
        s += "(the PDMM pipeline: 1 epoch per phase) equal it (column measured == planned), so the data's content does not matter.\n\n"
        s += "Activations dominate: bp's layer-input activations are \(bp.plan.layerInputBytes) B (a_0 included; activations.stored "
        s += "\(bp.plan.bytes[.activationsStored]) B) against \(paramBytes) B of parameters: activation/parameter bytes = "
        s += x(Double(bp.plan.layerInputBytes) / Double(paramBytes)) + ". bp's peak writable bytes by category: "
        s += MemoryCategory.allCases.filter { $0 != .weightsFrozen && bp.plan.bytes[$0] > 0 }
            .map { "\($0.name) \(bp.plan.bytes[$0])" }.joined(separator: ", ") + ".\n\n"
        s += "| mode | activations.stored B | layer-input activations B | activation ratio vs bp | claimed | verdict | "
        s += "peak writable B | peak-writable ratio vs bp | measured == planned |\n"
        s += "|---|---:|---:|---:|---:|---|---:|---:|---|\n"
        for r in rows {
            let act = Double(bp.plan.layerInputBytes) / Double(max(r.plan.layerInputBytes, 1))
            let isBP = r.mode == .bp
            s += "| \(r.mode.name) | \(r.plan.bytes[.activationsStored]) | \(r.plan.layerInputBytes) | \(x(act)) | "
            s += (isBP ? "- | - | " : "L/k = \(x(r.plan.claimedRatio)) | \(claimVerdict(act, r.plan.claimedRatio)) | ")
            s += "\(r.plan.peakWritable) | \(x(Double(bp.plan.peakWritable) / Double(r.plan.peakWritable))) | "
            s += (r.measured == r.plan.bytes && r.measuredLayerInputs == r.plan.layerInputBytes ? "yes" : "NO") + " |\n"
        }
        let pdRatio = Double(bp.plan.peakWritable) / Double(max(pd.peakPlanned, 1))
        s += "| PDMM pipeline (k = \(k)), peak over its phases | - | - | - | 25x (the document, peak) | "
        s += "\(claimVerdict(pdRatio, 25)) | \(pd.peakPlanned) | \(x(pdRatio)) | "
        s += (pd.peakMeasured == pd.peakPlanned && pd.phases.allSatisfy { $0.measured == $0.planned } ? "yes" : "NO") + " |\n"
        if let top = pd.phases.max(by: { $0.planned.writable < $1.planned.writable }) {
            s += "\nThe pipeline's peak is its phase \(top.name).\n"
        }
        s += "\nActivation ratio = bp's layer-input bytes / the mode's (the maximum over its stages); "
        s += "the verdict compares it with the claimed L/k. Reproduce: `swift run -c release pdmm claims --cnn-only`"
        s += " or `swift run -c release pdmm report --net \"\(shape.description)\" --batch \(batch) --k \(ks.map(String.init).joined(separator: ","))`.\n"
        return s
    }

    /// The noise block of `pdmm claims` (Tool+Noise.swift): the document's E-separation
    /// claims on the digits split with 0/10/20/40 % of the training labels flipped,
    /// min(--noise-epochs (20), --epochs) epochs per run, selection epochs at most that.
    func noiseClaims(_ a: Arguments, epochs: Int, k: Int, seed: UInt64, train: Dataset, test: Dataset) throws -> String {
        let n = min(try a.int("noise-epochs", default: 20, min: 1), epochs)
        var cfg = RunConfig()
        cfg.epochs = n
        cfg.seed = seed
        let shape = try NetworkShape(widths: [train.featureCount, 128, 128, 128, train.classes])
        var p = PDMMConfig()
        p.k = k
        p.seed = seed
        p.idealEpochs = n
        p.defectEpochs = n
        p.selectionEpochs = min(p.selectionEpochs, n)
        let levels = [0, 10, 20, 40]
        let rows = try NoiseExperiment.run(train: train, test: test, shape: shape, levels: levels, bp: cfg, pdmm: p)
        var s = "## Noise block: the Error Group against flipped labels\n\n"
        s += "Digits, the split above, \(levels.map { "\($0)" }.joined(separator: "/")) % of the training labels flipped "
        s += "(seeded, each to another class; test labels never), \(n) epochs for bp, G_Ideal and defect learning, "
        s += "\(p.selectionEpochs) per selection fold, the default PDMM settings otherwise.\n\n"
        s += NoiseExperiment.table(rows) + "\n" + NoiseExperiment.legend + "\n\n"
        s += "| claim | measured | verdict | reproduce |\n|---|---|---|---|\n"
        for v in NoiseExperiment.verdicts(rows, idealFraction: p.idealFraction) {
            s += "| \(v.0) | \(v.1) | \(v.2) | `swift run -c release pdmm noise --epochs \(n) --k \(k)"
            s += (p.selectionEpochs != PDMMConfig().selectionEpochs ? " --selection-epochs \(p.selectionEpochs)" : "") + "` |\n"
        }
        return s
    }

    func verdict(_ measured: Double, claim: Double, what: String) -> String {
        if measured >= claim * 0.999 { return "holds" }
        if measured >= 1 { return String(format: "does not hold: %.2fx of the claimed %.0fx", measured, claim) }
        return String(format: "does not hold: PDMM uses %.2fx MORE %@", 1 / measured, what)
    }
}
