/// The shape of one sample's tensor: channels x height x width (channel-major).
/// 1-D data (a sensor window) is `C x 1 x W`; a flat feature vector is `n x 1 x 1`.
public struct TensorShape: Equatable, Sendable {
    public let channels: Int
    public let height: Int
    public let width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// C x H x W words per sample.
    public var count: Int { channels * height * width }
    /// Whether the tensor is a flat vector (H = W = 1), what a dense layer reads.
    public var isFlat: Bool { height == 1 && width == 1 }
    /// "8x14x14", or "64" for a flat vector.
    public var description: String { isFlat ? "\(channels)" : "\(channels)x\(height)x\(width)" }
}

/// How a convolution treats the border.
public enum Padding: Equatable, Sendable {
    /// Zero padding so that, at stride 1, the output has the input's height and width.
    case same
    /// No padding: only windows that lie inside the input.
    case valid
}

/// One layer of a network, as written in the text form.
public enum LayerSpec: Equatable, Sendable {
    /// A dense (fully connected) layer of `units` outputs; reads a flat input.
    case dense(units: Int)
    /// `filters` convolution filters of kh x kw over all input channels.
    case conv(filters: Int, kh: Int, kw: Int, stride: Int, padding: Padding)
    /// Non-overlapping max pooling over ph x pw windows (remainders dropped).
    case maxpool(ph: Int, pw: Int)
    /// Non-overlapping average pooling over ph x pw windows (remainders dropped).
    case avgpool(ph: Int, pw: Int)
    /// max(x, 0), element-wise.
    case relu
    /// C x H x W -> (C H W) x 1 x 1.
    case flatten

    /// Whether the layer has parameters that training updates (k counts these).
    public var isTrainable: Bool {
        switch self {
        case .dense, .conv: return true
        default: return false
        }
    }

    /// The text form of the layer ("conv 8 3x3 same", "maxpool 2x2", ...).
    public var description: String {
        switch self {
        case .dense(let u): return "dense \(u)"
        case .conv(let f, let kh, let kw, let s, let p):
            return "conv \(f) \(kh)x\(kw)" + (s == 1 ? "" : " stride \(s)") + (p == .same ? " same" : " valid")
        case .maxpool(let ph, let pw): return "maxpool \(ph)x\(pw)"
        case .avgpool(let ph, let pw): return "avgpool \(ph)x\(pw)"
        case .relu: return "relu"
        case .flatten: return "flatten"
        }
    }
}

/// Why a network text was refused: where, and what was expected.
public struct NetworkSpecError: Error, Equatable {
    /// 1-based character column of the mistake in the text (0 when it is about shapes).
    public let column: Int
    public let message: String

    public init(column: Int, message: String) {
        self.column = column
        self.message = message
    }
}

/// A network as a sequence of typed layers over an input shape, with every
/// layer's output shape inferred and checked (before anything is allocated).
///
/// Text form: `INPUT: LAYER, LAYER, ...` where INPUT is `CxHxW` (or `n` for a
/// flat vector) and a LAYER is one of `dense N`, `conv F KHxKW [stride S]
/// [same|valid]` (default stride 1, same), `maxpool PHxPW`, `avgpool PHxPW`,
/// `relu`, `flatten`. The last layer must be dense: its units are the classes.
///
/// ```swift
/// let net = try NetworkSpec.parse("1x28x28: conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 10")
/// net.shapes.last   // 10 (a flat vector of 10 logits)
/// net.layers[2]     // .maxpool(ph: 2, pw: 2)
/// ```
public struct NetworkSpec: Equatable, Sendable {
    public let input: TensorShape
    public let layers: [LayerSpec]
    /// shapes[i] is the output of layers[i] (shapes.count == layers.count).
    public let shapes: [TensorShape]

    /// Checks and infers the shapes of `layers` over `input`.
    public init(input: TensorShape, layers: [LayerSpec]) throws(NetworkSpecError) {
        self.input = input
        self.layers = layers
        self.shapes = try NetworkSpec.inferShapes(input, layers)
    }

    /// The shape layer i reads (the input for i = 0).
    public func inputShape(of i: Int) -> TensorShape { i == 0 ? input : shapes[i - 1] }

    /// Number of classes: the units of the last (dense) layer.
    public var classCount: Int { shapes[shapes.count - 1].count }

