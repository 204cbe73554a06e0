import Foundation
import PDMMEngine

extension Tool {
    func report(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["layers", "batch", "k", "budget", "format", "svg", "optimizer",
                                             "momentum", "seed", "steps"])
        let widths = try a.intList("layers", default: [64, 128, 128, 128, 10])
        let batch = try a.int("batch", default: 32)
        let shape = try NetworkShape(widths: widths)
        let L = shape.layerCount
        let ks = try a.intList("k", default: [1, 2, 3].filter { $0 <= L })
        let budget = try a.size("budget")
        let format = a.string("format") ?? "md"
        guard ["md", "csv", "json"].contains(format) else {
            throw UsageError("--format: unknown format '\(format)' (expected md, csv, json)")
        }
        let optimizer = try parseOptimizer(a)
        var modes: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in ks { modes.append(.local(k: k)) }
        for k in ks { modes.append(.blockwise(k: k)) }
        for m in modes { try m.validate(layers: L) }
        let seed = UInt64(try a.int("seed", default: 1, min: 0))
        let builtin = BuiltinData.digits()
        let data: Dataset
        if widths[0] == builtin.featureCount && widths[L] == builtin.classes {
            data = prepareSplit(builtin, seed: seed).train
        } else {
            data = SyntheticData.make(features: widths[0], classes: widths[L], count: max(batch, 64), seed: seed)
        }
        let rows = try MemoryReport.rows(widths: widths, batch: batch, modes: modes, optimizer: optimizer,
                                         budget: budget, data: data, seed: seed,
                                         steps: try a.int("steps", default: 2, min: 1))
        // The PDMM pipeline's phases, measured by running it (1 epoch per phase: memory
        // does not depend on the epoch count).
        var pdmm: PDMMResult?
        if L >= 1 {
            var p = PDMMConfig()
            p.k = ks.filter { $0 <= L }.max() ?? 1
            p.batch = batch
            p.optimizer = optimizer
            p.seed = seed
            p.idealEpochs = 1
            p.defectEpochs = 1
            p.ivcPeriod = 1
            pdmm = try runPDMM(p, widths: widths, train: data, test: data)
        }
        let rss = peakRSS()
        switch format {
        case "csv": out(MemoryReport.csv(rows) + (pdmm.map { MemoryReport.pdmmCSV($0) } ?? ""))
        case "json": out(MemoryReport.json(rows, rss: rss, pdmm: pdmm))
        default: out(MemoryReport.markdown(rows, rss: rss) + (pdmm.map { MemoryReport.pdmmMarkdown($0, bp: rows[0], budget: budget) } ?? ""))
        }
        if let path = a.string("svg") {
            let svg = try DepthChart.svg(hiddenWidth: widths.count > 2 ? widths[1] : widths[0], input: widths[0],
                                         classes: widths[L], batch: batch, ks: ks, optimizer: optimizer)
            try writeAtomically(svg, to: path)
            err("pdmm: wrote \(path)")
        }
        return 0
    }

    func fit(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["budget", "layers", "optimizer", "momentum", "batch"])
        guard let budget = try a.size("budget") else { throw UsageError("fit needs --budget SIZE") }
        let widths = try a.intList("layers", default: [64, 128, 128, 128, 10])
        let shape = try NetworkShape(widths: widths)
        let optimizer = try parseOptimizer(a)
        let batch = try a.int("batch", default: 32, min: 1)
        let L = shape.layerCount
        var s = "# Fit: \(shape.description) in \(formatBytes(budget)) (\(budget) B) of writable memory, optimizer \(optimizer.name)\n\n"
        s += "| mode | largest batch that fits | peak writable at that batch |\n|---|---:|---:|\n"
        var modes: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in 1...L { modes.append(.local(k: k)) }
        for k in 1...L { modes.append(.blockwise(k: k)) }
        for m in modes {
            let best = try Fit.largestBatch(shape: shape, mode: m, optimizer: optimizer, budget: budget)
            if let b = best {
                let p = try MemoryPlan.fitting(shape: shape, batch: b, mode: m, optimizer: optimizer, budget: budget)
                s += "| \(m.name) | \(b) | \(p.peakWritable)\(p.packedForward ? "" : " (unpacked forward)") |\n"
            } else {
                let p = try MemoryPlan(shape: shape, batch: 1, mode: m, optimizer: optimizer, packedForward: false)
                s += "| \(m.name) | does not fit (batch 1 needs \(p.peakWritable) B) | - |\n"
            }
        }
        s += "\n| family | deepest trainable k at batch 1 | at batch \(batch) |\n|---|---:|---:|\n"
        for family in ["local", "blockwise"] {
            var cells: [String] = []
            for b in [1, batch] {
                var deepest = 0
                for k in 1...L {
                    let m: TrainingMode = family == "local" ? .local(k: k) : .blockwise(k: k)
                    if try Fit.fits(shape: shape, batch: b, mode: m, optimizer: optimizer, budget: budget) { deepest = k }
                }
                cells.append(deepest == 0 ? "none" : "\(deepest)")
            }
            s += "| \(family)(k) | \(cells[0]) | \(cells[1]) |\n"
        }
        out(s)
        return 0
    }
}

enum Fit {
    /// Whether a run fits `budget` (with the packed forward, or without it).
    static func fits(shape: NetworkShape, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                     budget: Int) throws -> Bool {
        do {
            _ = try MemoryPlan.fitting(shape: shape, batch: batch, mode: mode, optimizer: optimizer, budget: budget)
            return true
        } catch EngineError.budgetExceeded {
            return false
        }
    }

    /// The largest batch (up to 2^20) whose plan fits `budget`, nil if batch 1 does not.
    static func largestBatch(shape: NetworkShape, mode: TrainingMode, optimizer: OptimizerKind,
                             budget: Int) throws -> Int? {
        func fits(_ b: Int) throws -> Bool {
            try Fit.fits(shape: shape, batch: b, mode: mode, optimizer: optimizer, budget: budget)
        }
        if try !fits(1) { return nil }
        var lo = 1, hi = 2
        while hi <= 1 << 20, try fits(hi) { lo = hi; hi *= 2 }
        hi = min(hi, (1 << 20) + 1)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if try fits(mid) { lo = mid } else { hi = mid }
        }
        return lo
    }
}

/// Writes text to a temporary file beside `path`, then renames it over `path`:
/// an earlier file survives any failure.
public func writeAtomically(_ text: String, to path: String) throws {
    let tmp = path + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else {
        throw DataError(message: "\(path): cannot write (directory missing or not writable)")
    }
    if rename(tmp, path) != 0 {
        unlink(tmp)
        throw DataError(message: "\(path): cannot replace the file")
    }
}

/// Seeded synthetic data of a given shape, for reports on shapes the built-in data does not have.
public enum SyntheticData {
    public static func make(features: Int, classes: Int, count: Int, seed: UInt64) -> Dataset {
        var f = [Int32](repeating: 0, count: features * count)
        var l = [Int32](repeating: 0, count: count)
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        for i in 0..<f.count { f[i] = Int32(truncatingIfNeeded: next() >> 47) - (1 << 16) }
        for i in 0..<count { l[i] = Int32(i % classes) }
        do {
            return try Dataset(featureCount: features, classes: classes, features: f, labels: l)
        } catch { fatalError("synthetic data: \(error.message)") }
    }
}
