/// How a training run trains the network (the four modes of the memory model).
public enum TrainingMode: Equatable, Sendable {
    /// Full backprop: stores every layer's input.
    case bp
    /// Backprop with gradient checkpointing: segments of s = ceil(sqrt(L)) layers,
    /// only segment boundaries stored, each segment recomputed during backward.
    case bpCheckpoint
    /// Only the top k layers train; the L-k below are frozen and store nothing.
    case local(k: Int)
    /// Greedy local learning of all layers, k at a time, each non-final block
    /// with an auxiliary linear head to the classes.
    case blockwise(k: Int)

    /// "bp", "bp-checkpoint", "local(2)", "blockwise(2)".
    public var name: String {
        switch self {
        case .bp: return "bp"
        case .bpCheckpoint: return "bp-checkpoint"
        case .local(let k): return "local(\(k))"
        case .blockwise(let k): return "blockwise(\(k))"
        }
    }

    /// Checks k against the network depth.
    public func validate(layers: Int) throws(EngineError) {
        switch self {
        case .bp, .bpCheckpoint: return
        case .local(let k), .blockwise(let k):
            if k < 1 || k > layers { throw .invalidK(k: k, layers: layers) }
        }
    }

    /// The training stages the mode runs one after another. Every mode has one
    /// stage except blockwise(k), which has ceil(L/k).
    public func stages(layers L: Int) -> [TrainingStage] {
        switch self {
        case .bp:
            return [TrainingStage(frozenCount: 0, lastTrained: L, hasAuxHead: false, checkpointed: false)]
        case .bpCheckpoint:
            return [TrainingStage(frozenCount: 0, lastTrained: L, hasAuxHead: false, checkpointed: true)]
        case .local(let k):
            return [TrainingStage(frozenCount: L - k, lastTrained: L, hasAuxHead: false, checkpointed: false)]
        case .blockwise(let k):
            var out: [TrainingStage] = []
            var first = 1
            while first <= L {
                let last = min(first + k - 1, L)
                out.append(TrainingStage(frozenCount: first - 1, lastTrained: last,
                                         hasAuxHead: last < L, checkpointed: false))
                first = last + 1
            }
            return out
        }
    }
}

/// One stage of training: layers 1...frozenCount run frozen (read-only
/// weights, ping-pong buffers), layers frozenCount+1...lastTrained train,
/// and if `hasAuxHead` an auxiliary linear head n_lastTrained -> n_L gives the
/// loss (otherwise lastTrained == L and the network's own output does).
public struct TrainingStage: Equatable, Sendable {
    public let frozenCount: Int
    public let lastTrained: Int
    public let hasAuxHead: Bool
    public let checkpointed: Bool

    /// The trained layers, 1-based.
    public var trained: ClosedRange<Int> { (frozenCount + 1)...lastTrained }
}

/// The optimizer of a run. Its state lives in the arena (category `optimizer`).
public enum OptimizerKind: Equatable, Sendable {
    /// Plain SGD, fused into the backward pass: no gradient buffer, no state.
    case sgd
    /// SGD with momentum mu (0 <= mu < 1): one velocity word per trainable
    /// parameter, and a gradient buffer for one layer at a time.
    case momentum(mu: Double)
    /// The second document's diagonal Riemannian metric: w <- w - eta g / E,
    /// E_i = 1 + alpha phi_i, phi an EMA of g^2 with decay `rho` (one state word
    /// per parameter) or |w| (no state). Fused like SGD: no gradient buffer.
    case riemannian(alpha: Double, rho: Double, phi: PhiKind)

    /// The plasticity measure phi of the Riemannian metric.
    public enum PhiKind: Equatable, Sendable {
        case gradSquared
        case weightMagnitude
    }

    public var name: String {
        switch self {
        case .sgd: return "sgd"
        case .momentum: return "momentum"
        case .riemannian(_, _, let phi): return phi == .gradSquared ? "riemannian" : "riemannian(|w|)"
        }
    }

    /// Optimizer-state words per trainable parameter.
    var stateWordsPerParameter: Int {
        switch self {
        case .sgd: return 0
        case .momentum: return 1
        case .riemannian(_, _, let phi): return phi == .gradSquared ? 1 : 0
        }
    }

    /// Whether the update needs the layer's gradient in a buffer.
    var needsGradientBuffer: Bool {
        switch self {
        case .sgd, .riemannian: return false
        case .momentum: return true
        }
    }
}

extension TrainingMode {
    /// Parses a mode name as the tools spell it ("bp", "bp-checkpoint" or
    /// "checkpoint", "local", "blockwise") with its k; nil for anything else.
    public init?(name: String, k: Int) {
        switch name {
        case "bp": self = .bp
        case "bp-checkpoint", "checkpoint": self = .bpCheckpoint
        case "local": self = .local(k: k)
        case "blockwise": self = .blockwise(k: k)
        default: return nil
        }
    }
}

extension OptimizerKind {
    /// Parses an optimizer name as the tools spell it ("sgd", "momentum",
    /// "riemannian" with phi "grad2" or "absw"); nil for an unknown name or phi.
    /// Parameter ranges are checked by `MemoryPlan`.
    public init?(name: String, momentum: Double, alpha: Double, rho: Double, phi: String) {
        switch name {
        case "sgd": self = .sgd
        case "momentum": self = .momentum(mu: momentum)
        case "riemannian":
            switch phi {
            case "grad2": self = .riemannian(alpha: alpha, rho: rho, phi: .gradSquared)
            case "absw": self = .riemannian(alpha: alpha, rho: rho, phi: .weightMagnitude)
            default: return nil
            }
        default: return nil
        }
    }
}
