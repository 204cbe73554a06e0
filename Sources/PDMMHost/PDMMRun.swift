import Foundation
import PDMMEngine

/// A timed PDMM pipeline run and its results.
public struct PDMMResult {
    public var config: PDMMConfig
    public var phases: [PhaseRecord]
    /// Wall seconds per phase, in the order of `phases` (one entry per record; the
    /// interleaved defect-learning and IVC phases share their wall time by MAC shares).
    public var seconds: [Double]
    /// |D_Ideal| = idealTrainCount + holdoutCount.
    public var idealCount: Int
    /// The part of D_Ideal G_Ideal trains on, and the part held out from it.
    public var idealTrainCount: Int
    public var holdoutCount: Int
    /// |D_new| = |D| - |D_Ideal|.
    public var restCount: Int
    /// |E|: the D_new samples deviating more than I_threshold.
    public var errorCount: Int
    /// |D|: the training split.
    /// Members of E that G_Ideal misclassified (the others it classified right, but with a deviation above I_threshold).
    public var errorMisclassified: Int
    public var trainCount: Int
    public var testCount: Int
    /// The most frequent (true, predicted) pairs among E's misclassified members.
    public var topPairs: [((Int, Int), Int)]
    public var stableAccuracy: Double
    public var errorAwareAccuracy: Double
    public var finalAccuracy: Double
    /// How D_Ideal was chosen.
    public var selection: IdealSelection
    /// The rule that gave I_threshold (`config.threshold`).
    public var thresholdOrigin: ErrorThreshold
    /// I_threshold in nats.
    public var threshold: Double
    /// The last IVC step's U_E.
    public var uncertainty: Double
    public var ivcSteps: Int
    /// One record per IVC step (step, U_E, L_BP, L_Delta).
    public var ivcTrace: [IVCRecord]
    /// The Dual-System Decision on the test set (counts, differs, lambda's quartiles).
    public var decision: DualDecision
    public var saturations: UInt64
    public var peakPlanned: Int
    public var peakMeasured: Int
    public var hash: UInt64
    /// G_Ideal's weights hash (IVC on G_Ideal changes it, not `hash`).
    public var stableHash: UInt64 = 0
    /// D_Ideal came from the data's verified column, not from idealFraction.
    public var idealFromFlags: Bool

    /// |E| / |D|.
    public var errorShare: Double { Double(errorCount) / Double(max(trainCount, 1)) }

    /// The trace as CSV: `step,U_E,L_BP,L_Delta`, one row per IVC step.
    public var traceCSV: String { IVCRecord.traceCSV(ivcTrace) { String(format: "%.6f", $0) } }
}

