/// Where a training step spends its time, per phase, in the units of the
/// trainer's `clock` (the host benchmark gives it nanoseconds). The engine has
/// no clock of its own (Embedded Swift: none is portable), so the caller
/// supplies one; without it (`clock == nil`, the default) nothing is measured
/// and each phase boundary costs one branch.
///
/// ```swift
/// t.clock = { DispatchTime.now().uptimeNanoseconds }
/// _ = try t.trainEpoch(data, epoch: 0)
/// t.phaseTimes.forward   // ns in the forward layer calls (GEMM/conv + bias, pool, ReLU)
/// ```
public struct PhaseTimes: Equatable {
    /// Forward layer calls: GEMM/conv with the bias, pooling, ReLU (recomputes included).
    public var forward: UInt64 = 0
    /// Backward data passes: the transposed GEMM/conv (dL/ds_{l-1}), then the ReLU mask and pool backward.
    public var backwardData: UInt64 = 0
    /// Weight updates: gradient sums and the stochastic-rounding steps (random draws included).
    public var update: UInt64 = 0
    /// Softmax cross-entropy (the exponentials), its gradient and the correct-count.
    public var loss: UInt64 = 0
    /// Whole steps (the rest, `total - forward - backwardData - update - loss`, is "other":
    /// copying the batch in, arena bookkeeping, the head's pooling).
    public var total: UInt64 = 0
    public init() {}

    /// total minus the named phases (0 if the clock went backwards).
    public var other: UInt64 {
        let named = forward &+ backwardData &+ update &+ loss
        return total > named ? total - named : 0
    }
}

extension Trainer {
    /// The clock's reading, or 0 without a clock.
    @inline(__always) func tick() -> UInt64 { clock?() ?? 0 }

    /// Clears the per-phase times (e.g. after warm-up steps).
    public func resetPhaseTimes() { phaseTimes = PhaseTimes() }
}
