import CFixed

/// The engine's only door to the C kernels: thin wrappers that pass views and
/// add each call's saturation count to `sat`. Shapes are validated once by the
/// plan, so a kernel error here is an engine bug and traps.
enum Kernels {
    @inline(__always)
    static func check(_ s: q16_status, _ name: StaticString) {
        precondition(s == Q16_OK, "\(name): kernel status error (engine bug)")
    }

    /// out[rows x nOut] = x[rows x nIn] * W[nOut x nIn]^T + b; `scratch` holds the
    /// `denseForwardScratchWords(rows: batch, ...)` words the plan gave this layer
    /// (taken from the arena's scratch), or none (the unpacked path: the same results).
    /// Split by rows over `team` (one scratch part per worker: `scratch` holds
    /// team.count x the per-worker words).
    static func denseForward(_ out: Tensor, _ x: Tensor, _ w: Tensor, _ b: Tensor, scratch: Tensor,
                             rows: Int, nIn: Int, nOut: Int, team: WorkerTeam, sat: inout UInt64) {
        check(q16_par_gemm_nt(team.team, out.base, scratch.count > 0 ? scratch.base : nil,
                              team.strideBytes(words: scratch.count), x.base, w.base, b.base,
                              Int32(rows), Int32(nOut), Int32(nIn), &sat), "gemm_nt")
    }

    /// Q16.16 words of scratch a dense forward of at most `rows` rows uses
    /// (`q16_gemm_nt_buffer_size`, rounded up to whole words).
    static func denseForwardScratchWords(rows: Int, nIn: Int, nOut: Int) -> Int {
        (q16_gemm_nt_buffer_size(Int32(rows), Int32(nOut), Int32(nIn)) + 3) / 4
    }

    /// dx[rows x nIn] = dy[rows x nOut] * W[nOut x nIn]
    static func denseBackwardInput(_ dx: Tensor, _ dy: Tensor, _ w: Tensor,
                                   rows: Int, nIn: Int, nOut: Int, team: WorkerTeam, sat: inout UInt64) {
        check(q16_par_gemm_nn(team.team, dx.base, dy.base, w.base, Int32(rows), Int32(nIn), Int32(nOut), &sat),
              "gemm_nn")
    }

    /// g[nOut x nIn] = dy^T * x  (the weight gradient, summed over the batch)
    static func weightGradient(_ g: Tensor, _ dy: Tensor, _ x: Tensor,
                               rows: Int, nIn: Int, nOut: Int, sat: inout UInt64) {
        check(q16_gemm_tn(g.base, dy.base, x.base, Int32(nOut), Int32(nIn), Int32(rows), &sat), "gemm_tn")
    }

    /// gb[nOut] = column sums of dy[rows x nOut]
    static func biasGradient(_ gb: Tensor, _ dy: Tensor, rows: Int, nOut: Int, sat: inout UInt64) {
        check(q16_colsum(gb.base, dy.base, Int32(rows), Int32(nOut), &sat), "colsum")
    }

    static func relu(_ t: Tensor, count: Int) {
        check(q16_relu(t.base, t.base, Int32(count)), "relu")
    }

    static func reluBackward(_ delta: Tensor, _ act: Tensor, count: Int) {
        check(q16_relu_backward(delta.base, act.base, Int32(count)), "relu_backward")
    }

    /// In place: z[rows x classes] becomes softmax(z) - onehot; per-row loss to `loss`.
    static func softmaxCrossEntropy(_ z: Tensor, loss: Tensor, labels: UnsafePointer<Int32>,
                                    rows: Int, classes: Int, sat: inout UInt64) {
        check(q16_softmax_xent(z.base, loss.base, z.base, labels, Int32(rows), Int32(classes), &sat), "softmax_xent")
    }

    /// Split by rows of W over `team`; `scratch` holds team.count rows of 8 nIn bytes.
    static func fusedUpdate(_ w: Tensor, _ b: Tensor, scratch: UnsafeMutablePointer<Int64>,
                            dy: Tensor, x: Tensor, lr: UInt32, rows: Int, nIn: Int, nOut: Int,
                            seed: UInt64, counter: UInt64, team: WorkerTeam, sat: inout UInt64) {
        check(q16_par_update_outer_sr(team.team, w.base, b.base, scratch, 8 * nIn, dy.base, x.base, lr, Int32(rows),
                                      Int32(nOut), Int32(nIn), seed, counter, &sat), "update_outer_sr")
    }

