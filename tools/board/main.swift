// The board program: trains the built-in digits model (or a CSV) with the
// unchanged PDMM engine, compiled as Embedded Swift, in a static arena: a dense
// ReLU stack (--layers) or any network the engine parses (--net, e.g. a CNN).
//
// It runs exactly the sequence of the host tool's `pdmm train`
// (Sources/PDMMHost/Experiment.swift: prepareSplit + runTraining, with the
// per-epoch progress evaluation), so its weights hash and every byte count
// equal the host's for the same arguments, on every architecture.
//
// No Foundation, no floating-point printing (Embedded Swift has none):
// accuracies and the loss are printed with integer arithmetic.
import CBoard
import CDigits
import PDMMEngine

// MARK: - output

func printErr(_ s: String) {
    var line = s + "\n"
    line.withUTF8 { pdmm_board_write_err($0.baseAddress, Int64($0.count)) }
}

func cString(_ p: UnsafePointer<UInt8>) -> String {
    var n = 0
    while p[n] != 0 { n += 1 }
    return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
}

/// x / d with `digits` decimals, rounded half up (x, d >= 0): "96.45".
func decimal(_ x: UInt64, over d: UInt64, digits: Int) -> String {
    var scale: UInt64 = 1
    for _ in 0..<digits { scale *= 10 }
    let d = max(d, 1)
    let v = (2 * x * scale + d) / (2 * d)
    var frac = "\(v % scale)"
    while frac.count < digits { frac = "0" + frac }
    return digits == 0 ? "\(v / scale)" : "\(v / scale).\(frac)"
}

/// 100 * correct / samples with 2 decimals: "96.45%".
func percent(_ correct: Int, _ samples: Int) -> String {
    decimal(100 * UInt64(correct), over: UInt64(max(samples, 1)), digits: 2) + "%"
}

/// The mean loss lossSum / 65536 / samples with 4 decimals (Q16.16 words summed).
func meanLoss(_ s: PassStats) -> String {
    let neg = s.lossSum < 0
    let mag = UInt64(neg ? -s.lossSum : s.lossSum)
    return (neg ? "-" : "") + decimal(mag, over: 65536 * UInt64(max(s.samples, 1)), digits: 4)
}

func padLeft(_ s: String, _ w: Int) -> String {
    var s = s
    while s.count < w { s = " " + s }
    return s
}

func padRight(_ s: String, _ w: Int) -> String {
    var s = s
    while s.count < w { s += " " }
    return s
}

// MARK: - arguments

struct UsageError: Error {
    let message: String
    init(_ m: String) { message = m }
}

let usage = """
    pdmm-board -- train the built-in digits model (or a CSV) with the PDMM engine in a static arena

    USAGE: pdmm-board [--mode bp|bp-checkpoint|local|blockwise|pdmm] [--k N] [--epochs N] [--batch N]
                      [--budget SIZE] [--optimizer sgd|momentum|riemannian] [--momentum MU] [--lr X] [--seed N]
                      [--layers 64,128,128,128,10 | --net TEXT] [--input-shape CxHxW]
                      [--data FILE.csv] [--label-column C]
      The same options, defaults and results as `pdmm train` on the host. SIZE: 4096, 512B,
      64KiB, 2MiB (default: exactly the plan); it must fit the static arena (see the output).
      --net: the network, e.g. "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, flatten, dense 10"
      (its "CxHxW:" prefix may be left out when --input-shape is given); --input-shape alone
      reads the features as CxHxW under a dense --layers stack. A spatial input is scaled per
      channel, a flat one per feature (as the host).
      Prints the memory report (planned and measured bytes per category), the heap
      allocations per phase (training steps must make none) and the weights hash.
      --mode pdmm: the PDMM pipeline (as `pdmm train --mode pdmm`): [--k N]
         [--ideal-select verified|confident|random] [--ideal-fraction F] [--verified-column N|NAME]
         [--selection-epochs N] [--holdout-fraction F] [--ideal-epochs N] [--ideal-bp]
         [--threshold-quantile Q | --threshold NATS | --error-fraction F]
         [--ivc-target ideal|error-aware-copy] [--ivc-period STEPS] [--alpha A] [--beta B] [--gamma G]
         [--lambda-max L]   (no --trace: the board writes no files)
         Prints each phase's planned/measured bytes, the pipeline's peak, the test accuracies
         (stable head, error-aware, A_final) and the error-aware model's weights hash.
    """

