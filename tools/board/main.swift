// The board program: `pdmm train` and `pdmm eval` on a board, with the
// unchanged PDMM engine compiled as Embedded Swift, training in a static arena.
//
// Options, data split and scaling, --resume, the epoch loop with --save /
// --checkpoint-every / --stop-after, and eval come from the engine's run layer
// (Sources/PDMMEngine/RunOptions.swift, Run.swift), the same code the host tool
// runs, so the weights hash and every byte count equal the host's for the same
// arguments, on every architecture. This file is the board's I/O: C stdio files
// (tools/board/board.c: CSV read as a stream in chunks, atomic checkpoint
// writes), the static arena, the heap counters, and integer-only printing.
//
// No Foundation, no floating-point printing in Swift (Embedded Swift has none):
// accuracies and the loss are printed with integer arithmetic; --trace's
// numbers with C's printf.
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

let usage = """
    pdmm-board -- `pdmm train` / `pdmm eval` on a board: the PDMM engine in a static arena

    USAGE: pdmm-board [train] [OPTIONS]       the options of `pdmm train` (pdmm train --help), all of them:
                      [--mode bp|bp-checkpoint|local|blockwise|pdmm] [--k N] [--epochs N] [--batch N]
                      [--budget SIZE] [--optimizer sgd|momentum|riemannian] [--momentum MU] [--lr X] [--seed N]
                      [--riemann-alpha A] [--riemann-rho R] [--phi grad2|absw]
                      [--layers 64,128,128,128,10 | --net TEXT] [--input-shape CxHxW]
                      [--data FILE.csv] [--label-column N|NAME] [--verified-column N|NAME]
                      [--save FILE [--checkpoint-every N]] [--resume FILE] [--stop-after N]
                      --mode pdmm: [--ideal-select verified|confident|random] [--ideal-fraction F]
                      [--selection-epochs N] [--holdout-fraction F] [--ideal-epochs N] [--ideal-bp]
                      [--threshold-quantile Q | --threshold NATS | --error-fraction F]
                      [--ivc-target ideal|error-aware-copy] [--ivc-period STEPS] [--alpha A] [--beta B]
                      [--gamma G] [--lambda-max L] [--trace FILE]
           pdmm-board eval --model FILE [--data FILE.csv] [--label-column N|NAME] [--batch N]
      The same options, defaults and results as the host's `pdmm train` / `pdmm eval`. SIZE: 4096,
      512B, 64KiB, 2MiB (default: exactly the plan); it must fit the static arena, ARENA_BYTES at
      build time (tools/cross/build.sh). --save writes an atomic checkpoint (FILE.tmp, fsync,
      rename) every N epochs and after the last; --resume continues it bit-identically; --stop-after
      N stops after N epochs (exit 3). --data: a plain CSV, read as a stream (gzip is refused:
      gunzip it first); the heap holds the data once in Q16.16 plus its split.
      Prints the memory report (planned and measured bytes per category), the heap
      allocations per phase (training steps must make none) and the weights hash.
    """

// MARK: - I/O for the run layer

