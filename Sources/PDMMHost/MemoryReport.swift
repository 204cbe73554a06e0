import Foundation
import PDMMEngine

/// One row of the memory report: a mode's plan and what its arena measured.
public struct ReportRow {
    public let mode: TrainingMode
    public let plan: MemoryPlan
    public let measured: ByteCounts
    public let measuredLayerInputs: Int
    public let peakLive: Int
    public let budget: Int?
    /// Peak writable bytes without the dense forward's packed block (`MemoryPlan.packedForward`
    /// false): what a run in a tight budget uses instead, with the same results.
    public let unpackedPeak: Int
    public var fits: Bool { budget.map { plan.peakWritable <= $0 || unpackedPeak <= $0 } ?? true }
    /// The budget verdict: "yes", "yes (unpacked forward)" or "NO: short N B".
    public var verdict: String {
        guard let b = budget else { return "(no budget)" }
        if plan.peakWritable <= b { return "yes" }
        if unpackedPeak <= b { return "yes (unpacked forward)" }
        return "NO: short \(unpackedPeak - b) B"
    }
}

/// Builds the report: every mode planned, then measured by real steps.
public enum MemoryReport {
    /// Plans and measures `modes`. Measuring runs `steps` real training steps
    /// per stage in an arena of exactly the planned size on `data`.
    public static func rows(shape: NetworkShape, batch: Int, modes: [TrainingMode], optimizer: OptimizerKind,
                            budget: Int?, data: Dataset, seed: UInt64, steps: Int = 2) throws(EngineError) -> [ReportRow] {
        var out: [ReportRow] = []
        for mode in modes {
            let plan = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer)
            let model = Model(shape: shape, seed: seed)
            let t = try Trainer(model: model, batch: batch, mode: mode, optimizer: optimizer,
                                options: TrainingOptions(learningRate: 0.01, seed: seed), budget: plan.peakWritable)
            var layerInputs = 0
            for s in 0..<t.stageCount {
                t.beginStage(s)
                for i in 0..<steps {
                    let rows = min(batch, data.count)
                    try stepOn(t, data, rows: rows, offset: i * rows)
                }
                // The stage's own high-water of stored activations (the arena keeps the
                // maximum over stages, so measure each stage's with a fresh reading).
                let st = plan.stages[s]
                layerInputs = max(layerInputs, t.arena.stagePeak.activationsStored + (st.frozenCount == 0 ? 4 * batch * shape.inputWidth : 0))
            }
            t.endStage()
            let unpacked = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer, packedForward: false)
            out.append(ReportRow(mode: mode, plan: plan, measured: t.arena.peak, measuredLayerInputs: layerInputs,
                                 peakLive: t.arena.peakLive, budget: budget, unpackedPeak: unpacked.peakWritable))
        }
        return out
    }

    /// The PDMM pipeline's phases, measured by running it on `data` (training and test set) for its
    /// memory only: 1 epoch per phase and IVC every step (memory does not depend on the epoch count).
    static func pdmmPhases(shape: NetworkShape, data: Dataset, k: Int, batch: Int, optimizer: OptimizerKind,
                           seed: UInt64) throws -> PDMMResult {
        var p = PDMMConfig()
        p.k = k
        p.batch = batch
        p.optimizer = optimizer
        p.seed = seed
        p.idealEpochs = 1
        p.defectEpochs = 1
        p.ivcPeriod = 1
        return try runPDMM(p, shape: shape, train: data, test: data)
    }

    static func stepOn(_ t: Trainer, _ data: Dataset, rows: Int, offset: Int) throws(EngineError) {
        try t.validate(data)
        var f = [Int32](repeating: 0, count: rows * data.featureCount)
        var l = [Int32](repeating: 0, count: rows)
        for r in 0..<rows {
            let s = (offset + r) % data.count
            for j in 0..<data.featureCount { f[r * data.featureCount + j] = data.feature(s, j) }
            l[r] = data.label(s)
        }
        _ = try f.withUnsafeBufferPointer { fp throws(EngineError) in
            try l.withUnsafeBufferPointer { lp throws(EngineError) in try t.step(features: fp, labels: lp) }
        }
    }

    static var categories: [MemoryCategory] { MemoryCategory.allCases }

    public static func markdown(_ rows: [ReportRow], rss: Int?) -> String {
        guard let bp = rows.first(where: { $0.mode == .bp }) ?? rows.first else { return "" }
        let shape = bp.plan.shape
        var s = "# Memory report: \(shape.description), batch \(bp.plan.batch), optimizer \(bp.plan.optimizer.name)\n\n"
        s += "Bytes per category. Planned = the analytic plan; measured = the arena's high-water marks while real training steps ran.\n\n"
        for (title, pick) in [("Planned", { (r: ReportRow) in r.plan.bytes }), ("Measured", { (r: ReportRow) in r.measured })] {
            s += "## \(title)\n\n| mode | " + categories.map(\.name).joined(separator: " | ") + " | peak writable |\n"
            s += "|---|" + String(repeating: "---:|", count: categories.count + 1) + "\n"
            for r in rows {
                let b = pick(r)
                s += "| \(r.mode.name) | " + categories.map { "\(b[$0])" }.joined(separator: " | ") + " | \(b.writable) |\n"
            }
            s += "\n"
        }
        s += "## Ratios against bp\n\n"
        s += "| mode | layer-input activations | activation ratio vs bp | claimed L/k | peak writable | writable ratio vs bp | read-only | fits budget | measured == planned |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---|---|\n"
        for r in rows {
            let actRatio = Double(bp.measuredLayerInputs) / Double(max(r.measuredLayerInputs, 1))
            let wRatio = Double(bp.measured.writable) / Double(max(r.measured.writable, 1))
            let claimed = r.mode == .bp || r.mode == .bpCheckpoint ? "-" : String(format: "%.2f", r.plan.claimedRatio)
            let fits = r.verdict
            s += "| \(r.mode.name) | \(r.measuredLayerInputs) | \(String(format: "%.2f", actRatio)) | \(claimed) | "
            s += "\(formatBytes(r.measured.writable)) | \(String(format: "%.2f", wRatio)) | \(formatBytes(r.measured.weightsFrozen)) | \(fits) | "
            s += (r.measured == r.plan.bytes ? "yes" : "NO") + " |\n"
        }
        if let rss { s += "\nProcess peak RSS: \(formatBytes(rss)) (the whole host process: Swift runtime, data set, all runs).\n" }
        return s
    }

    public static func csv(_ rows: [ReportRow]) -> String {
        var s = "mode,kind," + categories.map(\.name).joined(separator: ",") + ",peak_writable,layer_inputs,claimed_ratio,fits\n"
        for r in rows {
            for (kind, b, li) in [("planned", r.plan.bytes, r.plan.layerInputBytes), ("measured", r.measured, r.measuredLayerInputs)] {
                s += "\(r.mode.name),\(kind)," + categories.map { "\(b[$0])" }.joined(separator: ",")
                s += ",\(b.writable),\(li),\(r.plan.claimedRatio),\(r.fits)\n"
            }
        }
        return s
    }

    public static func pdmmMarkdown(_ r: PDMMResult, bp: ReportRow, budget: Int?) -> String {
        var s = "\n## PDMM pipeline (k = \(r.config.k)), per phase\n\n"
        s += "Each phase runs in its own arena; the defect-learning and IVC arenas are resident together (IVC on G_Ideal), so the pipeline's peak is the maximum over phases of a phase's bytes plus those also resident.\n\n"
        s += "| phase | kind | " + categories.map(\.name).joined(separator: " | ") + " | peak writable |\n"
        s += "|---|---|" + String(repeating: "---:|", count: categories.count + 1) + "\n"
        for ph in r.phases {
            for (kind, b) in [("planned", ph.planned), ("measured", ph.measured)] {
                s += "| \(ph.name) | \(kind) | " + categories.map { "\(b[$0])" }.joined(separator: " | ") + " | \(b.writable) |\n"
            }
        }
        let ratio = Double(bp.measured.writable) / Double(max(r.peakMeasured, 1))
        s += "\nPipeline peak writable: planned \(r.peakPlanned) B, measured \(r.peakMeasured) B; "
        s += String(format: "bp / PDMM peak = %.2fx (the document claims 25x)", ratio)
        if let budget { s += r.peakPlanned <= budget ? "; fits the budget" : "; does NOT fit the budget (short \(r.peakPlanned - budget) B)" }
        return s + ".\n"
    }

    public static func pdmmCSV(_ r: PDMMResult) -> String {
        var s = ""
        for ph in r.phases {
            for (kind, b) in [("planned", ph.planned), ("measured", ph.measured)] {
                s += "pdmm: \(ph.name),\(kind)," + categories.map { "\(b[$0])" }.joined(separator: ",")
                s += ",\(b.writable),,,\n"
            }
        }
        return s
    }

    public static func json(_ rows: [ReportRow], rss: Int?, pdmm: PDMMResult? = nil) -> String {
        func obj(_ b: ByteCounts) -> String {
            "{" + categories.map { "\"\($0.name)\": \(b[$0])" }.joined(separator: ", ") + "}"
        }
        let bp = rows.first(where: { $0.mode == .bp }) ?? rows[0]
        var items: [String] = []
        for r in rows {
            var s = "    {\"mode\": \"\(r.mode.name)\", \"planned\": \(obj(r.plan.bytes)), \"measured\": \(obj(r.measured)), "
            s += "\"peak_writable_planned\": \(r.plan.peakWritable), \"peak_writable_measured\": \(r.measured.writable), "
            s += "\"read_only\": \(r.measured.weightsFrozen), \"layer_inputs_planned\": \(r.plan.layerInputBytes), "
            s += "\"layer_inputs_measured\": \(r.measuredLayerInputs), "
            s += "\"activation_ratio_vs_bp\": \(Double(bp.measuredLayerInputs) / Double(max(r.measuredLayerInputs, 1))), "
            s += "\"writable_ratio_vs_bp\": \(Double(bp.measured.writable) / Double(max(r.measured.writable, 1))), "
            s += "\"claimed_ratio\": \(r.plan.claimedRatio), \"fits\": \(r.fits)}"
            items.append(s)
        }
        let shape = bp.plan.shape
        // "layers" (the widths) for a dense ReLU stack, as before; "network" (the text form) always.
        let layers = shape.spec == (try? NetworkSpec.denseStack(widths: shape.widths))
            ? "\"layers\": [\(shape.widths.map(String.init).joined(separator: ", "))], " : ""
        return "{\n  \(layers)\"network\": \"\(jsonEscaped(shape.description))\", \"batch\": \(bp.plan.batch), "
            + "\"optimizer\": \"\(bp.plan.optimizer.name)\", \"budget\": \(rows[0].budget.map(String.init) ?? "null"), "
            + "\"peak_rss\": \(rss.map(String.init) ?? "null"),\n  \"modes\": [\n" + items.joined(separator: ",\n") + "\n  ]"
            + (pdmm.map { p in
                ",\n  \"pdmm\": {\"k\": \(p.config.k), \"peak_writable_planned\": \(p.peakPlanned), \"peak_writable_measured\": \(p.peakMeasured), \"phases\": [\n"
                    + p.phases.map { ph in
                        "    {\"phase\": \"\(ph.name)\", \"planned\": \(obj(ph.planned)), \"measured\": \(obj(ph.measured))}"
                    }.joined(separator: ",\n") + "\n  ]}"
            } ?? "") + "\n}"
    }
}

/// `text` with JSON's string escapes (quotes, backslashes, control characters).
func jsonEscaped(_ text: String) -> String {
    var s = ""
    for u in text.unicodeScalars {
        switch u {
        case "\"": s += "\\\""
        case "\\": s += "\\\\"
        case _ where u.value < 0x20: s += String(format: "\\u%04x", u.value)
        default: s.unicodeScalars.append(u)
        }
    }
    return s
}

/// Peak resident set size of this process in bytes (getrusage).
public func peakRSS() -> Int? {
    var u = rusage()
    guard getrusage(RUSAGE_SELF.rawValue, &u) == 0 else { return nil }
    return Int(u.ru_maxrss) * 1024
}
