/// A network's parameters in Q16.16: the model image.
///
/// The image holds every layer's weights W_l (dense: [n_l x n_{l-1}]; conv:
/// [F x C x kh x kw]) followed by its biases b_l, layer after layer. It is the long-lived copy of the weights (on a board:
/// flash, or a file); a training run copies the layers it trains into its
/// arena and reads frozen layers from here in place, read-only.
///
/// ```swift
/// let model = try Model(shape: NetworkShape(widths: [64, 32, 10]), seed: 7)
/// model.weightsHash   // the same on every run and every architecture
/// ```
public final class Model {
    public let shape: NetworkShape
    /// The writable words: layers frozenLayers+1...L (all layers when nothing is read in place).
    let image: UnsafeMutablePointer<Int32>
    let offsets: [Int]  // offsets[l] = first word of layer l (1-based); offsets[L+1] = total
    /// Whether `image` was allocated here (false: caller memory, see `init(shape:memory:frozen:frozenLayers:seed:)`).
    let ownsImage: Bool
    /// Layers 1...frozenLayers read in place from `frozen` (never written, never copied).
    let frozen: UnsafePointer<Int32>?
    let frozenLayers: Int
    /// Words of layers 1...frozenLayers: `image` starts at this flat index.
    let frozenWords: Int
    /// Feature scaling applied to raw inputs (statistics of the training split).
    public var scaling: FeatureScaling?

    /// He-uniform initialisation from a seed: W ~ U(-a, a), a = sqrt(6 / fan-in)
    /// (computed in Q16.16), from the counter-based generator, so the weights
    /// are identical everywhere; biases 0.
    public init(shape: NetworkShape, seed: UInt64) {
        self.shape = shape
        var offs = [0, 0]
        for l in 1...shape.layerCount { offs.append(offs[l] + shape.parameterCount(l)) }
        self.offsets = offs
        let total = offs[shape.layerCount + 1]
        image = UnsafeMutablePointer<Int32>.allocate(capacity: max(total, 1))
        image.initialize(repeating: 0, count: max(total, 1))
        ownsImage = true
        frozen = nil
        frozenLayers = 0
        frozenWords = 0
        for l in 1...shape.layerCount {
            Model.heUniform(weights(l), fanIn: shape.layer(l).fanIn, seed: seed,
                            counter: UInt64(offs[l]))
        }
    }

    /// A model over caller memory (the C library's arena): `memory` holds the
    /// writable words, `imageWords(shape, frozenLayers:)` of them; nothing is allocated
    /// for the parameters. With `frozen` (a whole model image, e.g. in flash or a
    /// read-only mapping), layers 1...frozenLayers are read from it in place -- never
    /// written, never copied -- and the other layers start as a copy of its words;
    /// without it, every layer gets the He-uniform initialisation of `init(shape:seed:)`
    /// (the same weights), and `frozenLayers` must be 0.
    public init(shape: NetworkShape, memory: UnsafeMutablePointer<Int32>, frozen: UnsafePointer<Int32>?,
                frozenLayers: Int, seed: UInt64) {
        precondition(frozenLayers >= 0 && frozenLayers < shape.layerCount && (frozen != nil || frozenLayers == 0),
                     "Model: frozen layers need a frozen image")
        self.shape = shape
        var offs = [0, 0]
        for l in 1...shape.layerCount { offs.append(offs[l] + shape.parameterCount(l)) }
        self.offsets = offs
        ownsImage = false
        image = memory
        self.frozen = frozen
        self.frozenLayers = frozenLayers
        frozenWords = offs[frozenLayers + 1]
        let total = offs[shape.layerCount + 1]
        if let frozen {
            memory.update(from: frozen + frozenWords, count: total - frozenWords)
        } else {
            memory.update(repeating: 0, count: total)
            for l in 1...shape.layerCount {
                Model.heUniform(weights(l), fanIn: shape.layer(l).fanIn, seed: seed, counter: UInt64(offs[l]))
            }
        }
    }

    /// Writable words a model over caller memory needs: every parameter but
    /// those of layers 1...frozenLayers.
    public static func imageWords(_ shape: NetworkShape, frozenLayers: Int) -> Int {
        shape.totalParameterCount - (frozenLayers > 0 ? shape.parameterCount(layers: 1...frozenLayers) : 0)
    }

