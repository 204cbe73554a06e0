// The C API of include/pdmm.h: configuration, planning, init and deinit.
// Compiled in one Embedded Swift module with Sources/PDMMEngine/*.swift
// (tools/cross/build.sh lib-host|lib-aarch64|lib-armv7); every entry point is
// an @_cdecl function over caller memory, returning a pdmm_status.
import CFixed
import CPDMM

/// One initialised run: what a context's pointer refers to (the heap pdmm_init takes).
final class LibRun {
    let model: Model
    let trainer: Trainer
    var last = PassStats()
    let heapBound: Int
    init(model: Model, trainer: Trainer, heapBound: Int) {
        self.model = model
        self.trainer = trainer
        self.heapBound = heapBound
    }
}

/// The context's layout in caller memory (PDMM_CONTEXT_BYTES): u64 state | run
/// pointer | pdmm_bytes needed (after a refused init) | i64 shortfall.
enum LibContext {
    static let live: UInt64 = 0x5044_4D4D_4C49_5645  // "PDMMLIVE"
    static let refused: UInt64 = 0x5044_4D4D_5348_5254  // "PDMMSHRT"
    static let runOffset = 8
    static let neededOffset = 16
    static var shortOffset: Int { neededOffset + MemoryLayout<pdmm_bytes>.size }
    static var size: Int { shortOffset + 8 }

    static func state(_ ctx: UnsafeRawPointer) -> UInt64 { ctx.load(as: UInt64.self) }

    /// The run of an initialised context, or the status to return.
    static func run(_ ctx: OpaquePointer?) -> (LibRun?, Int32) {
        guard let ctx else { return (nil, PDMM_E_NULL) }
        let p = UnsafeRawPointer(ctx)
        if Int(bitPattern: p) % 8 != 0 { return (nil, PDMM_E_ALIGNMENT) }
        guard state(p) == live, let r = p.load(fromByteOffset: runOffset, as: UnsafeRawPointer?.self) else {
            return (nil, PDMM_E_NOT_INITIALIZED)
        }
        return (Unmanaged<LibRun>.fromOpaque(r).takeUnretainedValue(), PDMM_OK)
    }
}

/// A NUL-terminated C string as a String.
func libString(_ p: UnsafePointer<CChar>) -> String {
    var n = 0
    while p[n] != 0 { n += 1 }
    return p.withMemoryRebound(to: UInt8.self, capacity: n) {
        String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
    }
}

/// The status of an engine error.
func libStatus(_ e: EngineError) -> Int32 {
    switch e {
    case .tooFewWidths, .zeroWidth, .sizeTooLarge, .batchZero, .invalidK, .invalidNetwork, .featureMismatch:
        return PDMM_E_BAD_CONFIG
    case .budgetExceeded: return PDMM_E_ARENA_TOO_SMALL
    case .labelOutOfRange: return PDMM_E_LABEL_OUT_OF_RANGE
    case .emptyData: return PDMM_E_ZERO_ROWS
    case .invalidParameter(let name, _):
        if name == "rows" { return PDMM_E_TOO_MANY_ROWS }
        if name == "features" { return PDMM_E_BAD_VALUE }
        if name == "arena memory" { return PDMM_E_ALIGNMENT }
        return PDMM_E_BAD_CONFIG
    case .kernel: return PDMM_E_INTERNAL
    }
}

/// A configuration read from C: the network, batch, mode, optimizer, options.
struct LibConfig {
    let shape: NetworkShape
    let batch: Int
    let mode: TrainingMode
    let optimizer: OptimizerKind
    let options: TrainingOptions
    let frozenInPlace: Bool

