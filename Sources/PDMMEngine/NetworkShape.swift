/// The widths of a dense ReLU network: n_0 (input features) ... n_L (classes).
///
/// Layer l (1-based, 1...L) maps n_{l-1} inputs to n_l outputs with a weight
/// matrix W_l [n_l x n_{l-1}] (row-major, one row per output unit) and a bias
/// b_l [n_l]. ReLU follows every layer but the last.
///
/// ```swift
/// let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
/// shape.layerCount          // 4
/// shape.parameterCount(1)   // 64*128 + 128 = 8320
/// ```
public struct NetworkShape: Equatable, Sendable {
    public let widths: [Int]

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
        var total = 0
        for l in 1..<widths.count {
            // widths <= 65535: the product fits Int64; checked arithmetic keeps 32-bit Int safe
            let (w, o1) = widths[l - 1].multipliedReportingOverflow(by: widths[l])
            let (p, o2) = w.addingReportingOverflow(widths[l])
            if o1 || o2 || p > NetworkShape.maxWords {
                throw .sizeTooLarge(what: "layer \(l) (\(widths[l - 1]) x \(widths[l]) weights + \(widths[l]) biases, more than \(NetworkShape.maxWords) words)")
            }
            total += p
            if total > NetworkShape.maxWords {
                throw .sizeTooLarge(what: "the model (more than \(NetworkShape.maxWords) parameter words)")
            }
        }
        self.widths = widths
    }

    /// L, the number of dense layers.
    public var layerCount: Int { widths.count - 1 }
    /// n_0.
    public var inputWidth: Int { widths[0] }
    /// n_L.
    public var classCount: Int { widths[widths.count - 1] }

    /// P_l = n_{l-1} * n_l + n_l, for l in 1...L.
    public func parameterCount(_ l: Int) -> Int { widths[l - 1] * widths[l] + widths[l] }

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

    /// The text form "64-128-10".
    public var description: String {
        var s = ""
        for (i, w) in widths.enumerated() { s += (i == 0 ? "" : "-") + "\(w)" }
        return s
    }
}