    deinit { if ownsImage { image.deallocate() } }

    /// The He-uniform bound a = sqrt(6 / fanIn) in Q16.16: 6 / fanIn rounded to nearest
    /// (ties away; exactly `q16_div(6, fanIn)` where fanIn is a Q16.16 value), then the
    /// correctly rounded square root. Integer arithmetic only, valid for every fanIn >= 1
    /// (at least 1 LSB, so no layer starts all zero).
    static func heBound(fanIn: Int) -> Int64 {
        precondition(fanIn >= 1, "heBound: fanIn must be at least 1")
        let ratio = Rounding.divNearest(Int64(6) << 16, Int64(fanIn))  // 6 / fanIn, Q16.16, <= 6 << 16
        return max(Int64(Kernels.sqrt(Int32(ratio))), 1)
    }

    static func heUniform(_ w: Tensor, fanIn: Int, seed: UInt64, counter: UInt64) {
        let a = heBound(fanIn: fanIn)
        let span = UInt64(2 * a + 1)
        for i in 0..<w.count {
            let r = UInt64(Kernels.randomBits(seed, counter &+ UInt64(i)))
            w[i] = Int32(Int64((r &* span) >> 32) - a)
        }
    }

    /// Total parameter words.
    public var parameterCount: Int { offsets[shape.layerCount + 1] }

    /// W_l as a view.
    func weights(_ l: Int) -> Tensor { shape.layer(l).weights(layer(l)) }

    /// Layer l's W_l then b_l, P_l words (a frozen layer read in place: never written through).
    func layer(_ l: Int) -> Tensor {
        if l <= frozenLayers, let f = frozen {
            return Tensor(base: UnsafeMutablePointer(mutating: f + offsets[l]), count: shape.parameterCount(l))
        }
        return Tensor(base: image + (offsets[l] - frozenWords), count: shape.parameterCount(l))
    }

    /// A parameter word by flat index (tests, serialisation); words read in place cannot be set.
    public subscript(i: Int) -> Int32 {
        get {
            precondition(i >= 0 && i < parameterCount)
            if i < frozenWords, let f = frozen { return f[i] }
            return image[i - frozenWords]
        }
        set {
            precondition(i >= frozenWords && i < parameterCount, "Model: word outside the writable image")
            image[i - frozenWords] = newValue
        }
    }

    /// Every parameter word, layer after layer (checkpoints).
    func words() -> [Int32] {
        var w = [Int32](repeating: 0, count: parameterCount)
        for i in 0..<parameterCount { w[i] = self[i] }
        return w
    }

    /// Overwrites every parameter word; false (nothing changed) if the count differs or
    /// a word read in place differs from `w`.
    func load(_ w: [Int32]) -> Bool {
        if w.count != parameterCount { return false }
        for i in 0..<frozenWords where w[i] != self[i] { return false }
        for i in frozenWords..<parameterCount { image[i - frozenWords] = w[i] }
        return true
    }

    /// FNV-1a 64 over every parameter word, little-endian bytes.
    public var weightsHash: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<parameterCount {
            let v = UInt32(bitPattern: self[i])
            for k in 0..<4 {
                h ^= UInt64((v >> (8 * UInt32(k))) & 0xff)
                h = h &* 0x0000_0100_0000_01b3
            }
        }
        return h
    }

    /// Copies every parameter of `other` (same shape).
    public func copyParameters(from other: Model) {
        precondition(other.shape == shape, "copyParameters: shape mismatch")
        if frozenWords == 0 && other.frozenWords == 0 {
            image.update(from: other.image, count: parameterCount)
        } else {
            for i in frozenWords..<parameterCount { self[i] = other[i] }
        }
        scaling = other.scaling
    }

    /// 16 hexadecimal digits of `weightsHash`.
    public var weightsHashHex: String { Hex.format(weightsHash) }
}

/// Fixed-width hexadecimal without Foundation.
public enum Hex {
    public static func format(_ v: UInt64) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        var s = ""
        var shift: UInt64 = 60
        while true {
            s.append(digits[Int((v >> shift) & 0xf)])
            if shift == 0 { break }
            shift -= 4
        }
        return s
    }
}
