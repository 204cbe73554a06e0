import CFixed

/// Running a layer (invoke): each call is one kernel family over views the
/// trainer or predictor carved from its arena. Shapes were checked when the
/// layer was prepared (`Layer.layers(of:)`), so a kernel error traps.
extension Layer {
    /// W_l inside the layer's parameter view (weights then biases).
    func weights(_ p: Tensor) -> Tensor { p.slice(0, weightCount) }
    /// b_l inside the layer's parameter view.
    func bias(_ p: Tensor) -> Tensor { p.slice(weightCount, biasCount) }

    /// s_l from s_{l-1} = `x`: the trainable operation writes z_l into `z` (the
    /// same view as `out` when the layer has no pool), the pool reads `z` and
    /// writes `out` (max pooling's argmax into `idx` when given), then ReLU in place.
    /// `scratch` holds team.count parts, one per worker (the kernels split the output over `team`).
    func forward(out: Tensor, z: Tensor, x: Tensor, params p: Tensor, scratch: Tensor,
                 idx: UnsafeMutablePointer<Int32>?, rows: Int, team: WorkerTeam, sat: inout UInt64) {
        let target = hasPool ? z : out
        switch kind {
        case .dense:
            Kernels.denseForward(target, x, weights(p), bias(p), scratch: scratch, rows: rows,
                                 nIn: input.count, nOut: pre.count, team: team, sat: &sat)
        case .conv:
            var cp = convParams
            Kernels.check(q16_par_conv_forward(team.team, target.base, scratch.count > 0 ? scratch.base : nil,
                                               team.strideBytes(words: scratch.count), x.base, p.base,
                                               p.base + weightCount, Int32(rows), &cp, &sat), "conv_forward")
        }
        let (c, h, w) = (Int32(pre.channels), Int32(pre.height), Int32(pre.width))
        switch pool {
        case .none: break
        case .max(let ph, let pw):
            Kernels.check(q16_maxpool_forward(out.base, idx, z.base, Int32(rows), c, h, w, Int32(ph), Int32(pw)),
                          "maxpool_forward")
        case .avg(let ph, let pw):
            Kernels.check(q16_avgpool_forward(out.base, z.base, Int32(rows), c, h, w, Int32(ph), Int32(pw)),
                          "avgpool_forward")
        }
        if relu { Kernels.relu(out, count: rows * outputWords) }
    }

    /// dL/ds_{l-1} into `dx` from dL/dz_l = `dy` (the transposed operation;
    /// the layer below applies its own ReLU and pool backward).
    func backwardData(dx: Tensor, dy: Tensor, params p: Tensor, scratch: Tensor, rows: Int, team: WorkerTeam,
                      sat: inout UInt64) {
        switch kind {
        case .dense:
            Kernels.denseBackwardInput(dx, dy, weights(p), rows: rows, nIn: input.count, nOut: pre.count, team: team,
                                       sat: &sat)
        case .conv:
            var cp = convParams
            Kernels.check(q16_par_conv_backward_data(team.team, dx.base, scratch.count > 0 ? scratch.base : nil,
                                                     team.strideBytes(words: scratch.count), dy.base, p.base,
                                                     Int32(rows), &cp, &sat), "conv_backward_data")
        }
    }

    /// From dL/ds_l in `g` to dL/dz_l: ReLU's mask from s_l = `act` in place,
    /// then the pool's backward into `dz` (max: to each window's stored argmax).
    /// Returns the view holding dL/dz_l: `g` without a pool, else `dz`.
    func outputBackward(_ g: Tensor, act: Tensor, idx: UnsafeMutablePointer<Int32>?, dz: Tensor, rows: Int) -> Tensor {
        if relu { Kernels.reluBackward(g, act, count: rows * outputWords) }
        let (c, h, w) = (Int32(pre.channels), Int32(pre.height), Int32(pre.width))
        switch pool {
        case .none: return g
        case .max(let ph, let pw):
            Kernels.check(q16_maxpool_backward(dz.base, g.base, idx, Int32(rows), c, h, w, Int32(ph), Int32(pw)),
                          "maxpool_backward")
        case .avg(let ph, let pw):
            Kernels.check(q16_avgpool_backward(dz.base, g.base, Int32(rows), c, h, w, Int32(ph), Int32(pw)),
                          "avgpool_backward")
        }
        return dz
    }

    /// The fused SGD step: W -= SR(lr sum_b grad), b likewise, from dL/dz_l = `dy`
    /// and the input `x`; `scratch` holds `updateScratchBytes(fused: true)`.
    func fusedSGD(_ p: Tensor, scratch: UnsafeMutablePointer<Int64>, dy: Tensor, x: Tensor, lr: UInt32, rows: Int,
                  seed: UInt64, counter: UInt64, team: WorkerTeam, sat: inout UInt64) {
        switch kind {
        case .dense:
            Kernels.fusedUpdate(weights(p), bias(p), scratch: scratch, dy: dy, x: x, lr: lr, rows: rows,
                                nIn: input.count, nOut: pre.count, seed: seed, counter: counter, team: team, sat: &sat)
        case .conv:
            var cp = convParams
            Kernels.check(q16_conv_backward_weights_sr(p.base, p.base + weightCount, scratch, dy.base, x.base, lr,
                                                       Int32(rows), &cp, seed, counter, &sat), "conv_backward_weights_sr")
        }
    }

    /// The batch-summed gradient of weights and biases into `g` (P_l words), for
    /// optimizers with a gradient buffer; `scratch` holds `updateScratchBytes(fused: false)`.
    func gradient(_ g: Tensor, scratch: UnsafeMutablePointer<Int64>, dy: Tensor, x: Tensor, rows: Int, sat: inout UInt64) {
        switch kind {
        case .dense:
            Kernels.weightGradient(weights(g), dy, x, rows: rows, nIn: input.count, nOut: pre.count, sat: &sat)
            Kernels.biasGradient(bias(g), dy, rows: rows, nOut: pre.count, sat: &sat)
        case .conv:
            var cp = convParams
            Kernels.check(q16_conv_weight_grad(g.base, g.base + weightCount, scratch, dy.base, x.base, Int32(rows),
                                               &cp, &sat), "conv_weight_grad")
        }
    }

    /// The fused Riemannian step (see `OptimizerKind.riemannian`); `phi` is the
    /// EMA state (P_l words) or nil for |w|.
    func riemannian(_ p: Tensor, phi: Tensor?, scratch: UnsafeMutablePointer<Int64>, dy: Tensor, x: Tensor,
                    lr: UInt32, gscale: UInt32, alpha: Int32, rho: UInt32, weightMagnitude: Bool, rows: Int,
                    seed: UInt64, counter: UInt64, team: WorkerTeam, sat: inout UInt64) {
        switch kind {
        case .dense:
            Kernels.riemannianUpdate(weights(p), bias(p), phi: phi, scratch: scratch, dy: dy, x: x, lr: lr,
                                     gscale: gscale, alpha: alpha, rho: rho, weightMagnitude: weightMagnitude,
                                     rows: rows, nIn: input.count, nOut: pre.count, seed: seed, counter: counter,
                                     team: team, sat: &sat)
        case .conv:
            var cp = convParams
            Kernels.check(q16_conv_backward_weights_riemannian_sr(
                p.base, p.base + weightCount, phi?.base, scratch, dy.base, x.base, lr, gscale, alpha, rho,
                weightMagnitude ? Q16_PHI_WEIGHT_ABS : Q16_PHI_GRAD_SQUARED, Int32(rows), &cp, seed, counter, &sat),
                "conv_backward_weights_riemannian_sr")
        }
    }
}