struct Options {
    var values: [(String, String)] = []
    static let valued = ["data", "layers", "net", "input-shape", "mode", "k", "epochs", "batch", "budget", "optimizer", "momentum",
                         "lr", "seed", "label-column", "riemann-alpha", "riemann-rho", "phi"] + pdmmValued
    /// `pdmm train --mode pdmm`'s flags (Sources/PDMMHost/Tool+PDMM.swift, `pdmmFlags`).
    static let pdmmValued = ["ideal-fraction", "ideal-epochs", "threshold", "error-fraction", "ivc-period", "alpha", "beta",
                             "gamma", "lambda-max", "verified-column", "ideal-select", "selection-epochs",
                             "holdout-fraction", "threshold-quantile", "ivc-target"]
    static let switches = ["ideal-bp"]
    var flags: [String] = []

    init(_ args: [String]) throws(UsageError) {
        var i = 0
        while i < args.count {
            let a = args[i]
            guard a.hasPrefix("--") else { throw UsageError("unexpected argument '\(a)'") }
            var name = String(a.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if Options.switches.contains(name) {
                if value != nil { throw UsageError("--\(name) takes no value") }
                if !flags.contains(name) { flags.append(name) }
                i += 1
                continue
            }
            if name == "trace" { throw UsageError("--trace: the board program writes no files (the host's pdmm train does)") }
            guard Options.valued.contains(name) else { throw UsageError("unknown flag --\(name)") }
            if value == nil {
                i += 1
                guard i < args.count else { throw UsageError("--\(name) needs a value") }
                value = args[i]
            }
            values.removeAll { $0.0 == name }
            values.append((name, value!))
            i += 1
        }
    }

    func has(_ k: String) -> Bool { flags.contains(k) }

    func string(_ k: String) -> String? {
        for (n, v) in values where n == k { return v }
        return nil
    }

    func int(_ k: String, default d: Int, min lo: Int = Int.min) throws(UsageError) -> Int {
        guard let s = string(k) else { return d }
        guard let v = Int(s) else { throw UsageError("--\(k): '\(s)' is not an integer") }
        if v < lo { throw UsageError("--\(k): must be at least \(lo), got \(v)") }
        return v
    }

    func double(_ k: String, default d: Double) throws(UsageError) -> Double {
        guard let s = string(k) else { return d }
        guard let v = parseDouble(s) else { throw UsageError("--\(k): '\(s)' is not a number") }
        return v
    }

    func intList(_ k: String, default d: [Int]) throws(UsageError) -> [Int] {
        guard let s = string(k) else { return d }
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(trimmed(String(part))) else {
                throw UsageError("--\(k): '\(part)' in '\(s)' is not an integer")
            }
            out.append(v)
        }
        return out
    }

    /// A byte size as the host parses it: "1024", "512B", "64KiB", "1.5MiB", "64KB" (1000-based).
    func size(_ k: String) throws(UsageError) -> Int? {
        guard let s = string(k) else { return nil }
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824),
                                         ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("K", 1024), ("M", 1_048_576),
                                         ("B", 1)]
        var number = trimmed(s)
        var mult = 1.0
        for (u, m) in units where number.hasSuffix(u) {
            number = trimmed(String(number.dropLast(u.count)))
            mult = m
            break
        }
        guard let v = parseDouble(number), v >= 0, v * mult < 1e15 else {
            throw UsageError("--\(k): '\(s)' is not a size (examples: 4096, 512B, 64KiB, 2MiB)")
        }
        return Int(pdmm_board_scaled_size(v, mult))
    }
}

func trimmed(_ s: String) -> String {
    var u = Array(s.utf8)
    while let f = u.first, f == 0x20 || f == 0x09 { u.removeFirst() }
    while let l = u.last, l == 0x20 || l == 0x09 { u.removeLast() }
    return String(decoding: u, as: UTF8.self)
}

func parseDouble(_ s: String) -> Double? {
    var s = s
    var out = 0.0
    let ok = s.withUTF8 { pdmm_board_parse_double($0.baseAddress, Int64($0.count), &out) }
    return ok == 1 ? out : nil
}

func parseMode(_ s: String, k: Int) throws(UsageError) -> TrainingMode {
    guard let m = TrainingMode(name: s, k: k) else {
        throw UsageError("unknown mode '\(s)' (expected bp, bp-checkpoint, local, blockwise)")
    }
    return m
}

