/// The memory categories of `shared/design/memory-model.md`.
public enum MemoryCategory: Int, CaseIterable, Equatable {
    case weightsTrainable = 0
    case weightsFrozen
    case gradients
    case optimizer
    case input
    case activationsStored
    case activationsWorking
    case scratch

    /// The name used in plans, reports and tests ("weights.trainable", ...).
    public var name: String {
        switch self {
        case .weightsTrainable: return "weights.trainable"
        case .weightsFrozen: return "weights.frozen"
        case .gradients: return "gradients"
        case .optimizer: return "optimizer"
        case .input: return "input"
        case .activationsStored: return "activations.stored"
        case .activationsWorking: return "activations.working"
        case .scratch: return "scratch"
        }
    }

    /// Whether the category lives in writable RAM (everything but frozen weights).
    public var isWritable: Bool { self != .weightsFrozen }
}

/// A byte count per memory category, stored inline (no heap), so it can be
/// updated inside a training step.
public struct ByteCounts: Equatable, Sendable {
    public var weightsTrainable = 0
    public var weightsFrozen = 0
    public var gradients = 0
    public var optimizer = 0
    public var input = 0
    public var activationsStored = 0
    public var activationsWorking = 0
    public var scratch = 0

    public init() {}

    public subscript(_ c: MemoryCategory) -> Int {
        get {
            switch c {
            case .weightsTrainable: return weightsTrainable
            case .weightsFrozen: return weightsFrozen
            case .gradients: return gradients
            case .optimizer: return optimizer
            case .input: return input
            case .activationsStored: return activationsStored
            case .activationsWorking: return activationsWorking
            case .scratch: return scratch
            }
        }
        set {
            switch c {
            case .weightsTrainable: weightsTrainable = newValue
            case .weightsFrozen: weightsFrozen = newValue
            case .gradients: gradients = newValue
            case .optimizer: optimizer = newValue
            case .input: input = newValue
            case .activationsStored: activationsStored = newValue
            case .activationsWorking: activationsWorking = newValue
            case .scratch: scratch = newValue
            }
        }
    }

    /// Sum over the writable categories.
    public var writable: Int {
        // Spelled out (no allCases array): called inside training steps.
        return weightsTrainable + gradients + optimizer + input + activationsStored
            + activationsWorking + scratch
    }

    /// Per-category sum of two counts (two arenas resident together).
    public func adding(_ o: ByteCounts) -> ByteCounts {
        var r = ByteCounts()
        for c in MemoryCategory.allCases { r[c] = self[c] + o[c] }
        return r
    }

    /// Per-category maximum of two counts.
    public func maximum(_ o: ByteCounts) -> ByteCounts {
        var r = ByteCounts()
        for c in MemoryCategory.allCases { r[c] = max(self[c], o[c]) }
        return r
    }
}
