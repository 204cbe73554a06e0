/// Every way a training run can be refused or fail, as one typed error.
///
/// The engine throws `EngineError` only (typed throws, Embedded-Swift friendly);
/// only the command-line tool prints and exits.
///
/// ```swift
/// do { _ = try NetworkShape(widths: [64, 0, 10]) }
/// catch { print(error.message) } // "width 1 is 0: every layer needs at least one unit"
/// ```
public enum EngineError: Error, Equatable {
    /// The network needs at least an input and an output width.
    case tooFewWidths(count: Int)
    /// A width is zero or negative (index into the widths list).
    case zeroWidth(index: Int, value: Int)
    /// A size that does not fit the kernels' 32-bit dimensions.
    case sizeTooLarge(what: String)
    /// Batch size must be at least 1.
    case batchZero(value: Int)
    /// k must satisfy 1 <= k <= L.
    case invalidK(k: Int, layers: Int)
    /// The plan does not fit the budget: every category, the total and the shortfall.
    case budgetExceeded(planned: ByteCounts, budget: Int)
    /// A label outside [0, classes).
    case labelOutOfRange(sample: Int, label: Int, classes: Int)
    /// A data set whose feature count does not match the network's input width.
    case featureMismatch(expected: Int, got: Int)
    /// A data set with no samples.
    case emptyData
    /// An optimizer or method parameter outside its valid range.
    case invalidParameter(name: String, reason: String)
    /// A network the engine cannot train as written (the message names the layer).
    case invalidNetwork(String)
    /// A kernel returned an error status (an engine bug if it ever happens).
    case kernel(status: Int32, kernel: String)

    /// A one-paragraph English message for people.
    public var message: String {
        switch self {
        case .tooFewWidths(let count):
            return "a network needs at least 2 widths (input and classes), got \(count)"
        case .zeroWidth(let index, let value):
            return "width \(index) is \(value): every layer needs at least one unit"
        case .sizeTooLarge(let what):
            return "\(what) is too large: the engine indexes at most \(NetworkShape.maxWords) words (128 MiB) per model, layer or batch"
        case .batchZero(let value):
            return "batch size must be at least 1, got \(value)"
        case .invalidK(let k, let layers):
            return "k must be between 1 and L = \(layers), got \(k)"
        case .budgetExceeded(let planned, let budget):
            var s = "plan needs \(planned.writable) writable bytes but the budget is \(budget) bytes (short by \(planned.writable - budget) bytes):"
            for c in MemoryCategory.allCases where c.isWritable && planned[c] > 0 {
                s += " \(c.name)=\(planned[c])"
            }
            return s
        case .labelOutOfRange(let sample, let label, let classes):
            return "sample \(sample) has label \(label), outside 0..<\(classes)"
        case .featureMismatch(let expected, let got):
            return "the network's input width is \(expected) but the data has \(got) features"
        case .emptyData:
            return "the data set has no samples"
        case .invalidParameter(let name, let reason):
            return "\(name): \(reason)"
        case .invalidNetwork(let m):
            return "network: \(m)"
        case .kernel(let status, let kernel):
            return "kernel \(kernel) failed with status \(status)"
        }
    }
}