func parseOptimizer(_ o: Options) throws(UsageError) -> OptimizerKind {
    let name = o.string("optimizer") ?? "sgd", phi = o.string("phi") ?? "grad2"
    guard let opt = OptimizerKind(name: name, momentum: try o.double("momentum", default: 0.9),
                                  alpha: try o.double("riemann-alpha", default: 1.0),
                                  rho: try o.double("riemann-rho", default: 0.9), phi: phi) else {
        if name == "riemannian" { throw UsageError("--phi: unknown measure '\(phi)' (expected grad2, absw)") }
        throw UsageError("unknown optimizer '\(name)' (expected sgd, momentum, riemannian)")
    }
    return opt
}

// MARK: - data

enum BoardError: Error {
    case usage(String)
    case engine(EngineError)
    case data(String)
    case check(String)

    var message: String {
        switch self {
        case .usage(let m), .data(let m), .check(let m): return m
        case .engine(let e): return e.message
        }
    }
}

func builtinDigits() throws(EngineError) -> Dataset {
    try Dataset(bytes: pdmm_digits_features_ptr(), labels: pdmm_digits_labels_ptr(),
                count: Int(PDMM_DIGITS_SAMPLES), featureCount: Int(PDMM_DIGITS_FEATURES),
                classes: Int(PDMM_DIGITS_CLASSES))
}

/// Reads the file with C stdio and parses it with the engine's `CSVParser`
/// (the host tool's parser: same rules, same messages).
func loadCSV(_ path: String, labelColumn: String?, verifiedColumn: String? = nil) throws(BoardError) -> Dataset {
    var err = [UInt8](repeating: 0, count: 512)
    var p = Array(path.utf8) + [0]
    var buf: UnsafeMutablePointer<UInt8>? = nil
    var len: Int64 = 0
    let rc = p.withUnsafeMutableBufferPointer { pb in
        err.withUnsafeMutableBufferPointer { eb in
            pdmm_board_read_file(pb.baseAddress, &buf, &len, eb.baseAddress, Int64(eb.count))
        }
    }
    if rc != 0 {
        let msg = err.withUnsafeBufferPointer { cString($0.baseAddress!) }
        throw .data(msg)
    }
    defer { pdmm_board_free(buf) }
    let bytes = Array(UnsafeBufferPointer(start: buf, count: Int(len)))
    let data: Dataset
    do {
        data = try CSVParser.parse(bytes, labelColumn: labelColumn, verifiedColumn: verifiedColumn)
    } catch {
        throw .data("\(path): \(error.message)")
    }
    if let h = data.header { printErr("pdmm-board: " + CSVParser.headerNote(h, file: path)) }
    return data
}

/// What the report says about the data set (kept after the full copy is freed).
struct DataInfo {
    let name: String
    let count: Int
    let featureCount: Int
    let classes: Int
}

struct Prepared {
    let train: Dataset
    let test: Dataset
    let scaling: FeatureScaling
    let info: DataInfo
    let shape: NetworkShape
}

/// Built-in digits (compiled in, read-only) or a CSV file, split and scaled
/// exactly as the host's `pdmm train`; intermediate copies are released early
/// (the full set once split, the raw training split once scaled). The network
/// is built from `--net`/`--input-shape`/`--layers` by `NetworkOptions.shape`
/// once the data's feature and class counts are known (after the split, so the
/// heap's peak is that of the split); its input decides the scaling groups.
func prepareSplit(_ o: Options, layers: [Int]?, seed: UInt64) throws(BoardError) -> Prepared {
    var raw: (train: Dataset, test: Dataset)
    let info: DataInfo
    do {
        let data: Dataset
        if let path = o.string("data") {
            data = try loadCSV(path, labelColumn: o.string("label-column"), verifiedColumn: o.string("verified-column"))
            info = DataInfo(name: path, count: data.count, featureCount: data.featureCount, classes: data.classes)
        } else {
            do { data = try builtinDigits() } catch { throw .engine(error) }
            info = DataInfo(name: "built-in digits", count: data.count, featureCount: data.featureCount,
                            classes: data.classes)
        }
        raw = data.split(trainPercent: 80, seed: seed)
    }
    let shape: NetworkShape
    do {
        shape = try NetworkOptions.shape(net: o.string("net"), inputShape: o.string("input-shape"), layers: layers,
                                         defaultWidths: [64, 128, 128, 128, 10], features: info.featureCount,
                                         classes: info.classes)
    } catch { throw .engine(error) }
    let scaling = raw.train.scalingStatistics(channels: NetworkOptions.scalingChannels(shape))
    let train = raw.train.scaled(by: scaling)
    raw.train = train
    let test = raw.test.scaled(by: scaling)
    return Prepared(train: train, test: test, scaling: scaling, info: info, shape: shape)
}

