/// A network's layers and the word counts every plan is made of: n_0 (input
/// words per sample) ... n_L (classes), where n_l = |s_l| is layer l's output.
///
/// Layer l (1-based, 1...L) is a trainable dense or convolution layer with the
/// pooling, ReLU and flatten after it (`Layer`). A dense ReLU stack
/// (`init(widths:)`) has W_l [n_l x n_{l-1}] and b_l [n_l] per layer and ReLU
/// after every layer but the last.
///
/// ```swift
/// let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
/// shape.layerCount          // 4
/// shape.parameterCount(1)   // 64*128 + 128 = 8320
/// let cnn = try NetworkShape(spec: NetworkSpec.parse("1x8x8: conv 8 3x3, relu, maxpool 2x2, flatten, dense 10"))
/// cnn.widths                // [64, 128, 10]
/// ```
public struct NetworkShape: Equatable, Sendable {
    /// n_0 ... n_L: words per sample of the input and of each layer's output.
    public let widths: [Int]
    /// The network as written (a dense stack's spec for `init(widths:)`).
    public let spec: NetworkSpec
    /// Layers 1...L at indices 0..<L (use `layer(l)`).
    public let layers: [Layer]

    /// The most Q16.16 words the engine indexes in one model (all parameters) or
    /// one layer: 2^25 words (128 MiB). With it every byte count of a plan fits
    /// a 32-bit `Int` (armv7) and every kernel dimension an `Int32`.
    public static let maxWords = 1 << 25

    /// Validates the widths: at least two, each in 1...65535, and the parameter
    /// count of every layer and of the whole model at most `maxWords`. A shape
    /// that fails is refused here, before anything is allocated.
    public init(widths: [Int]) throws(EngineError) {
        if widths.count < 2 { throw .tooFewWidths(count: widths.count) }
        for i in 0..<widths.count where widths[i] <= 0 {
            throw .zeroWidth(index: i, value: widths[i])
        }
        for i in 0..<widths.count where widths[i] > 65_535 {
            throw .sizeTooLarge(what: "width \(i) (\(widths[i]))")
        }
        for l in 1..<widths.count {
            // widths <= 65535: the product fits Int64; checked arithmetic keeps 32-bit Int safe
            let (w, o1) = widths[l - 1].multipliedReportingOverflow(by: widths[l])
            let (p, o2) = w.addingReportingOverflow(widths[l])
            if o1 || o2 || p > NetworkShape.maxWords {
                throw .sizeTooLarge(what: "layer \(l) (\(widths[l - 1]) x \(widths[l]) weights + \(widths[l]) biases, more than \(NetworkShape.maxWords) words)")
            }
        }
        let spec: NetworkSpec
        do { spec = try NetworkSpec.denseStack(widths: widths) } catch { throw .invalidNetwork(error.message) }
        try self.init(spec: spec)
    }

    /// Prepares every layer of `spec` (`Layer.layers(of:)`) and checks the sizes:
    /// each layer's parameters, the model's, and each layer's tensors per sample
    /// at most `maxWords`.
    public init(spec: NetworkSpec) throws(EngineError) {
        let layers = try Layer.layers(of: spec)
        var total = 0
        var widths = [spec.input.count]
        for (i, layer) in layers.enumerated() {
            // The weight count by checked multiplication (its factors may overflow a 32-bit Int)
            // before any other size of the layer is formed.
            var w = 1, overflow = false
            let factors: [Int]
            switch layer.kind {
            case .dense: factors = [layer.input.count, layer.pre.count]
            case .conv(let kh, let kw, _, _, _): factors = [layer.pre.channels, layer.input.channels, kh, kw]
            }
            for f in factors where !overflow {
                let (p, o) = w.multipliedReportingOverflow(by: f)
                w = p
                overflow = o || w > NetworkShape.maxWords
            }
            if overflow || layer.parameterCount > NetworkShape.maxWords {
                throw .sizeTooLarge(what: "layer \(i + 1) (\(layer.description): more than \(NetworkShape.maxWords) parameter words)")
            }
            total += layer.parameterCount
            if total > NetworkShape.maxWords {
                throw .sizeTooLarge(what: "the model (more than \(NetworkShape.maxWords) parameter words)")
            }
            widths.append(layer.outputWords)
        }
        self.spec = spec
        self.layers = layers
        self.widths = widths
    }

    /// Layer l, 1-based.
    public func layer(_ l: Int) -> Layer { layers[l - 1] }

    /// Whether every layer is dense (a `--layers` stack).
    public var isDenseOnly: Bool {
        for l in layers where l.isConv || l.hasPool { return false }
        return true
    }

    /// L, the number of dense layers.
    public var layerCount: Int { widths.count - 1 }
    /// n_0.
    public var inputWidth: Int { widths[0] }
    /// n_L.
    public var classCount: Int { widths[widths.count - 1] }

    /// P_l (n_{l-1} n_l + n_l for a dense layer), for l in 1...L.
    public func parameterCount(_ l: Int) -> Int { layers[l - 1].parameterCount }

    /// Sum of P_l over the layers in `range` (1-based, inclusive bounds).
    public func parameterCount(layers range: ClosedRange<Int>) -> Int {
        var s = 0
        for l in range { s += parameterCount(l) }
        return s
    }

    /// Sum of P_l over every layer.
    public var totalParameterCount: Int { parameterCount(layers: 1...layerCount) }

    /// max(n_i) for i in `range` (0 if the range is empty).
    func maxWidth(_ range: Range<Int>) -> Int {
        var m = 0
        for i in range { m = max(m, widths[i]) }
        return m
    }

    /// n_i + ... + n_j over `range` (0 if empty).
    func sumWidths(_ range: Range<Int>) -> Int {
        var s = 0
        for i in range { s += widths[i] }
        return s
    }

    /// The text form: "64-128-10" for a dense ReLU stack, else the network text.
    public var description: String {
        if isDenseOnly && spec == (try? NetworkSpec.denseStack(widths: widths)) {
            var s = ""
            for (i, w) in widths.enumerated() { s += (i == 0 ? "" : "-") + "\(w)" }
            return s
        }
        return spec.description
    }

    /// Words per sample of every tensor of a batch together: the outputs, plus
    /// the pre-pool tensors and argmax indices of pooling layers.
    var wordsPerSample: Int {
        var s = widths[0]
        for l in layers {
            // each term is at most 3 x 2^24 (NetworkSpec's per-tensor limit); the sum is checked
            let (t, o) = s.addingReportingOverflow(l.outputWords + l.poolTemporaryWords + l.indexWords)
            if o { return Int.max }
            s = t
        }
        return s
    }

    /// max over layers l in `range` (1-based) of `f` (0 if empty).
    func maxOver(_ range: Range<Int>, _ f: (Layer) -> Int) -> Int {
        var m = 0
        for l in range { m = max(m, f(layers[l - 1])) }
        return m
    }
}
