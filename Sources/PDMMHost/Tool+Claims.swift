import Foundation
import PDMMEngine

extension Tool {
    /// `pdmm claims`: the experiment behind each claim of the PDMM document,
    /// on the built-in data, with the command that reproduces each row.
    func claims(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["epochs", "k", "seed", "target"])
        let epochs = try a.int("epochs", default: 30, min: 1)
        let k = try a.int("k", default: 2, min: 1)
        let seed = UInt64(try a.int("seed", default: 1, min: 0))
        let target = try a.double("target", default: 0.95)
        let widths = [64, 128, 128, 128, 10]
        let L = widths.count - 1
        try TrainingMode.local(k: k).validate(layers: L)
        let (train, test, scaling) = prepareSplit(BuiltinData.digits(), seed: seed)

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
        let pd = try runPDMM(p, widths: widths, train: train, test: test)
        let pdMACs = pd.phases.reduce(UInt64(0)) { $0 + $1.macs.total + ($1.name.hasPrefix("information") ? $1.macs.evaluation : 0) }

        // epochs to reach the target accuracy
        let bpEpochs = bpCurve.firstIndex(where: { $0 >= target }).map { $0 + 1 }
        var pdEpochs: Int?
        for e in [1, 2, 3, 5, 10, 20, 30, 50].filter({ $0 <= max(epochs, 50) }) {
            var q = p
            q.idealEpochs = e
            q.defectEpochs = e
            if try runPDMM(q, widths: widths, train: train, test: test).finalAccuracy >= target { pdEpochs = e; break }
        }

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
        let epochText: String
        let epochVerdict: String
        switch (bpEpochs, pdEpochs) {
        case let (b?, q?):
            epochText = "bp \(b) epochs, PDMM A_final \(q) epochs: \(String(format: "%.2f", Double(b) / Double(q)))x"
            epochVerdict = verdict(Double(b) / Double(q), claim: 10, what: "epochs")
        case let (b?, nil):
            epochText = "bp reaches \(Int(target * 100))% in \(b) epochs; PDMM A_final never did (tried up to 50)"
            epochVerdict = "does not hold"
        case (nil, _):
            epochText = "bp did not reach \(Int(target * 100))% in \(epochs) epochs"
            epochVerdict = "not measurable at this target"
        }
        rows.append(("10x fewer epochs (to \(Int(target * 100))% test accuracy)", epochText, epochVerdict,
                     "\(base) train --epochs \(epochs); \(base) train --mode pdmm --k \(k) --epochs N"))

        var s = "# PDMM claims on the built-in digits data\n\n"
        s += "Network \(NetworkShapeText(widths)), batch 32, lr 0.05, seed \(seed), seeded 80/20 split "
        s += "(\(train.count) train / \(test.count) test), \(epochs) epochs, k = \(k). "
        s += String(format: "Test accuracy: bp %.2f%%, local(%d) %.2f%%, PDMM A_final %.2f%% (stable %.2f%%, error-aware %.2f%%).\n\n",
                    100 * bp.testAccuracy, k, 100 * local.testAccuracy, 100 * pd.finalAccuracy,
                    100 * pd.stableAccuracy, 100 * pd.errorAwareAccuracy)
        s += "| claim | measured | verdict | reproduce |\n|---|---|---|---|\n"
        for r in rows { s += "| \(r.0) | \(r.1) | \(r.2) | `\(r.3)` |\n" }
        out(s)
        return 0
    }

    func verdict(_ measured: Double, claim: Double, what: String) -> String {
        if measured >= claim * 0.999 { return "holds" }
        if measured >= 1 { return String(format: "does not hold: %.2fx of the claimed %.0fx", measured, claim) }
        return String(format: "does not hold: PDMM uses %.2fx MORE %@", 1 / measured, what)
    }
}