public func runPDMM(_ cfg: PDMMConfig, shape: NetworkShape, train: Dataset, test: Dataset) throws -> PDMMResult {
    let p = try PDMMPipeline(shape: shape, config: cfg, train: train)
    var secs: [Double] = []
    // Times one phase method and gives its wall time to the records it added: none
    // (selection made at init, an empty E), one, or two (defect learning and IVC,
    // interleaved: split by their MAC shares, IVC's validation and U_E passes included).
    func timed(_ body: () throws -> Void) rethrows {
        let before = p.phases.count
        let t0 = Date()
        try body()
        let dt = Date().timeIntervalSince(t0)
        let added = p.phases[before...]
        if added.count == 1 { secs.append(dt); return }
        let weights = added.map { Double($0.macs.total + $0.macs.evaluation) }
        let sum = weights.reduce(0, +)
        for w in weights { secs.append(sum > 0 ? dt * w / sum : dt / Double(weights.count)) }
    }
    try timed { try p.selectIdeal() }
    try timed { try p.learnIdeal() }
    try timed { try p.separate() }
    try timed { try p.learnDefects() }
    var decision = DualDecision()
    try timed { decision = try p.decide(test) }
    precondition(secs.count == p.phases.count, "runPDMM: phase times do not line up with the phases")
    var counts: [String: Int] = [:]
    for (t, pr) in p.errorPairs where t != pr { counts["\(t)>\(pr)", default: 0] += 1 }
    let pairs = counts.map { (k, v) -> ((Int, Int), Int) in
        let parts = k.split(separator: ">").map { Int($0)! }
        return ((parts[0], parts[1]), v)
    }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : ($0.0.0, $0.0.1) < ($1.0.0, $1.0.1) }
    let peak = p.peakWritable
    let n = Double(max(test.count, 1))
    var result = PDMMResult(config: cfg, phases: p.phases, seconds: secs, idealCount: p.ideal.count,
                      idealTrainCount: p.idealTrain.count, holdoutCount: p.idealHoldout.count,
                      restCount: p.rest.count, errorCount: p.errorGroup.count,
                      errorMisclassified: p.errorPairs.filter { $0.0 != $0.1 }.count, trainCount: train.count,
                      testCount: test.count, topPairs: Array(pairs.prefix(5)),
                      stableAccuracy: Double(decision.stable) / n,
                      errorAwareAccuracy: Double(decision.errorAware) / n,
                      finalAccuracy: Double(decision.final) / n,
                      selection: p.selection, thresholdOrigin: cfg.threshold,
                      threshold: Double(p.thresholdQ16) / 65536, uncertainty: Double(p.lastUncertainty) / 65536,
                      ivcSteps: p.ivcCount, ivcTrace: p.ivcTrace, decision: decision,
                      saturations: p.saturations, peakPlanned: peak.planned,
                      peakMeasured: peak.measured, hash: p.errorAware.weightsHash,
                      idealFromFlags: p.selection == .verified)
    result.stableHash = p.stable.weightsHash
    return result
}

extension Tool {
    /// `--trace FILE`: the run's IVC trace as CSV, written atomically.
    func writePDMMTrace(_ a: Arguments, _ r: PDMMResult) throws {
        if let path = a.string("trace") { try writeAtomically(r.traceCSV, to: path) }
    }
}