    /// The dense ReLU stack of `--layers 64,128,10`: 64: dense 128, relu, dense 10.
    public static func denseStack(widths: [Int]) throws(NetworkSpecError) -> NetworkSpec {
        if widths.count < 2 { throw NetworkSpecError(column: 0, message: "a network needs at least 2 widths (input and classes), got \(widths.count)") }
        var layers: [LayerSpec] = []
        for l in 1..<widths.count {
            layers.append(.dense(units: widths[l]))
            if l < widths.count - 1 { layers.append(.relu) }
        }
        if widths[0] < 1 { throw NetworkSpecError(column: 0, message: "input width is \(widths[0]): must be at least 1") }
        return try NetworkSpec(input: TensorShape(channels: widths[0], height: 1, width: 1), layers: layers)
    }

    /// The first place `other` differs from this spec, in words, naming this spec
    /// `mine` and the other `theirs` ("layer 3: --net has conv 16 3x3 same, the
    /// checkpoint has conv 8 3x3 same"), or nil when they are equal.
    public func firstDifference(from other: NetworkSpec, mine: String, theirs: String) -> String? {
        if input != other.input {
            return "input: \(mine) has \(input.description), \(theirs) has \(other.input.description)"
        }
        for i in 0..<min(layers.count, other.layers.count) where layers[i] != other.layers[i] {
            return "layer \(i + 1): \(mine) has \(layers[i].description), \(theirs) has \(other.layers[i].description)"
        }
        if layers.count != other.layers.count {
            return "\(mine) has \(layers.count) layers, \(theirs) has \(other.layers.count)"
        }
        return nil
    }

    /// The text form (parses back to an equal spec).
    public var description: String {
        var s = input.description + ":"
        for (i, l) in layers.enumerated() { s += (i == 0 ? " " : ", ") + l.description }
        return s
    }

    /// Largest size of any one dimension or count (kernel dimensions are Int32).
    static let maxDimension = 1 << 24

    static func inferShapes(_ input: TensorShape, _ layers: [LayerSpec]) throws(NetworkSpecError) -> [TensorShape] {
        func fail(_ i: Int, _ m: String) -> NetworkSpecError {
            NetworkSpecError(column: 0, message: "layer \(i + 1) (\(layers[i].description)): \(m)")
        }
        for v in [input.channels, input.height, input.width] where v < 1 || v > maxDimension {
            throw NetworkSpecError(column: 0, message: "input shape \(input.description): every dimension must lie in 1...\(maxDimension)")
        }
        if input.count > maxDimension {
            throw NetworkSpecError(column: 0, message: "input shape \(input.description): more than \(maxDimension) values per sample")
        }
        if layers.isEmpty { throw NetworkSpecError(column: 0, message: "the network has no layers") }
        var shapes: [TensorShape] = []
        var x = input
        for (i, layer) in layers.enumerated() {
            switch layer {
            case .dense(let u):
                if u < 1 || u > 65_535 { throw fail(i, "units must lie in 1...65535") }
                if !x.isFlat { throw fail(i, "needs a flat input but gets \(x.description): add flatten before it") }
                x = TensorShape(channels: u, height: 1, width: 1)
            case .conv(let f, let kh, let kw, let s, let p):
                if f < 1 || f > 65_535 { throw fail(i, "filters must lie in 1...65535") }
                if kh < 1 || kw < 1 || kh > 255 || kw > 255 { throw fail(i, "kernel sizes must lie in 1...255") }
                if s < 1 || s > 255 { throw fail(i, "stride must lie in 1...255") }
                if p == .valid && (kh > x.height || kw > x.width) {
                    throw fail(i, "kernel \(kh)x\(kw) is larger than its \(x.description) input (valid padding)")
                }
                let ho = p == .same ? (x.height + s - 1) / s : (x.height - kh) / s + 1
                let wo = p == .same ? (x.width + s - 1) / s : (x.width - kw) / s + 1
                x = TensorShape(channels: f, height: ho, width: wo)
            case .maxpool(let ph, let pw), .avgpool(let ph, let pw):
                if ph < 1 || pw < 1 { throw fail(i, "window sizes must be at least 1") }
                if ph > x.height || pw > x.width {
                    throw fail(i, "window \(ph)x\(pw) is larger than its \(x.description) input")
                }
                x = TensorShape(channels: x.channels, height: x.height / ph, width: x.width / pw)
            case .relu:
                break
            case .flatten:
                x = TensorShape(channels: x.count, height: 1, width: 1)
            }
            if x.count > maxDimension { throw fail(i, "output \(x.description) has more than \(maxDimension) values per sample") }
            shapes.append(x)
        }
        guard case .dense = layers[layers.count - 1] else {
            throw NetworkSpecError(column: 0, message: "the last layer must be dense (its units are the classes), not \(layers[layers.count - 1].description)")
        }
        return shapes
    }
}