func cBytes(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

func message(_ err: [UInt8]) -> String {
    err.withUnsafeBufferPointer { cString($0.baseAddress!) }
}

/// Reads a CSV file as a stream: two passes of 64 KiB chunks (rows and columns,
/// then the values straight into one Q16.16 array): the heap holds the data set
/// (rows x (features + 1) x 4 B) plus a chunk and a line. gzip is refused by name.
func loadCSV(_ path: String, labelColumn: String?, verifiedColumn: String?) throws(RunError) -> Dataset {
    guard let f = pdmm_board_open(cBytes(path)) else { throw .data("\(path): cannot read file") }
    defer { pdmm_board_close(f) }
    if path.hasSuffix(".gz") || pdmm_board_is_gzip(f) == 1 {
        throw .data("\(path): gzip-compressed CSV is not supported on the board: gunzip it first")
    }
    let data: Dataset
    do {
        data = try CSVParser.parse(labelColumn: labelColumn, verifiedColumn: verifiedColumn, rewind: {
            pdmm_board_rewind(f) == 0
        }, read: { buf in Int(pdmm_board_read(f, buf.baseAddress, Int64(buf.count))) })
    } catch {
        throw .data("\(path): \(error.message)")
    }
    if let h = data.header { printErr("pdmm-board: " + CSVParser.headerNote(h, file: path)) }
    return data
}

func builtinDigits() -> Dataset {
    // The compiled-in table is well-formed (64 features, labels 0...9).
    try! Dataset(bytes: pdmm_digits_features_ptr(), labels: pdmm_digits_labels_ptr(),
                 count: Int(PDMM_DIGITS_SAMPLES), featureCount: Int(PDMM_DIGITS_FEATURES),
                 classes: Int(PDMM_DIGITS_CLASSES))
}

func readCheckpoint(_ path: String) throws(RunError) -> Checkpoint {
    var err = [UInt8](repeating: 0, count: 512)
    var buf: UnsafeMutablePointer<UInt8>? = nil
    var len: Int64 = 0
    let rc = err.withUnsafeMutableBufferPointer { pdmm_board_read_file(cBytes(path), &buf, &len, $0.baseAddress, 512) }
    if rc != 0 { throw .data(message(err)) }
    defer { pdmm_board_free(buf) }
    do {
        return try Checkpoint.decode(Array(UnsafeBufferPointer(start: buf, count: Int(len))))
    } catch {
        throw .data("\(path): \(error.message)")
    }
}

func writeFile(_ bytes: [UInt8], _ path: String) throws(RunError) {
    var err = [UInt8](repeating: 0, count: 512)
    let rc = err.withUnsafeMutableBufferPointer { e in
        bytes.withUnsafeBufferPointer { pdmm_board_write_atomic(cBytes(path), $0.baseAddress, Int64($0.count), e.baseAddress, 512) }
    }
    if rc != 0 { throw .data(message(err)) }
}

let boardIO = RunIO(loadCSV: { (p, l, v) throws(RunError) in try loadCSV(p, labelColumn: l, verifiedColumn: v) },
                    builtinData: builtinDigits, readCheckpoint: { (p) throws(RunError) in try readCheckpoint(p) },
                    writeCheckpoint: { (c, p) throws(RunError) in try writeFile(c.encode(), p) })

/// printf's "%.Nf" (C), for --trace.
func fixed(_ v: Double, _ digits: Int) -> String {
    var buf = [UInt8](repeating: 0, count: 64)
    let n = buf.withUnsafeMutableBufferPointer { pdmm_board_format_fixed(v, Int32(digits), $0.baseAddress, 64) }
    return String(decoding: buf[0..<Int(n)], as: UTF8.self)
}

enum BoardError: Error {
    case run(RunError)
    case check(String)

    var message: String {
        switch self {
        case .run(let e): return e.message
        case .check(let m): return m
        }
    }
}

func usageError(_ m: String) -> BoardError { .run(.usage(UsageError(m))) }

func engine<T>(_ body: () throws(EngineError) -> T) throws(BoardError) -> T {
    do { return try body() } catch { throw .run(.engine(error)) }
}

/// The static arena's refusal: what was needed, per category, and how to build a larger arena.
func arenaTooSmall(needed: Int, plan: ByteCounts?, given: Int?, capacity: Int, what: String) -> BoardError {
    let target = cString(UnsafeRawPointer(pdmm_board_build_target()).assumingMemoryBound(to: UInt8.self))
    let rebuild = "rebuild with ARENA_BYTES=\(needed) tools/cross/build.sh \(target)"
    if let b = given {
        return usageError("--budget \(b) B is larger than the board's static arena of \(capacity) B: \(rebuild)")
    }
    var parts = ""
    if let plan {
        for cat in MemoryCategory.allCases where cat.isWritable && plan[cat] > 0 {
            parts += (parts.isEmpty ? "" : ", ") + "\(cat.name) \(plan[cat])"
        }
    }
    return usageError("\(what) needs \(needed) B" + (parts.isEmpty ? "" : " (per category: \(parts))")
        + ", the board's static arena is \(capacity) B: \(rebuild)")
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

// MARK: - train

func run(_ args: [String]) throws(BoardError) -> Int32 {
    let setupStart = Heap.now()
    var argv = args
    if argv.first == "train" { argv.removeFirst() }
    if argv.first == "eval" { return try evalCommand(Array(argv.dropFirst())) }
    let a: Arguments
    do { a = try Arguments(argv, valued: RunOptions.trainFlags, switches: RunOptions.trainSwitches) } catch {
        throw .run(.usage(error))
    }
    if let p = a.positional.first { throw usageError("unexpected argument '\(p)'") }
    let p: PreparedRun
    do { p = try Run.prepare(a, io: boardIO) } catch { throw .run(error) }
    if p.isPDMM { return try runPDMMBoard(a, p, setupStart: setupStart) }
    let cfg = p.config, train = p.train, test = p.test, shape = p.shape
    let sat = train.saturatedValues + test.saturatedValues
    if sat > 0 { printErr("pdmm-board: warning: \(sat) feature values saturated to the Q16.16 range after scaling") }

    // The trainer in the static arena.
    let fullPlan = try engine { () throws(EngineError) in
        try MemoryPlan(shape: shape, batch: cfg.batch, mode: cfg.mode, optimizer: cfg.optimizer, threads: cfg.threads)
    }
    let model = Model(shape: shape, seed: cfg.seed)
    model.scaling = p.scaling
    let capacity = Int(pdmm_board_arena_bytes())
    let budget = cfg.budget ?? fullPlan.peakWritable
    if budget > capacity {
        throw arenaTooSmall(needed: budget, plan: cfg.budget == nil ? fullPlan.bytes : nil, given: cfg.budget,
                            capacity: capacity, what: "the plan")
    }
    let memory = UnsafeMutableRawBufferPointer(start: pdmm_board_arena(), count: budget)
    let t = try engine { () throws(EngineError) in
        try Trainer(model: model, batch: cfg.batch, mode: cfg.mode, optimizer: cfg.optimizer,
                    options: TrainingOptions(learningRate: cfg.learningRate, seed: cfg.seed, threads: cfg.threads),
                    memory: memory)
    }
    let plan = t.plan  // the packed or, in a tight budget, the unpacked forward's plan

    var setup = Heap()
    setup.add(since: setupStart)
    if setup.allocations == 0 {
        throw .check("the heap counters saw no allocation during setup: was the binary linked with --wrap=malloc?")
    }
    // The heap per part of the run (Run.train marks each part as it starts).
    var heaps = [Heap](repeating: Heap(), count: 5)  // stage, training, evaluation, checkpoint, done (printing)
    var phase = 4  // until the first stage: the loop's own setup
    var since = Heap.now()
    func mark(_ next: RunPhase) {
        heaps[phase].add(since: since)
        switch next {
        case .stage: phase = 0
        case .training: phase = 1
        case .evaluation: phase = 2
        case .checkpoint: phase = 3
        case .done: phase = 4
        }
        since = Heap.now()
    }
    let start = pdmm_board_micros()
    let o: RunOutcome
    do {
        o = try Run.train(t, epochs: cfg.epochs, train: train, test: test, resume: p.resume, policy: p.policy,
                          io: boardIO, mark: mark) { s, e, tr, te, _ in
            mark(.done)  // the progress line's text is the report's, not the evaluation's
            printErr("stage \(s) epoch \(DecimalText.padLeft("\(e + 1)", 3))  loss \(DecimalText.meanLoss(tr))  "
                + "train \(DecimalText.percent(tr.correct, tr.samples))  test \(DecimalText.percent(te.correct, te.samples))")
        }
    } catch { throw .run(error) }
    let micros = pdmm_board_micros() - start

    // Report.
    let target = cString(UnsafeRawPointer(pdmm_board_target()).assumingMemoryBound(to: UInt8.self))
    print("pdmm-board \(target)")
    print("mode \(cfg.mode.name), layers \(shape.description), batch \(cfg.batch), epochs \(cfg.epochs), "
        + "optimizer \(cfg.optimizer.name), lr \(a.string("lr") ?? "0.05"), seed \(cfg.seed)")
    print("data: \(p.dataName), \(p.dataCount) samples, \(p.featureCount) features, \(p.classes) classes; "
        + "split: seeded 80/20 (\(train.count) train / \(test.count) test)")
    print("train accuracy \(DecimalText.percent(o.trainEval.correct, o.trainEval.samples))  "
        + "test accuracy \(DecimalText.percent(o.testEval.correct, o.testEval.samples))  final loss \(DecimalText.meanLoss(o.lastTrain))")
    print("arena: static buffer \(capacity) B, budget \(budget) B")
    print("memory (bytes)        planned   measured")
    let measured = o.measured
    for cat in MemoryCategory.allCases {
        print("  \(DecimalText.padRight(cat.name, 20))\(DecimalText.padLeft("\(plan.bytes[cat])", 9))\(DecimalText.padLeft("\(measured[cat])", 11))"
            + (cat.isWritable ? "" : "   (read-only, not in the arena)"))
    }
    print("  \(DecimalText.padRight("peak writable", 20))\(DecimalText.padLeft("\(plan.peakWritable)", 9))\(DecimalText.padLeft("\(measured.writable)", 11))")
    print("peak writable: planned \(plan.peakWritable) B, measured \(measured.writable) B; "
        + "read-only \(measured.weightsFrozen) B; peak live \(o.peakLive) B")
    print("heap allocations: setup \(setup.text), stage begin/end \(heaps[0].text), "
        + "training steps \(heaps[1].text), evaluation \(heaps[2].text)"
        + (p.policy.path == nil ? "" : ", checkpoints \(heaps[3].text)"))
    print("heap peak live \(pdmm_board_alloc_counts().peakLiveBytes) B (the data set in Q16.16 and its test part, model image, "
        + "plan; the arena is the static buffer)")
    print("MACs: forward \(o.macs.forward) backward \(o.macs.backward) recompute \(o.macs.recompute) "
        + "update \(o.macs.update)")
    print("saturations \(o.saturations)  steps \(o.steps)  time \(micros / 1000) ms")
    print("weights hash \(Hex.format(o.weightsHash))")
    pdmm_board_flush()

    if heaps[1].allocations != 0 {
        throw .check("FAIL: \(heaps[1].allocations) heap allocations during training steps (must be 0)")
    }
    if measured != plan.bytes {
        throw .check("FAIL: measured bytes differ from the plan")
    }
    return 0
}

// MARK: - eval

/// `pdmm eval` (Run.evaluate): "model FILE (NETWORK, MODE): accuracy X% on WHAT, mean loss L".
func evalCommand(_ argv: [String]) throws(BoardError) -> Int32 {
    let a: Arguments
    do { a = try Arguments(argv, valued: RunOptions.evalFlags) } catch { throw .run(.usage(error)) }
    let r: (checkpoint: Checkpoint, shape: NetworkShape, stats: PassStats, what: String)
    do { r = try Run.evaluate(a, io: boardIO) } catch { throw .run(error) }
    print("model \(a.string("model")!) (\(r.shape.description), \(r.checkpoint.mode.name)): accuracy "
        + "\(DecimalText.percent(r.stats.correct, r.stats.samples)) on \(r.what), mean loss \(DecimalText.meanLoss(r.stats))")
    pdmm_board_flush()
    return 0
}

// MARK: - the PDMM pipeline (--mode pdmm)

/// `pdmm train --mode pdmm` (Sources/PDMMHost/PDMMRun.swift, `runPDMM`): the engine's
/// pipeline, phase by phase. Each phase plans its own arena, as in the engine: the
/// trainers' arenas are the engine's `Trainer(budget:)` heap arenas and the predictors'
/// are `Predictor(budget:)` (not the static buffer, which this mode leaves unused);
/// the static buffer's budget check uses the pipeline's planned peak.
func runPDMMBoard(_ o: Arguments, _ p: PreparedRun, setupStart: pdmm_alloc_counts) throws(BoardError) -> Int32 {
    let train = p.train, test = p.test, shape = p.shape
    let batch = p.config.batch, epochs = p.config.epochs, seed = p.config.seed, optimizer = p.config.optimizer
    let budgetArg = p.config.budget
    let cfg: PDMMConfig
    do { cfg = try o.pdmmConfig(p.config) } catch { throw .run(.usage(error)) }
    let capacity = Int(pdmm_board_arena_bytes())
    if let b = budgetArg, b > capacity {
        throw arenaTooSmall(needed: b, plan: nil, given: b, capacity: capacity, what: "the PDMM pipeline")
    }

    let pipe: PDMMPipeline
    do { pipe = try PDMMPipeline(shape: shape, config: cfg, train: train) } catch { throw .run(.engine(error)) }
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
    } catch { throw .run(.engine(error)) }
    let micros = pdmm_board_micros() - start
    let peak = pipe.peakWritable
    if let b = budgetArg, peak.planned > b {
        throw usageError("the PDMM pipeline's peak (\(peak.planned) B) exceeds the budget (\(b) B)")
    }
    let budget = budgetArg ?? peak.planned
    if budget > capacity {
        throw arenaTooSmall(needed: budget, plan: nil, given: nil, capacity: capacity, what: "the PDMM pipeline's peak")
    }
    if let path = o.string("trace") {
        do { try writeFile(Array(IVCRecord.traceCSV(pipe.ivcTrace) { fixed($0, 6) }.utf8), path) } catch { throw .run(error) }
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
    func q16(_ v: Int32) -> String { DecimalText.ratioEven(Int64(v), over: 65536, digits: 4) }

    // Report (the host's summary lines where they print integers or Q16.16 values;
    // the board prints no other floating-point numbers).
    let target = cString(UnsafeRawPointer(pdmm_board_target()).assumingMemoryBound(to: UInt8.self))
    print("pdmm-board \(target)")
    print("mode pdmm, layers \(shape.description), batch \(batch), epochs \(epochs), "
        + "optimizer \(optimizer.name), lr \(o.string("lr") ?? "0.05"), seed \(seed)")
    print("data: \(p.dataName), \(p.dataCount) samples, \(p.featureCount) features, \(p.classes) classes; "
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
        print("|E| \(eCount) (\(DecimalText.ratio(100 * UInt64(eCount), over: UInt64(max(train.count, 1)), digits: 1))% of D): "
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
    print("test accuracy: stable head \(DecimalText.percent(decision.stable, test.count))  "
        + "error-aware \(DecimalText.percent(decision.errorAware, test.count))  A_final \(DecimalText.percent(decision.final, test.count))")
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
    print("heap peak live \(pdmm_board_alloc_counts().peakLiveBytes) B (the data set in Q16.16 and its test part, models, "
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
        case .run(let e): return e.exitCode
        case .check: return 3
        }
    }
}