// MARK: - heap accounting

struct Heap {
    var allocations: UInt64 = 0
    var bytes: UInt64 = 0
    static func now() -> pdmm_alloc_counts { pdmm_board_alloc_counts() }
    /// Adds what happened since `start`.
    mutating func add(since start: pdmm_alloc_counts) {
        let c = pdmm_board_alloc_counts()
        allocations += c.allocations - start.allocations
        bytes += c.bytes - start.bytes
    }
    var text: String { "\(allocations) (\(bytes) B)" }
}

// MARK: - the run

func run(_ args: [String]) throws(BoardError) -> Int32 {
    let setupStart = Heap.now()
    let o: Options
    do { o = try Options(args) } catch { throw .usage(error.message) }
    if o.string("mode") == "pdmm" { return try runPDMMBoard(o, setupStart: setupStart) }
    var layers: [Int]? = nil
    var batch = 32, epochs = 30, k = 1
    let seed: UInt64
    let lr: Double
    let mode: TrainingMode
    let optimizer: OptimizerKind
    let budgetArg: Int?
    do {
        if o.string("layers") != nil { layers = try o.intList("layers", default: []) }
        batch = try o.int("batch", default: batch)
        epochs = try o.int("epochs", default: epochs, min: 0)
        lr = try o.double("lr", default: 0.05)
        seed = UInt64(try o.int("seed", default: 1, min: 0))
        k = try o.int("k", default: k)
        mode = try parseMode(o.string("mode") ?? "bp", k: k)
        optimizer = try parseOptimizer(o)
        budgetArg = try o.size("budget")
    } catch { throw .usage(error.message) }

    // Data, network and split as `pdmm train`: seeded 80/20 split, scaling
    // from the training split (per channel for a spatial input). Each copy is
    // dropped as soon as the next exists.
    let p = try prepareSplit(o, layers: layers, seed: seed)
    let train = p.train, test = p.test, scaling = p.scaling, shape = p.shape
    let data = p.info
    let sat = train.saturatedValues + test.saturatedValues
    if sat > 0 { printErr("pdmm-board: warning: \(sat) feature values saturated to the Q16.16 range after scaling") }

    // runTraining (Experiment.swift), in the static arena.
    let fullPlan: MemoryPlan
    do {
        fullPlan = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer)
    } catch { throw .engine(error) }
    let model = Model(shape: shape, seed: seed)
    model.scaling = scaling
    let capacity = Int(pdmm_board_arena_bytes())
    let budget = budgetArg ?? fullPlan.peakWritable
    if budget > capacity {
        throw .usage("--budget \(budget) B is larger than the board's static arena of \(capacity) B "
            + "(rebuild with ARENA_BYTES=... to change it)")
    }
    let memory = UnsafeMutableRawBufferPointer(start: pdmm_board_arena(), count: budget)
    let t: Trainer
    do {
        t = try Trainer(model: model, batch: batch, mode: mode, optimizer: optimizer,
                        options: TrainingOptions(learningRate: lr, seed: seed), memory: memory)
    } catch { throw .engine(error) }
    let plan = t.plan  // the packed or, in a tight budget, the unpacked forward's plan

    var setup = Heap()
    setup.add(since: setupStart)
    if setup.allocations == 0 {
        throw .check("the heap counters saw no allocation during setup: was the binary linked with --wrap=malloc?")
    }
    var stageHeap = Heap(), trainHeap = Heap(), evalHeap = Heap()

    let start = pdmm_board_micros()
    var lastTrain = PassStats(), trainEval = PassStats(), testEval = PassStats()
    do {
        for s in 0..<t.stageCount {
            var c = Heap.now()
            t.beginStage(s)
            stageHeap.add(since: c)
            for e in 0..<epochs {
                c = Heap.now()
                lastTrain = try t.trainEpoch(train, epoch: e)
                trainHeap.add(since: c)
                // The host's progress callback evaluates the test split every epoch.
                c = Heap.now()
                let te = try t.evaluate(test)
                evalHeap.add(since: c)
                printErr("stage \(s) epoch \(padLeft("\(e + 1)", 3))  loss \(meanLoss(lastTrain))  "
                    + "train \(percent(lastTrain.correct, lastTrain.samples))  test \(percent(te.correct, te.samples))")
            }
            if s == t.stageCount - 1 {
                c = Heap.now()
                trainEval = try t.evaluate(train)
                testEval = try t.evaluate(test)
                evalHeap.add(since: c)
            }
        }
    } catch { throw .engine(error) }
    let c = Heap.now()
    t.endStage()
    stageHeap.add(since: c)
    let micros = pdmm_board_micros() - start

    // Report.
    let target = cString(UnsafeRawPointer(pdmm_board_target()).assumingMemoryBound(to: UInt8.self))
    print("pdmm-board \(target)")
    print("mode \(mode.name), layers \(shape.description), batch \(batch), epochs \(epochs), "
        + "optimizer \(optimizer.name), lr \(o.string("lr") ?? "0.05"), seed \(seed)")
    print("data: \(data.name), \(data.count) samples, \(data.featureCount) features, \(data.classes) classes; "
        + "split: seeded 80/20 (\(train.count) train / \(test.count) test)")
    print("train accuracy \(percent(trainEval.correct, trainEval.samples))  "
        + "test accuracy \(percent(testEval.correct, testEval.samples))  final loss \(meanLoss(lastTrain))")
    print("arena: static buffer \(capacity) B, budget \(budget) B")
    print("memory (bytes)        planned   measured")
    let measured = t.arena.peak
    for cat in MemoryCategory.allCases {
        print("  \(padRight(cat.name, 20))\(padLeft("\(plan.bytes[cat])", 9))\(padLeft("\(measured[cat])", 11))"
            + (cat.isWritable ? "" : "   (read-only, not in the arena)"))
    }
    print("  \(padRight("peak writable", 20))\(padLeft("\(plan.peakWritable)", 9))\(padLeft("\(measured.writable)", 11))")
    print("peak writable: planned \(plan.peakWritable) B, measured \(measured.writable) B; "
        + "read-only \(measured.weightsFrozen) B; peak live \(t.arena.peakLive) B")
    print("heap allocations: setup \(setup.text), stage begin/end \(stageHeap.text), "
        + "training steps \(trainHeap.text), evaluation \(evalHeap.text)")
    print("heap peak live \(pdmm_board_alloc_counts().peakLiveBytes) B (data set and its split copies, model image, "
        + "plan; the arena is the static buffer)")
    print("MACs: forward \(t.macs.forward) backward \(t.macs.backward) recompute \(t.macs.recompute) "
        + "update \(t.macs.update)")
    print("saturations \(t.saturations)  steps \(t.stepCount)  time \(micros / 1000) ms")
    print("weights hash \(Hex.format(model.weightsHash))")
    pdmm_board_flush()

    if trainHeap.allocations != 0 {
        throw .check("FAIL: \(trainHeap.allocations) heap allocations during training steps (must be 0)")
    }
    if measured != plan.bytes {
        throw .check("FAIL: measured bytes differ from the plan")
    }
    return 0
}