    static func momentumUpdate(_ w: Tensor, _ v: Tensor, _ g: Tensor, mu: UInt32, lr: UInt32,
                               seed: UInt64, counter: UInt64, sat: inout UInt64) {
        check(q16_update_momentum_sr(w.base, v.base, g.base, mu, lr, Int32(w.count), seed, counter, &sat),
              "update_momentum_sr")
    }

    static func riemannianUpdate(_ w: Tensor, _ b: Tensor, phi: Tensor?, scratch: UnsafeMutablePointer<Int64>,
                                 dy: Tensor, x: Tensor, lr: UInt32, gscale: UInt32, alpha: Int32, rho: UInt32,
                                 weightMagnitude: Bool, rows: Int, nIn: Int, nOut: Int,
                                 seed: UInt64, counter: UInt64, team: WorkerTeam, sat: inout UInt64) {
        check(q16_par_update_outer_riemannian_sr(team.team, w.base, b.base, phi?.base, scratch, 8 * nIn, dy.base,
                                                 x.base, lr, gscale, alpha, rho,
                                                 weightMagnitude ? Q16_PHI_WEIGHT_ABS : Q16_PHI_GRAD_SQUARED,
                                                 Int32(rows), Int32(nOut), Int32(nIn), seed, counter, &sat),
              "update_outer_riemannian_sr")
    }

    /// w -= SR(lr * g) over a gradient buffer.
    static func sgdUpdate(_ w: Tensor, _ g: Tensor, lr: UInt32, seed: UInt64, counter: UInt64, sat: inout UInt64) {
        check(q16_update_sr(w.base, g.base, lr, Int32(w.count), seed, counter, &sat), "update_sr")
    }

    /// w -= SR(rate * (w - w0)).
    static func pull(_ w: Tensor, toward w0: Tensor, rate: UInt32, seed: UInt64, counter: UInt64, sat: inout UInt64) {
        check(q16_update_pull_sr(w.base, w0.base, rate, Int32(w.count), seed, counter, &sat), "update_pull_sr")
    }

    /// Row-wise softmax in place.
    static func softmax(_ z: Tensor, rows: Int, cols: Int, sat: inout UInt64) {
        check(q16_softmax(z.base, z.base, Int32(rows), Int32(cols), &sat), "softmax")
    }

    static func randomBits(_ seed: UInt64, _ counter: UInt64) -> UInt32 { q16_rng_u32(seed, counter) }

    static func mul(_ a: Int32, _ b: Int32) -> Int32 { q16_mul(a, b, nil) }
    /// sqrt(a) for a >= 0 (the callers' arguments are non-negative by construction: checked).
    static func sqrt(_ a: Int32) -> Int32 { var r: Int32 = 0; check(q16_sqrt(&r, a), "sqrt"); return r }
    /// a / b for b != 0 (checked).
    static func div(_ a: Int32, _ b: Int32) -> Int32 { var r: Int32 = 0; check(q16_div(&r, a, b, nil), "div"); return r }
    /// ln(a) for a > 0 (checked).
    static func log(_ a: Int32) -> Int32 { var r: Int32 = 0; check(q16_log(&r, a), "log"); return r }
    static func exp(_ a: Int32) -> Int32 { q16_exp(a, nil) }

    /// ln(n) in Q16.16 for any integer n >= 1 (n itself need not be a Q16.16 value:
    /// ln(n) = ln(n / 2^16) + 16 ln 2 for n >= 2^15).
    static func logOfInteger(_ n: Int) -> Int32 {
        precondition(n >= 1 && n <= Int(Int32.max), "logOfInteger: n outside 1...Int32.max")
        if n < 32768 { return log(Int32(n) << 16) }
        return log(Int32(n)) + 726_817  // 16 ln 2 = 11.0903549 = 726817.4 LSB
    }
}
