/// Why a checkpoint cannot be read. Nothing is allocated for a size before
/// it has been checked against the bytes actually present.
public enum CheckpointError: Error, Equatable {
    case truncated(needed: Int, have: Int)
    case wrongMagic
    case newerVersion(Int)
    case notQ16(fracBits: Int)
    case crcMismatch(stored: UInt32, computed: UInt32)
    case absurd(String)
    case mismatch(String)

    public var message: String {
        switch self {
        case .truncated(let n, let h): return "checkpoint truncated: needs at least \(n) bytes, has \(h)"
        case .wrongMagic: return "not a PDMM checkpoint (wrong magic)"
        case .newerVersion(let v): return "checkpoint format version \(v) is newer than this program's (\(Checkpoint.version))"
        case .notQ16(let f): return "checkpoint holds Q\(32 - f).\(f) values, this program reads Q16.16"
        case .crcMismatch(let s, let c): return "checkpoint CRC mismatch (stored \(Hex.format(UInt64(s))), computed \(Hex.format(UInt64(c)))): the file is corrupt"
        case .absurd(let s): return "checkpoint is corrupt: \(s)"
        case .mismatch(let s): return s
        }
    }
}

/// A training run's complete state: everything `pdmm train --resume` needs to
/// continue so that the final weights are bit-identical to an uninterrupted run.
public struct Checkpoint: Equatable {
    public static let magic: [UInt8] = Array("PDMMCKPT".utf8)
    /// 2: the network text (layer graph); 1: dense widths (still read).
    public static let version = 2

    /// The layer graph (a version-1 file's widths read as their dense ReLU stack).
    public var network: NetworkSpec
    public var mode: TrainingMode
    public var optimizer: OptimizerKind
    public var batch: Int
    public var learningRate: Double
    public var seed: UInt64
    public var stepCount: UInt64
    public var randomCounter: UInt64
    public var stage: Int
    /// Epochs completed in `stage`.
    public var epochsDone: Int
    public var scaling: FeatureScaling?
    /// The model image (every layer's W then b).
    public var model: [Int32]
    /// The arena's weights.trainable and optimizer regions (aux head and state included).
    public var trainable: [Int32]
    public var optimizerState: [Int32]

    public init(network: NetworkSpec, mode: TrainingMode, optimizer: OptimizerKind, batch: Int, learningRate: Double,
                seed: UInt64, stepCount: UInt64, randomCounter: UInt64, stage: Int, epochsDone: Int,
                scaling: FeatureScaling?, model: [Int32], trainable: [Int32], optimizerState: [Int32]) {
        self.network = network
        self.mode = mode
        self.optimizer = optimizer
        self.batch = batch
        self.learningRate = learningRate
        self.seed = seed
        self.stepCount = stepCount
        self.randomCounter = randomCounter
        self.stage = stage
        self.epochsDone = epochsDone
        self.scaling = scaling
        self.model = model
        self.trainable = trainable
        self.optimizerState = optimizerState
    }

    /// A checkpoint of the dense ReLU stack over `widths`.
    public init(widths: [Int], mode: TrainingMode, optimizer: OptimizerKind, batch: Int, learningRate: Double,
                seed: UInt64, stepCount: UInt64, randomCounter: UInt64, stage: Int, epochsDone: Int,
                scaling: FeatureScaling?, model: [Int32], trainable: [Int32], optimizerState: [Int32]) throws(CheckpointError) {
        let spec: NetworkSpec
        do { spec = try NetworkSpec.denseStack(widths: widths) } catch { throw .absurd(error.message) }
        self.init(network: spec, mode: mode, optimizer: optimizer, batch: batch, learningRate: learningRate, seed: seed,
                  stepCount: stepCount, randomCounter: randomCounter, stage: stage, epochsDone: epochsDone,
                  scaling: scaling, model: model, trainable: trainable, optimizerState: optimizerState)
    }