    init(_ c: pdmm_config) throws(EngineError) {
        if let net = c.net {
            var text = libString(net)
            let (ch, h, w) = c.input_shape
            if ch != 0 || h != 0 || w != 0 {
                if ch < 1 || h < 1 || w < 1 { throw .invalidNetwork("input_shape \(ch)x\(h)x\(w)") }
                if !text.utf8.contains(58) { text = "\(ch)x\(h)x\(w): " + text }  // no "INPUT:" prefix
            }
            let spec: NetworkSpec
            do throws(NetworkSpecError) {
                spec = try NetworkSpec.parse(text)
            } catch {
                throw .invalidNetwork(error.message)
            }
            shape = try NetworkShape(spec: spec)
        } else {
            guard let wp = c.widths, c.width_count >= 2 else { throw .tooFewWidths(count: Int(c.width_count)) }
            var widths: [Int] = []
            for i in 0..<Int(c.width_count) { widths.append(Int(wp[i])) }
            shape = try NetworkShape(widths: widths)
        }
        batch = Int(c.batch)
        let k = Int(c.k)
        switch c.mode {
        case PDMM_MODE_BP: mode = .bp
        case PDMM_MODE_BP_CHECKPOINT: mode = .bpCheckpoint
        case PDMM_MODE_LOCAL: mode = .local(k: k)
        case PDMM_MODE_BLOCKWISE: mode = .blockwise(k: k)
        default: throw .invalidParameter(name: "mode", reason: "unknown mode \(c.mode)")
        }
        switch c.optimizer {
        case PDMM_OPT_SGD: optimizer = .sgd
        case PDMM_OPT_MOMENTUM: optimizer = .momentum(mu: c.momentum)
        case PDMM_OPT_RIEMANNIAN:
            if c.phi != PDMM_PHI_GRAD2 && c.phi != PDMM_PHI_ABSW {
                throw .invalidParameter(name: "phi", reason: "unknown phi \(c.phi)")
            }
            optimizer = .riemannian(alpha: c.riemann_alpha, rho: c.riemann_rho,
                                    phi: c.phi == PDMM_PHI_GRAD2 ? .gradSquared : .weightMagnitude)
        default: throw .invalidParameter(name: "optimizer", reason: "unknown optimizer \(c.optimizer)")
        }
        if !(c.learning_rate > 0 && c.learning_rate < 1) {
            throw .invalidParameter(name: "learning rate", reason: "must satisfy 0 < lr < 1")
        }
        options = TrainingOptions(learningRate: c.learning_rate, seed: c.seed)
        frozenInPlace = c.frozen_in_place != 0
    }

    /// The report's plan (packed forward), validating batch, k and optimizer.
    func plan() throws(EngineError) -> MemoryPlan {
        try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer)
    }

    /// Layers frozen in every stage (read in place with frozen_in_place).
    func frozenLayers(_ plan: MemoryPlan) -> Int {
        if !frozenInPlace { return 0 }
        var f = shape.layerCount
        for s in plan.stages { f = min(f, s.frozenCount) }
        return f
    }

    /// Bytes of the model image copy in the arena, rounded up to 8.
    func imageBytes(frozenLayers: Int) -> Int {
        (4 * Model.imageWords(shape, frozenLayers: frozenLayers) + 7) / 8 * 8
    }
}

/// Fills a pdmm_bytes from per-category counts and the image sizes.
func libBytes(_ b: ByteCounts, image: Int, imageFrozenInPlace: Int) -> pdmm_bytes {
    var o = pdmm_bytes()
    o.weights_trainable = Int64(b.weightsTrainable)
    o.weights_frozen = Int64(b.weightsFrozen)
    o.gradients = Int64(b.gradients)
    o.optimizer = Int64(b.optimizer)
    o.input = Int64(b.input)
    o.activations_stored = Int64(b.activationsStored)
    o.activations_working = Int64(b.activationsWorking)
    o.scratch = Int64(b.scratch)
    o.writable = Int64(b.writable)
    o.model_image = Int64(image)
    o.arena = Int64(image + b.writable)
    o.model_image_frozen_in_place = Int64(imageFrozenInPlace)
    o.arena_frozen_in_place = Int64(imageFrozenInPlace + b.writable)
    return o
}

@_cdecl("pdmm_config_default")
public func pdmm_config_default(_ c: UnsafeMutablePointer<pdmm_config>?) -> Int32 {
    guard let c else { return PDMM_E_NULL }
    var d = pdmm_config()
    d.batch = 32
    d.mode = PDMM_MODE_BP
    d.k = 1
    d.optimizer = PDMM_OPT_SGD
    d.phi = PDMM_PHI_GRAD2
    d.momentum = 0.9
    d.riemann_alpha = 1.0
    d.riemann_rho = 0.9
    d.learning_rate = 0.05
    d.seed = 1
    c.pointee = d
    return PDMM_OK
}

@_cdecl("pdmm_context_size")
public func pdmm_context_size() -> Int { LibContext.size }

@_cdecl("pdmm_plan")
public func pdmm_plan(_ c: UnsafePointer<pdmm_config>?, _ out: UnsafeMutablePointer<pdmm_bytes>?) -> Int32 {
    guard let c, let out else { return PDMM_E_NULL }
    do throws(EngineError) {
        let cfg = try LibConfig(c.pointee)
        let plan = try cfg.plan()
        let fip = try LibConfig.withFrozenInPlace(c.pointee)
        out.pointee = libBytes(plan.bytes, image: cfg.imageBytes(frozenLayers: 0),
                               imageFrozenInPlace: fip.imageBytes(frozenLayers: fip.frozenLayers(plan)))
        return PDMM_OK
    } catch {
        return libStatus(error)
    }
}

extension LibConfig {
    /// The configuration with frozen_in_place set (the plan's second arena size).
    static func withFrozenInPlace(_ c: pdmm_config) throws(EngineError) -> LibConfig {
        var c = c
        c.frozen_in_place = 1
        return try LibConfig(c)
    }
}

