import Foundation
import PDMMEngine

/// A timed PDMM pipeline run and its results.
public struct PDMMResult {
    public var config: PDMMConfig
    public var phases: [PhaseRecord]
    public var seconds: [Double]           // per phase, same order
    public var idealCount: Int
    public var errorCount: Int
    public var trainCount: Int
    public var topPairs: [((Int, Int), Int)]
    public var stableAccuracy: Double
    public var errorAwareAccuracy: Double
    public var finalAccuracy: Double
    public var threshold: Double
    public var uncertainty: Double
    public var ivcSteps: Int
    public var saturations: UInt64
    public var peakPlanned: Int
    public var peakMeasured: Int
    public var hash: UInt64
    /// D_Ideal came from the data's verified column, not from idealFraction.
    public var idealFromFlags: Bool
}

public func runPDMM(_ cfg: PDMMConfig, shape: NetworkShape, train: Dataset, test: Dataset) throws -> PDMMResult {
    let p = try PDMMPipeline(shape: shape, config: cfg, train: train)
    var secs: [Double] = []
    func timed(_ body: () throws -> Void) rethrows {
        let t0 = Date()
        try body()
        secs.append(Date().timeIntervalSince(t0))
    }
    try timed { try p.learnIdeal() }
    try timed { try p.separate() }
    let t0 = Date()
    try p.learnDefects()
    let defectTime = Date().timeIntervalSince(t0)
    // split defect/IVC wall time by their MAC shares (both run interleaved)
    let dm = Double(p.phases.last(where: { $0.name.hasPrefix("local defect") })?.macs.total ?? 0)
    let im = Double(p.phases.last(where: { $0.name.hasPrefix("information") }).map { $0.macs.total + $0.macs.evaluation } ?? 0)
    secs.append(defectTime * dm / max(dm + im, 1))
    if cfg.ivcPeriod > 0 { secs.append(defectTime * im / max(dm + im, 1)) }
    var decision = DualDecision()
    try timed { decision = try p.decide(test) }
    var counts: [String: Int] = [:]
    for (t, pr) in p.errorPairs { counts["\(t)>\(pr)", default: 0] += 1 }
    let pairs = counts.map { (k, v) -> ((Int, Int), Int) in
        let parts = k.split(separator: ">").map { Int($0)! }
        return ((parts[0], parts[1]), v)
    }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : ($0.0.0, $0.0.1) < ($1.0.0, $1.0.1) }
    let peak = p.peakWritable
    return PDMMResult(config: cfg, phases: p.phases, seconds: secs, idealCount: p.ideal.count,
                      errorCount: p.errorGroup.count, trainCount: train.count, topPairs: Array(pairs.prefix(5)),
                      stableAccuracy: Double(decision.stable) / Double(test.count),
                      errorAwareAccuracy: Double(decision.errorAware) / Double(test.count),
                      finalAccuracy: Double(decision.final) / Double(test.count),
                      threshold: Double(p.thresholdQ16) / 65536, uncertainty: Double(p.lastUncertainty) / 65536,
                      ivcSteps: p.ivcCount, saturations: p.saturations, peakPlanned: peak.planned,
                      peakMeasured: peak.measured, hash: p.errorAware.weightsHash,
                      idealFromFlags: train.verified != nil)
}

public enum PDMMText {
    public static func summary(_ r: PDMMResult) -> String {
        var s = "PDMM pipeline: k \(r.config.k), "
        s += r.idealFromFlags ? "D_Ideal = the verified samples, " : "ideal fraction \(r.config.idealFraction), "
        s += "ideal \(r.config.idealBackprop ? "bp" : "blockwise(\(r.config.k))") \(r.config.idealEpochs) epochs, "
        s += "defect \(r.config.defectEpochs) epochs, IVC every \(r.config.ivcPeriod) steps, lambdaMax \(r.config.lambdaMax)\n"
        s += "|D| \(r.trainCount)  |D_Ideal| \(r.idealCount)  |E| \(r.errorCount) (\(String(format: "%.1f", 100 * Double(r.errorCount) / Double(r.trainCount)))% of D), "
        s += "I_threshold \(String(format: "%.4f", r.threshold)) nats\n"
        s += "top error pairs (true>predicted: count): " + r.topPairs.map { "\($0.0.0)>\($0.0.1): \($0.1)" }.joined(separator: ", ") + "\n"
        s += String(format: "test accuracy: stable head %.2f%%  error-aware %.2f%%  A_final %.2f%%\n",
                    100 * r.stableAccuracy, 100 * r.errorAwareAccuracy, 100 * r.finalAccuracy)
        s += "IVC steps \(r.ivcSteps), last U_E \(String(format: "%.4f", r.uncertainty)), saturations \(r.saturations)\n\n"
        s += phaseTable(r)
        return s
    }

    public static func phaseTable(_ r: PDMMResult) -> String {
        var s = "| phase | planned peak writable B | measured peak writable B | read-only B | MACs fwd | MACs bwd | MACs update | MACs eval | wall s |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i, ph) in r.phases.enumerated() {
            s += "| \(ph.name) | \(ph.planned.writable) | \(ph.measured.writable) | \(ph.measured.weightsFrozen) | "
            s += "\(ph.macs.forward) | \(ph.macs.backward) | \(ph.macs.update) | \(ph.macs.evaluation) | "
            s += String(format: "%.3f", i < r.seconds.count ? r.seconds[i] : 0) + " |\n"
        }
        s += "| **pipeline peak (max over phases)** | \(r.peakPlanned) | \(r.peakMeasured) | | | | | | \(String(format: "%.3f", r.seconds.reduce(0, +))) |\n"
        return s
    }
}
