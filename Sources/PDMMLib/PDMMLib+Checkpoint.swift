// The C API's checkpoints: the format and CRC of `pdmm train --save` files
// (Checkpoint.encode / decode), to and from caller buffers. Transient heap only.
import CPDMM

/// The run's checkpoint bytes (its current stage written back first).
func libCheckpoint(_ run: LibRun) -> [UInt8] {
    run.trainer.checkpoint(epochsDone: 0).encode()
}

@_cdecl("pdmm_checkpoint_size")
public func pdmm_checkpoint_size(_ ctx: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let bytes else { return libNullStatus(ctx) }
    return withRun(ctx) { (run: LibRun) throws(EngineError) in bytes.pointee = libCheckpoint(run).count }
}

@_cdecl("pdmm_save_checkpoint")
public func pdmm_save_checkpoint(_ ctx: OpaquePointer?, _ buf: UnsafeMutableRawPointer?, _ cap: Int,
                                 _ written: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let buf, let written else { return libNullStatus(ctx) }
    let (run, s) = LibContext.run(ctx)
    guard let run else { return s }
    let b = libCheckpoint(run)
    written.pointee = b.count
    if b.count > cap { return PDMM_E_BUFFER_TOO_SMALL }
    b.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
    return PDMM_OK
}

@_cdecl("pdmm_load_checkpoint")
public func pdmm_load_checkpoint(_ ctx: OpaquePointer?, _ buf: UnsafeRawPointer?, _ len: Int) -> Int32 {
    guard let buf else { return libNullStatus(ctx) }
    let (run, s) = LibContext.run(ctx)
    guard let run else { return s }
    if len < 0 { return PDMM_E_CORRUPT_CHECKPOINT }
    let bytes = [UInt8](UnsafeRawBufferPointer(start: buf, count: len))
    do throws(CheckpointError) {
        let c = try Checkpoint.decode(bytes)
        try run.trainer.restore(c)
        run.last = PassStats()
        return PDMM_OK
    } catch {
        if case .mismatch = error { return PDMM_E_CHECKPOINT_MISMATCH }
        return PDMM_E_CORRUPT_CHECKPOINT
    }
}