    /// The byte layout (all little-endian), documented in the README:
    /// magic "PDMMCKPT" | u32 version (2) | u32 fraction bits (16) | u32 n | n bytes: the network
    /// text, UTF-8 (`NetworkSpec.description`, e.g. "1x8x8: conv 4 3x3 same, relu, ..., dense 10") |
    /// u32 mode (0 bp, 1 bp-checkpoint, 2 local, 3 blockwise) | u32 k |
    /// u32 optimizer (0 sgd, 1 momentum, 2 riemannian) | u32 phi (0 g^2, 1 |w|) | f64 mu-or-alpha | f64 rho |
    /// u32 batch | f64 learning rate | u64 seed | u64 step | u64 random counter | u32 stage | u32 epochs done |
    /// u32 scaling words n (0 = none) | n x i32 mean | n x i32 1/std |
    /// u32 model words | words | u32 trainable words | words | u32 optimizer words | words | u32 CRC-32 (IEEE)
    /// of every preceding byte. Version 1 had u32 L | (L+1) x u32 widths in place of the
    /// network text (a dense ReLU stack); it is still read.
    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.bytes.append(contentsOf: Checkpoint.magic)
        w.u32(UInt32(Checkpoint.version))
        w.u32(16)
        let text = Array(network.description.utf8)
        w.u32(UInt32(text.count))
        w.bytes.append(contentsOf: text)
        switch mode {
        case .bp: w.u32(0); w.u32(0)
        case .bpCheckpoint: w.u32(1); w.u32(0)
        case .local(let k): w.u32(2); w.u32(UInt32(k))
        case .blockwise(let k): w.u32(3); w.u32(UInt32(k))
        }
        switch optimizer {
        case .sgd: w.u32(0); w.u32(0); w.f64(0); w.f64(0)
        case .momentum(let mu): w.u32(1); w.u32(0); w.f64(mu); w.f64(0)
        case .riemannian(let a, let r, let phi): w.u32(2); w.u32(phi == .gradSquared ? 0 : 1); w.f64(a); w.f64(r)
        }
        w.u32(UInt32(batch))
        w.f64(learningRate)
        w.u64(seed)
        w.u64(stepCount)
        w.u64(randomCounter)
        w.u32(UInt32(stage))
        w.u32(UInt32(epochsDone))
        if let s = scaling {
            w.u32(UInt32(s.mean.count))
            for v in s.mean { w.i32(v) }
            for v in s.inverseStd { w.i32(v) }
        } else {
            w.u32(0)
        }
        w.words(model)
        w.words(trainable)
        w.words(optimizerState)
        w.u32(CRC32.checksum(w.bytes, count: w.bytes.count))
        return w.bytes
    }

    /// Reads and validates a checkpoint: magic, version, Q16.16 marker, CRC,
    /// then every count against the bytes present, then the shapes.
    public static func decode(_ b: [UInt8]) throws(CheckpointError) -> Checkpoint {
        let minimum = 8 + 4 + 4 + 4
        if b.count < minimum { throw .truncated(needed: minimum, have: b.count) }
        for i in 0..<8 where b[i] != magic[i] { throw .wrongMagic }
        var r = ByteReader(bytes: b, end: b.count - 4)
        r.pos = 8
        let version = Int(try r.u32())
        if version > Checkpoint.version { throw .newerVersion(version) }
        if version < 1 { throw .absurd("format version \(version)") }
        let frac = Int(try r.u32())
        if frac != 16 { throw .notQ16(fracBits: frac) }
        let stored = UInt32(b[b.count - 4]) | UInt32(b[b.count - 3]) << 8 | UInt32(b[b.count - 2]) << 16
            | UInt32(b[b.count - 1]) << 24
        let computed = CRC32.checksum(b, count: b.count - 4)
        if stored != computed { throw .crcMismatch(stored: stored, computed: computed) }
        let spec = version == 1 ? try readWidths(&r) : try readNetworkText(&r)
        let shape: NetworkShape
        do { shape = try NetworkShape(spec: spec) } catch { throw .absurd("network: \(error.message)") }
        let L = shape.layerCount
        let modeCode = try r.u32(), k = Int(try r.u32())
        let mode: TrainingMode
        switch modeCode {
        case 0: mode = .bp
        case 1: mode = .bpCheckpoint
        case 2: mode = .local(k: k)
        case 3: mode = .blockwise(k: k)
        default: throw .absurd("mode code \(modeCode)")
        }
        if case .local = mode, k < 1 || k > L { throw .absurd("k = \(k) with L = \(L)") }
        if case .blockwise = mode, k < 1 || k > L { throw .absurd("k = \(k) with L = \(L)") }
        let optCode = try r.u32(), phi = try r.u32()
        let p1 = try r.f64(), p2 = try r.f64()
        let opt: OptimizerKind
        switch optCode {
        case 0: opt = .sgd
        case 1: opt = .momentum(mu: p1)
        case 2:
            if phi > 1 { throw .absurd("phi kind \(phi)") }
            opt = .riemannian(alpha: p1, rho: p2, phi: phi == 0 ? .gradSquared : .weightMagnitude)
        default: throw .absurd("optimizer code \(optCode)")
        }
        let batch = Int(try r.u32())
        if batch < 1 || batch > 1 << 20 { throw .absurd("batch \(batch)") }
        let lr = try r.f64()
        let seed = try r.u64(), step = try r.u64(), counter = try r.u64()
        let stage = Int(try r.u32()), epochs = Int(try r.u32())
        let nScale = Int(try r.u32())
        var scaling: FeatureScaling? = nil
        if nScale > 0 {
            if nScale != shape.inputWidth { throw .absurd("scaling for \(nScale) features, network input \(shape.inputWidth)") }
            let mean = try r.i32s(nScale), inv = try r.i32s(nScale)
            scaling = FeatureScaling(mean: mean, inverseStd: inv)
        }
        let expected = shape.totalParameterCount
        let modelWords = Int(try r.u32())
        if modelWords != expected { throw .absurd("\(modelWords) model words for a network needing \(expected)") }
        let model = try r.i32s(modelWords)
        let trainable = try r.i32s(Int(try r.u32()))
        let optState = try r.i32s(Int(try r.u32()))
        if r.pos != r.end { throw .absurd("\(r.end - r.pos) unexpected bytes before the CRC") }
        return Checkpoint(network: spec, mode: mode, optimizer: opt, batch: batch, learningRate: lr, seed: seed,
                          stepCount: step, randomCounter: counter, stage: stage, epochsDone: epochs, scaling: scaling,
                          model: model, trainable: trainable, optimizerState: optState)
    }

    /// Version 1's network: u32 L | (L+1) x u32 widths, a dense ReLU stack.
    static func readWidths(_ r: inout ByteReader) throws(CheckpointError) -> NetworkSpec {
        let L = Int(try r.u32())
        if L < 1 || L > 4096 { throw .absurd("layer count \(L)") }
        try r.need(4 * (L + 1))
        var widths: [Int] = []
        for _ in 0...L {
            let x = Int(try r.u32())
            if x < 1 || x > 65535 { throw .absurd("width \(x)") }
            widths.append(x)
        }
        do { return try NetworkSpec.denseStack(widths: widths) } catch { throw .absurd(error.message) }
    }

    /// Version 2's network: u32 n | n bytes of network text.
    static func readNetworkText(_ r: inout ByteReader) throws(CheckpointError) -> NetworkSpec {
        let n = Int(try r.u32())
        if n < 1 || n > 65536 { throw .absurd("network text of \(n) bytes") }
        try r.need(n)
        let text = String(decoding: r.bytes[r.pos..<(r.pos + n)], as: UTF8.self)
        r.pos += n
        do { return try NetworkSpec.parse(text) } catch { throw .absurd("network text: \(error.message)") }
    }
}

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { for s in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(s)))) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func u64(_ v: UInt64) { for s in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(s)))) } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func words(_ w: [Int32]) {
        u32(UInt32(w.count))
        bytes.reserveCapacity(bytes.count + 4 * w.count)
        for v in w { i32(v) }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    let end: Int
    var pos = 0
    func need(_ n: Int) throws(CheckpointError) {
        if n < 0 || n > end - pos { throw .truncated(needed: pos + n + 4, have: end + 4) }
    }
    mutating func u32() throws(CheckpointError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for s in 0..<4 { v |= UInt32(bytes[pos + s]) << (8 * UInt32(s)) }
        pos += 4
        return v
    }
    mutating func u64() throws(CheckpointError) -> UInt64 {
        let lo = UInt64(try u32()), hi = UInt64(try u32())
        return lo | hi << 32
    }
    mutating func f64() throws(CheckpointError) -> Double { Double(bitPattern: try u64()) }
    /// n words, checked against the bytes present before anything is allocated.
    mutating func i32s(_ n: Int) throws(CheckpointError) -> [Int32] {
        if n < 0 || n > (end - pos) / 4 { throw .truncated(needed: pos + 4 * max(n, 0) + 4, have: end + 4) }
        var out = [Int32](repeating: 0, count: n)
        for i in 0..<n { out[i] = Int32(bitPattern: try u32()) }
        return out
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bitwise: no table, no globals.
public enum CRC32 {
    public static func checksum(_ b: [UInt8], count: Int) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for i in 0..<count {
            c ^= UInt32(b[i])
            for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
        }
        return ~c
    }
}