public enum PDMMText {
    static func f(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
    static func pct(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
    static func q16(_ v: Int32) -> String { f(Double(v) / 65536) }

    /// How D_Ideal was chosen, in words.
    public static func selectionText(_ r: PDMMResult) -> String {
        let c = r.config
        switch r.selection {
        case .verified:
            return "the samples the data flags as verified (--verified-column)"
        case .confident:
            return "confident learning (Northcutt et al. 2021): per class the \(pct(c.idealFraction)) of samples with the "
                + "highest out-of-fold probability of their own label (\(c.selectionFolds)-fold bp, \(c.selectionEpochs) epochs per fold)"
        case .random:
            return "a seeded class-stratified random \(pct(c.idealFraction)) of each class (for comparison)"
        }
    }

    /// Where I_threshold came from, in words.
    public static func thresholdText(_ r: PDMMResult) -> String {
        switch r.thresholdOrigin {
        case .idealQuantile(let q):
            return "the \(q)-quantile of G_Ideal's deviations on the \(r.holdoutCount) held-out D_Ideal samples"
        case .value:
            return "given (--threshold)"
        case .fraction(let fr):
            return "set so that E holds \(pct(fr)) of D (--error-fraction \(fr))"
        }
    }

    public static func summary(_ r: PDMMResult) -> String {
        let c = r.config
        var s = "PDMM pipeline: k \(c.k), ideal \(c.idealBackprop ? "bp" : "blockwise(\(c.k))") \(c.idealEpochs) epochs, "
        s += "defect local(\(c.k)) \(c.defectEpochs) epochs, IVC on \(c.ivcTarget == .ideal ? "G_Ideal (Theorem 1)" : "the error-aware copy") "
        s += "every \(c.ivcPeriod) steps (alpha \(c.alpha), beta \(c.beta), gamma \(c.gamma)), lambdaMax \(c.lambdaMax)\n"
        s += "D_Ideal: \(selectionText(r))\n"
        s += "|D| \(r.trainCount)  |D_Ideal| \(r.idealCount) = \(r.idealTrainCount) G_Ideal trains on + \(r.holdoutCount) held out  "
        s += "|D_new| \(r.restCount)\n"
        s += "I_threshold \(f(r.threshold)) nats: \(thresholdText(r))\n"
        if r.errorCount == 0 {
            s += "|E| 0 (0.0% of D): E is empty: defect learning and IVC skipped (no D_new sample deviates more than I_threshold; "
            s += "the error-aware model is G_Ideal's copy)\n"
        } else {
            if case .fraction = r.thresholdOrigin {
                s += "|E| \(r.errorCount) (\(pct(r.errorShare)) of D, as set by --error-fraction)"
            } else {
                s += "|E| \(r.errorCount) (\(pct(r.errorShare)) of D, an outcome)"
            }
            s += ": the D_new samples deviating more than I_threshold; G_Ideal misclassifies \(r.errorMisclassified) of them\n"
            if !r.topPairs.isEmpty {
                s += "top error pairs among them (true>predicted: count): "
                s += r.topPairs.map { "\($0.0.0)>\($0.0.1): \($0.1)" }.joined(separator: ", ") + "\n"
            }
            if c.ivcPeriod == 0 {
                s += "IVC off (--ivc-period 0)\n"
            } else if let first = r.ivcTrace.first, let last = r.ivcTrace.last {
                s += "IVC: \(r.ivcSteps) steps; first (step \(first.step)) U_E \(f(first.uncertainty)) L_BP \(f(first.lossBP)) "
                s += "L_Delta \(f(first.lossDelta, 6)); last (step \(last.step)) U_E \(f(last.uncertainty)) L_BP \(f(last.lossBP)) "
                s += "L_Delta \(f(last.lossDelta, 6)); the full trace: --trace FILE\n"
            } else {
                s += "IVC: 0 steps (the defect run was shorter than --ivc-period \(c.ivcPeriod) steps)\n"
            }
        }
        s += String(format: "test accuracy: stable head %.2f%%  error-aware %.2f%%  A_final %.2f%%\n",
                    100 * r.stableAccuracy, 100 * r.errorAwareAccuracy, 100 * r.finalAccuracy)
        if let l = r.decision.lambda {
            s += "lambda on the \(r.testCount) test samples: min \(q16(l.min))  lower quartile \(q16(l.lower))  "
            s += "median \(q16(l.median))  upper quartile \(q16(l.upper))  max \(q16(l.max))  (lambdaMax \(c.lambdaMax))\n"
        }
        s += "A_final differs from the stable head on \(r.decision.differs) of \(r.testCount) test samples "
        s += "(\(pct(Double(r.decision.differs) / Double(max(r.testCount, 1)))))\n"
        s += "saturations \(r.saturations)\n\n"
        s += phaseTable(r)
        return s
    }

    public static func phaseTable(_ r: PDMMResult) -> String {
        var s = "| phase | planned peak writable B | measured peak writable B | also resident B | read-only B | MACs fwd | MACs bwd | MACs update | MACs eval | wall s |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i, ph) in r.phases.enumerated() {
            s += "| \(ph.name) | \(ph.planned.writable) | \(ph.measured.writable) | \(ph.alsoResident.writable) | "
            s += "\(ph.measured.weightsFrozen) | \(ph.macs.forward) | \(ph.macs.backward) | \(ph.macs.update) | \(ph.macs.evaluation) | "
            s += String(format: "%.3f", i < r.seconds.count ? r.seconds[i] : 0) + " |\n"
        }
        s += "| **pipeline peak (max over phases of writable + also resident)** | \(r.peakPlanned) | \(r.peakMeasured) | | | | | | | "
        s += "\(String(format: "%.3f", r.seconds.reduce(0, +))) |\n"
        return s
    }
}
