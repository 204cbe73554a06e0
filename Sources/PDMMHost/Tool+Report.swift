import Foundation
import PDMMEngine

extension Tool {
    /// The network of a command that has no data file (report, fit, the CNN block of
    /// claims): `--net`, `--input-shape`, `--layers` through `NetworkOptions.shape`, the
    /// one rule every command uses, over the feature count the flags themselves give
    /// (the input shape's, else the network text's input, else the first width of
    /// `--layers`, else of `defaultWidths`). Without `--net` and `--layers`: `defaultNet`
    /// when given (text with its input, which `--input-shape` replaces), else the
    /// dense stack `defaultWidths`.
    func flaggedNetwork(_ a: Arguments, defaultWidths: [Int], defaultNet: String? = nil) throws -> NetworkShape {
        let layers = a.string("layers") == nil ? nil : try a.intList("layers", default: [])
        var net = a.string("net")
        let inputShape = a.string("input-shape")
        if net == nil && layers == nil, let d = defaultNet {
            net = inputShape == nil ? d : String(d.drop { $0 != ":" }.dropFirst()).trimmingCharacters(in: .whitespaces)
        }
        var features = defaultWidths.first ?? 1
        if let t = inputShape {
            features = try TensorShape.parse(t).count
        } else if let n = net, let spec = try? NetworkSpec.parse(n) {
            features = spec.input.count
        } else if let l = layers, let f = l.first {
            features = f
        }
        return try NetworkOptions.shape(net: net, inputShape: inputShape, layers: layers, defaultWidths: defaultWidths,
                                        features: features, classes: defaultWidths.last ?? 1)
    }

    /// Data for measuring `shape`: the built-in digits' training split when the network
    /// reads 64 features into 10 classes, else seeded synthetic data of its shape
    /// (memory does not depend on the values).
    func measurementData(_ shape: NetworkShape, batch: Int, seed: UInt64) -> (data: Dataset, builtin: Bool) {
        let builtin = BuiltinData.digits()
        if shape.inputWidth == builtin.featureCount && shape.classCount == builtin.classes {
            return (Run.split(builtin, seed: seed, channels: NetworkOptions.scalingChannels(shape)).train, true)
        }
        return (SyntheticData.make(features: shape.inputWidth, classes: shape.classCount, count: max(batch, 64), seed: seed), false)
    }

    func report(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["layers", "net", "input-shape", "batch", "k", "budget", "format", "svg",
                                             "optimizer", "momentum", "seed", "steps"])
        let shape = try flaggedNetwork(a, defaultWidths: [64, 128, 128, 128, 10])
        let batch = try a.int("batch", default: 32)
        let L = shape.layerCount
        let ks = try a.intList("k", default: [1, 2, 3].filter { $0 <= L })
        let budget = try a.size("budget")
        let format = a.string("format") ?? "md"
        guard ["md", "csv", "json"].contains(format) else {
            throw UsageError("--format: unknown format '\(format)' (expected md, csv, json)")
        }
        let optimizer = try a.optimizer()
        var modes: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in ks { modes.append(.local(k: k)) }
        for k in ks { modes.append(.blockwise(k: k)) }
        for m in modes { try m.validate(layers: L) }
        let seed = UInt64(try a.int("seed", default: 1, min: 0))
        let data = measurementData(shape, batch: batch, seed: seed).data
        let rows = try MemoryReport.rows(shape: shape, batch: batch, modes: modes, optimizer: optimizer,
                                         budget: budget, data: data, seed: seed,
                                         steps: try a.int("steps", default: 2, min: 1))
        // The PDMM pipeline's phases, measured by running it (1 epoch per phase).
        var pdmm: PDMMResult?
        if L >= 1 {
            pdmm = try MemoryReport.pdmmPhases(shape: shape, data: data, k: ks.filter { $0 <= L }.max() ?? 1,
                                               batch: batch, optimizer: optimizer, seed: seed)
        }
        let rss = peakRSS()
        switch format {
        case "csv": out(MemoryReport.csv(rows) + (pdmm.map { MemoryReport.pdmmCSV($0) } ?? ""))
        case "json": out(MemoryReport.json(rows, rss: rss, pdmm: pdmm))
        default: out(MemoryReport.markdown(rows, rss: rss) + (pdmm.map { MemoryReport.pdmmMarkdown($0, bp: rows[0], budget: budget) } ?? ""))
        }
        if let path = a.string("svg") {
            // The dense series over the report's widths (hidden width 128 for a CNN); the CNN
            // series over the report's image or series input, with its first conv's filters.
            let widths = shape.widths
            let firstConv = shape.layers.first(where: \.isConv)
            let svg = try DepthChart.svg(hiddenWidth: shape.isDenseOnly ? (widths.count > 2 ? widths[1] : widths[0]) : 128,
                                         input: shape.inputWidth, classes: shape.classCount, batch: batch, ks: ks,
                                         optimizer: optimizer,
                                         cnnInput: shape.spec.input.isFlat ? nil : shape.spec.input,
                                         cnnChannels: firstConv?.pre.channels ?? 16)
            try writeAtomically(svg, to: path)
            err("pdmm: wrote \(path)")
        }
        return 0
    }

    func fit(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["budget", "layers", "net", "input-shape", "optimizer", "momentum", "batch"])
        guard let budget = try a.size("budget") else { throw UsageError("fit needs --budget SIZE") }
        let shape = try flaggedNetwork(a, defaultWidths: [64, 128, 128, 128, 10])
        let optimizer = try a.optimizer()
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
                // Say so when the next batch is refused by the engine's size limit, not by the budget.
                var capped = false
                do { _ = try MemoryPlan(shape: shape, batch: b + 1, mode: m, optimizer: optimizer) } catch EngineError.sizeTooLarge { capped = true }
                s += "| \(m.name) | \(b)\(capped ? " (the engine's limit of \(NetworkShape.maxWords) activation words per batch)" : "") | "
                s += "\(p.peakWritable)\(p.packedForward ? "" : " (unpacked forward)") |\n"
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
    /// Whether a run fits `budget` (with the packed forward, or without it). A batch
    /// whose activations exceed the engine's size limit (`NetworkShape.maxWords`) does not fit.
    static func fits(shape: NetworkShape, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                     budget: Int) throws -> Bool {
        do {
            _ = try MemoryPlan.fitting(shape: shape, batch: batch, mode: mode, optimizer: optimizer, budget: budget)
            return true
        } catch EngineError.budgetExceeded {
            return false
        } catch EngineError.sizeTooLarge where batch > 1 {
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
