// The C API's steps: train, predict, evaluate, stages, statistics, hash, status strings.
// None of these allocates.
import CFixed
import CPDMM

/// Runs `body` on an initialised context's run; returns its status.
func withRun(_ ctx: OpaquePointer?, _ body: (LibRun) throws(EngineError) -> Void) -> Int32 {
    let (run, s) = LibContext.run(ctx)
    guard let run else { return s }
    do throws(EngineError) {
        try body(run)
        return PDMM_OK
    } catch {
        return libStatus(error)
    }
}

/// The status for a NULL argument: the context's own status first (NULL, not initialised).
func libNullStatus(_ ctx: OpaquePointer?) -> Int32 {
    let (run, s) = LibContext.run(ctx)
    return run == nil ? s : PDMM_E_NULL
}

@_cdecl("pdmm_train_batch")
public func pdmm_train_batch(_ ctx: OpaquePointer?, _ f: UnsafePointer<Int32>?, _ l: UnsafePointer<Int32>?,
                             _ rows: Int32) -> Int32 {
    guard let f, let l else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in
        let t = run.trainer
        if rows < 1 { throw .emptyData }
        try t.checkRows(Int(rows), max: t.batch, labels: l)
        let r = Int(rows)
        run.last = try t.step(features: UnsafeBufferPointer(start: f, count: r * t.n[0]),
                              labels: UnsafeBufferPointer(start: l, count: r))
    }
}

@_cdecl("pdmm_train_batch_f32")
public func pdmm_train_batch_f32(_ ctx: OpaquePointer?, _ f: UnsafePointer<Float>?, _ l: UnsafePointer<Int32>?,
                                 _ rows: Int32) -> Int32 {
    guard let f, let l else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in
        run.last = try run.trainer.step(floatFeatures: f, labels: l, rows: Int(rows))
    }
}

@_cdecl("pdmm_predict")
public func pdmm_predict(_ ctx: OpaquePointer?, _ f: UnsafePointer<Int32>?, _ rows: Int32,
                         _ classes: UnsafeMutablePointer<Int32>?, _ probs: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let f else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in
        try run.trainer.predict(features: f, rows: Int(rows), classes: classes, probabilities: probs)
    }
}

@_cdecl("pdmm_evaluate")
public func pdmm_evaluate(_ ctx: OpaquePointer?, _ f: UnsafePointer<Int32>?, _ l: UnsafePointer<Int32>?,
                          _ rows: Int32, _ out: UnsafeMutablePointer<pdmm_stats>?) -> Int32 {
    guard let f, let l, let out else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in
        run.last = try run.trainer.evaluate(features: f, labels: l, rows: Int(rows))
        out.pointee = libStats(run)
    }
}

@_cdecl("pdmm_next_stage")
public func pdmm_next_stage(_ ctx: OpaquePointer?) -> Int32 {
    let (run, s) = LibContext.run(ctx)
    guard let run else { return s }
    let t = run.trainer
    if t.currentStage + 1 >= t.stageCount { return PDMM_E_NO_MORE_STAGES }
    t.beginStage(t.currentStage + 1)
    return PDMM_OK
}

/// The run's statistics as C sees them.
func libStats(_ run: LibRun) -> pdmm_stats {
    let t = run.trainer
    var s = pdmm_stats()
    s.loss_sum_q16 = run.last.lossSum
    s.rows = Int32(run.last.samples)
    s.correct = Int32(run.last.correct)
    s.loss_mean_q16 = run.last.samples > 0
        ? Int32(clamping: Rounding.divNearest(run.last.lossSum, Int64(run.last.samples))) : 0
    s.stage = Int32(t.currentStage)
    s.stage_count = Int32(t.stageCount)
    s.steps = UInt64(t.stepCount)
    s.saturations = t.saturations
    s.measured = libBytes(t.arena.peak, image: 0, imageFrozenInPlace: 0)
    return s
}

@_cdecl("pdmm_last_stats")
public func pdmm_last_stats(_ ctx: OpaquePointer?, _ out: UnsafeMutablePointer<pdmm_stats>?) -> Int32 {
    guard let out else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in out.pointee = libStats(run) }
}

@_cdecl("pdmm_weights_hash")
public func pdmm_weights_hash(_ ctx: OpaquePointer?, _ out: UnsafeMutablePointer<UInt64>?) -> Int32 {
    guard let out else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in
        run.trainer.syncModel()
        out.pointee = run.model.weightsHash
    }
}

@_cdecl("pdmm_status_string")
public func pdmm_status_string(_ s: Int32) -> UnsafePointer<CChar> {
    let m: StaticString
    switch s {
    case PDMM_OK: m = "ok"
    case PDMM_E_NULL: m = "a required pointer is NULL"
    case PDMM_E_BAD_CONFIG: m = "invalid configuration (network, batch, mode, k, optimizer or learning rate)"
    case PDMM_E_NOT_INITIALIZED: m = "context not initialised (call pdmm_init)"
    case PDMM_E_ARENA_TOO_SMALL: m = "arena too small for the plan (see pdmm_shortfall)"
    case PDMM_E_ALIGNMENT: m = "arena, frozen weights or context not 8-byte aligned"
    case PDMM_E_ZERO_ROWS: m = "no rows (rows must be at least 1)"
    case PDMM_E_TOO_MANY_ROWS: m = "more rows than the configured batch"
    case PDMM_E_LABEL_OUT_OF_RANGE: m = "a label is outside [0, classes)"
    case PDMM_E_CORRUPT_CHECKPOINT: m = "corrupt checkpoint (magic, version, CRC or size)"
    case PDMM_E_CHECKPOINT_MISMATCH: m = "checkpoint of a different network or configuration"
    case PDMM_E_BUFFER_TOO_SMALL: m = "buffer too small for the checkpoint"
    case PDMM_E_NO_MORE_STAGES: m = "no more stages"
    case PDMM_E_BAD_VALUE: m = "a feature is NaN"
    case PDMM_E_FROZEN_NEEDS_WEIGHTS: m = "frozen_in_place needs frozen_weights"
    case PDMM_E_INTERNAL: m = "internal engine error"
    default: m = "unknown status"
    }
    return UnsafeRawPointer(m.utf8Start).assumingMemoryBound(to: CChar.self)
}