// MARK: - the PDMM pipeline (--mode pdmm)

/// x / d with `digits` decimals, an exact tie rounded to even (as printf's "%.Nf"
/// does with the exact binary value x / d; d a power of two here).
func decimalEven(_ x: Int64, over d: UInt64, digits: Int) -> String {
    var scale: UInt64 = 1
    for _ in 0..<digits { scale *= 10 }
    let mag = UInt64(x < 0 ? -x : x)
    var q = mag * scale / d
    let r = mag * scale % d
    if 2 * r > d || (2 * r == d && q % 2 == 1) { q += 1 }
    var frac = "\(q % scale)"
    while frac.count < digits { frac = "0" + frac }
    return (x < 0 && q != 0 ? "-" : "") + (digits == 0 ? "\(q / scale)" : "\(q / scale).\(frac)")
}

/// The host's `pdmmConfig` (Sources/PDMMHost/Tool+PDMM.swift): epochs, batch, lr,
/// optimizer and seed from the run options; ideal epochs default to --epochs.
func pdmmConfig(_ o: Options, batch: Int, epochs: Int, lr: Double, optimizer: OptimizerKind,
                seed: UInt64) throws(UsageError) -> PDMMConfig {
    var p = PDMMConfig()
    p.k = try o.int("k", default: 2)
    p.batch = batch
    p.learningRate = lr
    p.optimizer = optimizer
    p.seed = seed
    p.idealEpochs = try o.int("ideal-epochs", default: epochs, min: 0)
    p.defectEpochs = epochs
    p.idealFraction = try o.double("ideal-fraction", default: p.idealFraction)
    switch o.string("ideal-select") {
    case nil: break  // verified when the data has a verified column, else confident
    case "verified":
        if o.string("verified-column") == nil { throw UsageError("--ideal-select verified needs --verified-column N|NAME") }
        p.idealSelection = .verified
    case "confident": p.idealSelection = .confident
    case "random": p.idealSelection = .random
    case let s?: throw UsageError("--ideal-select: unknown selection '\(s)' (expected verified, confident, random)")
    }
    p.selectionEpochs = try o.int("selection-epochs", default: p.selectionEpochs, min: 0)
    p.holdoutFraction = try o.double("holdout-fraction", default: p.holdoutFraction)
    var rules: [String] = []
    for r in ["threshold", "error-fraction", "threshold-quantile"] where o.string(r) != nil { rules.append("--" + r) }
    if rules.count > 1 {
        var list = ""
        for (i, r) in rules.enumerated() { list += (i == 0 ? "" : ", ") + r }
        throw UsageError("give only one of --threshold-quantile, --threshold and --error-fraction (got \(list))")
    }
    if o.string("threshold") != nil { p.threshold = .value(try o.double("threshold", default: 0)) }
    if o.string("error-fraction") != nil { p.threshold = .fraction(try o.double("error-fraction", default: 0.08)) }
    if o.string("threshold-quantile") != nil {
        p.threshold = .idealQuantile(try o.double("threshold-quantile", default: 0.95))
    }
    switch o.string("ivc-target") {
    case nil, "ideal": p.ivcTarget = .ideal
    case "error-aware-copy": p.ivcTarget = .errorAwareCopy
    case let s?: throw UsageError("--ivc-target: unknown target '\(s)' (expected ideal, error-aware-copy)")
    }
    p.ivcPeriod = try o.int("ivc-period", default: p.ivcPeriod, min: 0)
    p.alpha = try o.double("alpha", default: p.alpha)
    p.beta = try o.double("beta", default: p.beta)
    p.gamma = try o.double("gamma", default: p.gamma)
    p.lambdaMax = try o.double("lambda-max", default: p.lambdaMax)
    p.idealBackprop = o.has("ideal-bp")
    return p
}