@_cdecl("pdmm_init")
public func pdmm_init(_ ctx: OpaquePointer?, _ c: UnsafePointer<pdmm_config>?, _ arena: UnsafeMutableRawPointer?,
                      _ arenaBytes: Int, _ frozen: UnsafePointer<Int32>?) -> Int32 {
    guard let ctx, let c, let arena else { return PDMM_E_NULL }
    let p = UnsafeMutableRawPointer(ctx)
    if Int(bitPattern: p) % 8 != 0 || Int(bitPattern: arena) % 8 != 0 { return PDMM_E_ALIGNMENT }
    if let frozen, Int(bitPattern: frozen) % 8 != 0 { return PDMM_E_ALIGNMENT }
    if LibContext.state(p) == LibContext.live { _ = pdmm_deinit(ctx) }
    p.storeBytes(of: 0, as: UInt64.self)
    p.storeBytes(of: nil, toByteOffset: LibContext.runOffset, as: UnsafeMutableRawPointer?.self)
    do throws(EngineError) {
        let cfg = try LibConfig(c.pointee)
        if cfg.frozenInPlace && frozen == nil { return PDMM_E_FROZEN_NEEDS_WEIGHTS }
        let frozenLayers = cfg.frozenLayers(try cfg.plan())
        let image = cfg.imageBytes(frozenLayers: frozenLayers)
        let plan: MemoryPlan
        do throws(EngineError) {
            plan = try MemoryPlan.fitting(shape: cfg.shape, batch: cfg.batch, mode: cfg.mode, optimizer: cfg.optimizer,
                                          budget: max(arenaBytes - image, 0))
        } catch {
            if case .budgetExceeded(let planned, _) = error {
                let needed = libBytes(planned, image: image, imageFrozenInPlace: image)
                p.storeBytes(of: needed, toByteOffset: LibContext.neededOffset, as: pdmm_bytes.self)
                p.storeBytes(of: needed.arena - Int64(arenaBytes), toByteOffset: LibContext.shortOffset, as: Int64.self)
                p.storeBytes(of: LibContext.refused, as: UInt64.self)
            }
            throw error
        }
        let model = Model(shape: cfg.shape, memory: arena.assumingMemoryBound(to: Int32.self), frozen: frozen,
                          frozenLayers: frozenLayers, seed: cfg.seed)
        let buffers = UnsafeMutableRawBufferPointer(start: arena + image, count: arenaBytes - image)
        let trainer = try Trainer(model: model, plan: plan, arena: Arena(plan: plan, memory: buffers),
                                  options: cfg.options)
        trainer.beginStage(0)
        let run = LibRun(model: model, trainer: trainer, heapBound: LibHeap.bound(cfg, plan))
        p.storeBytes(of: Unmanaged.passRetained(run).toOpaque(), toByteOffset: LibContext.runOffset,
                     as: UnsafeMutableRawPointer?.self)
        p.storeBytes(of: LibContext.live, as: UInt64.self)
        return PDMM_OK
    } catch {
        return libStatus(error)
    }
}

extension LibConfig {
    var seed: UInt64 { options.seed }
}

@_cdecl("pdmm_shortfall")
public func pdmm_shortfall(_ ctx: OpaquePointer?, _ needed: UnsafeMutablePointer<pdmm_bytes>?,
                           _ shortBy: UnsafeMutablePointer<Int64>?) -> Int32 {
    guard let ctx, let needed, let shortBy else { return PDMM_E_NULL }
    let p = UnsafeRawPointer(ctx)
    if Int(bitPattern: p) % 8 != 0 { return PDMM_E_ALIGNMENT }
    if LibContext.state(p) != LibContext.refused { return PDMM_E_NOT_INITIALIZED }
    needed.pointee = p.load(fromByteOffset: LibContext.neededOffset, as: pdmm_bytes.self)
    shortBy.pointee = p.load(fromByteOffset: LibContext.shortOffset, as: Int64.self)
    return PDMM_OK
}

@_cdecl("pdmm_init_heap_bytes")
public func pdmm_init_heap_bytes(_ ctx: OpaquePointer?, _ bytes: UnsafeMutablePointer<Int64>?) -> Int32 {
    guard let bytes else { return PDMM_E_NULL }
    let (run, s) = LibContext.run(ctx)
    guard let run else { return s }
    bytes.pointee = Int64(run.heapBound)
    return PDMM_OK
}

@_cdecl("pdmm_deinit")
public func pdmm_deinit(_ ctx: OpaquePointer?) -> Int32 {
    let (run, s) = LibContext.run(ctx)
    guard run != nil, let ctx else { return s }
    let p = UnsafeMutableRawPointer(ctx)
    if let r = p.load(fromByteOffset: LibContext.runOffset, as: UnsafeMutableRawPointer?.self) {
        Unmanaged<LibRun>.fromOpaque(r).release()
    }
    p.storeBytes(of: 0, as: UInt64.self)
    p.storeBytes(of: nil, toByteOffset: LibContext.runOffset, as: UnsafeMutableRawPointer?.self)
    return PDMM_OK
}