/// `pdmm train --mode pdmm` (Sources/PDMMHost/PDMMRun.swift, `runPDMM`): the engine's
/// pipeline, phase by phase. Each phase plans its own arena, as in the engine: the
/// trainers' arenas are the engine's `Trainer(budget:)` heap arenas and the predictors'
/// are `Predictor(budget:)` (not the static buffer, which this mode leaves unused);
/// the static buffer's budget check uses the pipeline's planned peak.
func runPDMMBoard(_ o: Options, setupStart: pdmm_alloc_counts) throws(BoardError) -> Int32 {
    var layers: [Int]? = nil
    var batch = 32, epochs = 30
    let seed: UInt64
    let lr: Double
    let optimizer: OptimizerKind
    let budgetArg: Int?
    do {
        if o.string("layers") != nil { layers = try o.intList("layers", default: []) }
        batch = try o.int("batch", default: batch)
        epochs = try o.int("epochs", default: epochs, min: 0)
        lr = try o.double("lr", default: 0.05)
        seed = UInt64(try o.int("seed", default: 1, min: 0))
        _ = try o.int("k", default: 1)
        optimizer = try parseOptimizer(o)
        budgetArg = try o.size("budget")
    } catch { throw .usage(error.message) }
    let p = try prepareSplit(o, layers: layers, seed: seed)
    let train = p.train, test = p.test, shape = p.shape
    let cfg: PDMMConfig
    do {
        cfg = try pdmmConfig(o, batch: batch, epochs: epochs, lr: lr, optimizer: optimizer, seed: seed)
    } catch { throw .usage(error.message) }
    let capacity = Int(pdmm_board_arena_bytes())
    if let b = budgetArg, b > capacity {
        throw .usage("--budget \(b) B is larger than the board's static arena of \(capacity) B "
            + "(rebuild with ARENA_BYTES=... to change it)")
    }

    let pipe: PDMMPipeline
    do { pipe = try PDMMPipeline(shape: shape, config: cfg, train: train) } catch { throw .engine(error) }
    var setup = Heap()
    setup.add(since: setupStart)
    if setup.allocations == 0 {
        throw .check("the heap counters saw no allocation during setup: was the binary linked with --wrap=malloc?")
    }

    // The phases as runPDMM calls them (learnIdeal selects D_Ideal first; called
    // here on its own to measure it apart), each with its heap use and time.
    var heaps: [(String, Heap, Int64)] = []
    var decision = DualDecision()
    let start = pdmm_board_micros()
    do {
        for step in 0..<5 {
            let c = Heap.now()
            let t0 = pdmm_board_micros()
            let name: String
            switch step {
            case 0: name = "ideal selection"; try pipe.selectIdeal()
            case 1: name = "ideal learning"; try pipe.learnIdeal()
            case 2: name = "error group separation"; try pipe.separate()
            case 3: name = "defect learning + IVC"; try pipe.learnDefects()
            default: name = "dual-system decision"; decision = try pipe.decide(test)
            }
            var h = Heap()
            h.add(since: c)
            heaps.append((name, h, pdmm_board_micros() - t0))
        }
    } catch { throw .engine(error) }
    let micros = pdmm_board_micros() - start
    let peak = pipe.peakWritable
    if let b = budgetArg, peak.planned > b {
        throw .usage("the PDMM pipeline's peak (\(peak.planned) B) exceeds the budget (\(b) B)")
    }
    let budget = budgetArg ?? peak.planned
    if budget > capacity {
        throw .usage("the PDMM pipeline's peak (\(budget) B) is larger than the board's static arena of \(capacity) B "
            + "(rebuild with ARENA_BYTES=... to change it)")
    }

    // Error pairs among E's misclassified members, most frequent first (ties: lower
    // (true, predicted) first), as the host.
    let classes = train.classes
    var pairCounts = [Int](repeating: 0, count: classes * classes)
    var misclassified = 0
    for (t, pr) in pipe.errorPairs where t != pr && t >= 0 && t < classes && pr >= 0 && pr < classes {
        pairCounts[t * classes + pr] += 1
        misclassified += 1
    }
    var pairs: [Int] = []
    for i in 0..<pairCounts.count where pairCounts[i] > 0 { pairs.append(i) }
    pairs.sort { pairCounts[$0] != pairCounts[$1] ? pairCounts[$0] > pairCounts[$1] : $0 < $1 }
    var pairText = ""
    for (j, i) in pairs.prefix(5).enumerated() {
        pairText += (j == 0 ? "" : ", ") + "\(i / classes)>\(i % classes): \(pairCounts[i])"
    }
    func q16(_ v: Int32) -> String { decimalEven(Int64(v), over: 65536, digits: 4) }

    // Report (the host's summary lines where they print integers or Q16.16 values;
    // the board prints no other floating-point numbers).
    let target = cString(UnsafeRawPointer(pdmm_board_target()).assumingMemoryBound(to: UInt8.self))
    let data = p.info
    print("pdmm-board \(target)")
    print("mode pdmm, layers \(shape.description), batch \(batch), epochs \(epochs), "
        + "optimizer \(optimizer.name), lr \(o.string("lr") ?? "0.05"), seed \(seed)")
    print("data: \(data.name), \(data.count) samples, \(data.featureCount) features, \(data.classes) classes; "
        + "split: seeded 80/20 (\(train.count) train / \(test.count) test)")
    print("PDMM pipeline: k \(cfg.k), ideal \(cfg.idealBackprop ? "bp" : "blockwise(\(cfg.k))") \(cfg.idealEpochs) epochs, "
        + "defect local(\(cfg.k)) \(cfg.defectEpochs) epochs, IVC on "
        + "\(cfg.ivcTarget == .ideal ? "G_Ideal (Theorem 1)" : "the error-aware copy") every \(cfg.ivcPeriod) steps, "
        + "lambdaMax \(o.string("lambda-max") ?? "0.5")")
    let sel: String
    switch pipe.selection {
    case .verified: sel = "the samples the data flags as verified (--verified-column)"
    case .confident: sel = "confident learning: per class the fraction \(o.string("ideal-fraction") ?? "0.2") with the "
        + "highest out-of-fold probability of their own label (\(cfg.selectionFolds)-fold bp, \(cfg.selectionEpochs) epochs per fold)"
    case .random: sel = "a seeded class-stratified random fraction \(o.string("ideal-fraction") ?? "0.2") of each class"
    }
    print("D_Ideal: \(sel)")
    print("|D| \(train.count)  |D_Ideal| \(pipe.ideal.count) = \(pipe.idealTrain.count) G_Ideal trains on + "
        + "\(pipe.idealHoldout.count) held out  |D_new| \(pipe.rest.count)")
    let thr: String
    switch cfg.threshold {
    case .value: thr = "given (--threshold)"
    case .fraction: thr = "set by --error-fraction \(o.string("error-fraction") ?? "")"
    case .idealQuantile: thr = "the \(o.string("threshold-quantile") ?? "0.95")-quantile of G_Ideal's deviations on the "
        + "\(pipe.idealHoldout.count) held-out D_Ideal samples"
    }
    print("I_threshold \(q16(pipe.thresholdQ16)) nats: \(thr)")
    let eCount = pipe.errorGroup.count
    if eCount == 0 {
        print("|E| 0: E is empty: defect learning and IVC skipped (the error-aware model is G_Ideal's copy)")
    } else {
        print("|E| \(eCount) (\(decimal(100 * UInt64(eCount), over: UInt64(max(train.count, 1)), digits: 1))% of D): "
            + "the D_new samples deviating more than I_threshold; G_Ideal misclassifies \(misclassified) of them")
        if !pairs.isEmpty { print("top error pairs among them (true>predicted: count): " + pairText) }
        if cfg.ivcPeriod == 0 {
            print("IVC off (--ivc-period 0)")
        } else if let first = pipe.ivcTrace.first, let last = pipe.ivcTrace.last {
            // U_E is a Q16.16 value (the record holds it / 65536, exactly); L_BP and L_Delta are
            // doubles, which the board does not print.
            print("IVC: \(pipe.ivcCount) steps; first (step \(first.step)) U_E \(q16(Int32(first.uncertainty * 65536))); "
                + "last (step \(last.step)) U_E \(q16(Int32(last.uncertainty * 65536)))")
        } else {
            print("IVC: 0 steps (the defect run was shorter than --ivc-period \(cfg.ivcPeriod) steps)")
        }
    }
    print("test accuracy: stable head \(percent(decision.stable, test.count))  "
        + "error-aware \(percent(decision.errorAware, test.count))  A_final \(percent(decision.final, test.count))")
    if let l = decision.lambda {
        print("lambda on the \(test.count) test samples: min \(q16(l.min))  lower quartile \(q16(l.lower))  "
            + "median \(q16(l.median))  upper quartile \(q16(l.upper))  max \(q16(l.max))")
    }
    print("A_final differs from the stable head on \(decision.differs) of \(test.count) test samples")
    print("saturations \(pipe.saturations)")
    print("phases (writable bytes; also resident = another phase's arena resident throughout this one):")
    for ph in pipe.phases {
        print("phase \(ph.name): planned \(ph.planned.writable) B, measured \(ph.measured.writable) B, "
            + "also resident \(ph.alsoResident.writable) B; read-only \(ph.measured.weightsFrozen) B; steps \(ph.steps)")
    }
    print("pipeline peak writable: planned \(peak.planned) B, measured \(peak.measured) B")
    print("arena: static buffer \(capacity) B, budget \(budget) B (the pipeline's planned peak unless --budget); "
        + "the phases' arenas are the engine's heap arenas (Trainer(budget:), Predictor)")
    var phaseHeap = ""
    var total = Heap()
    for (j, (name, h, _)) in heaps.enumerated() {
        phaseHeap += (j == 0 ? "" : ", ") + "\(name) \(h.text)"
        total.allocations += h.allocations
        total.bytes += h.bytes
    }
    print("heap allocations: setup \(setup.text); phases \(total.text): \(phaseHeap) "
        + "(each phase's arenas, predictors, subsets and records; the steps inside the engine's loops are not "
        + "measured apart)")
    print("heap peak live \(pdmm_board_alloc_counts().peakLiveBytes) B (data set and split copies, models, "
        + "the phases' arenas)")
    var times = ""
    for (j, (name, _, us)) in heaps.enumerated() { times += (j == 0 ? "" : ", ") + "\(name) \(us / 1000)" }
    print("time \(micros / 1000) ms (\(times) ms)")
    print("stable model hash \(Hex.format(pipe.stable.weightsHash))")
    print("weights hash \(Hex.format(pipe.errorAware.weightsHash))")
    pdmm_board_flush()

    if peak.measured != peak.planned {
        throw .check("FAIL: the pipeline's measured peak (\(peak.measured) B) differs from the plan (\(peak.planned) B)")
    }
    return 0
}

@_cdecl("pdmm_board_main")
public func boardMain(_ argc: Int32, _ argv: UnsafePointer<UnsafePointer<UInt8>?>) -> Int32 {
    var args: [String] = []
    if argc > 1 {
        for i in 1..<Int(argc) {
            if let p = argv[i] { args.append(cString(p)) }
        }
    }
    if args.contains("--help") || args.contains("-h") {
        print(usage)
        return 0
    }
    do {
        return try run(args)
    } catch {
        printErr("pdmm-board: \(error.message)")
        switch error {
        case .usage, .engine, .data: return 2
        case .check: return 3
        }
    }
}
