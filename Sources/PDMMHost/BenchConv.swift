// BenchConv.swift -- single-thread throughput of the CFixed Q16.16 convolution
// kernels (`pdmm bench conv`), next to the 256^3 q16 GEMM and a float32 conv
// step written in Swift, all measured in the same process.
//
// What is measured:
//  - q16_conv_forward (bias on), q16_conv_backward_data and
//    q16_conv_backward_weights_sr (the fused SGD step training uses, bias on),
//    each with caller scratch of its ..._buffer_size bytes, allocated once
//    outside the timed loop; every call's status is checked.
//  - step: forward + backward data + backward weights in one timed body.
//  - GEMM: q16_gemm_nn at 256 x 256 x 256 (the `bench kernels` figure).
//  - f32 step: im2col + a cache-blocked i-p-j float GEMM (inner loop a
//    contiguous axpy the optimizer vectorises; no FMA, no register tiling,
//    not BLAS) for each of the three products, col2im for the data gradient,
//    then W -= lr * dW. Built for the package's default target CPU.
// MACs of one kernel = batch * F * Ho * Wo * C * kh * kw; a step is 3x that.

import CFixed
import Foundation

/// One benchmarked convolution shape.
private struct ConvBenchShape {
    let name: String
    let C, H, W, F, kh, kw, padTop, padLeft: Int
    let batch: Int
    /// "same" padding, stride 1 (Ho = H, Wo = W).
    var Ho: Int { H }
    var Wo: Int { W }
    var K: Int { C * kh * kw }
    var P: Int { Ho * Wo }
    var macs: Double { Double(batch) * Double(F) * Double(P) * Double(K) }
    var params: q16_conv_params {
        q16_conv_params(C: Int32(C), H: Int32(H), W: Int32(W), F: Int32(F), kh: Int32(kh), kw: Int32(kw),
                        stride_h: 1, stride_w: 1, pad_top: Int32(padTop), pad_left: Int32(padLeft),
                        Ho: Int32(Ho), Wo: Int32(Wo))
    }
}

private let convBenchShapes: [ConvBenchShape] = [
    ConvBenchShape(name: "16->16 3x3 28x28", C: 16, H: 28, W: 28, F: 16, kh: 3, kw: 3, padTop: 1, padLeft: 1, batch: 32),
    ConvBenchShape(name: "32->32 3x3 14x14", C: 32, H: 14, W: 14, F: 32, kh: 3, kw: 3, padTop: 1, padLeft: 1, batch: 32),
    ConvBenchShape(name: "1-D 6->16 k=1x5 W=100", C: 6, H: 1, W: 100, F: 16, kh: 1, kw: 5, padTop: 0, padLeft: 2,
                   batch: 32),
]

/// `pdmm bench conv`: a Markdown table of conv GMAC/s per kernel and per step,
/// with the ratios to the 256^3 q16 GEMM and to a float32 conv step.
func runConvBench(seconds: Double) -> String {
    var lines: [String] = []
    var sink: Int64 = 0
    var failed = 0 // kernel calls that returned a status other than Q16_OK (never expected)

    // The reference: q16_gemm_nn 256^3, as in `bench kernels`.
    let gemm: Double = {
        let n = 256
        let (a, b) = benchSquareOperands(n)
        var c = [Int32](repeating: 0, count: n * n)
        let r = benchQ16GemmNN(n, a: a, b: b, c: &c, seconds: seconds, failed: &failed)
        sink &+= Int64(c[n * n / 2])
        return r
    }()

    lines.append("Single thread, batch 32, stride 1, \"same\" zero padding; GMAC/s (higher is better), best group of "
        + "calls over \(seconds) s per cell. MACs per kernel = batch*F*Ho*Wo*C*kh*kw; step = forward + backward data "
        + "+ backward weights (fused SR SGD step), 3x the MACs.")
    lines.append("")
    lines.append("| shape | fwd | bwd data | bwd weights (SR) | step | step / GEMM 256^3 | f32 step | step / f32 |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    var worst = Double.infinity
    for s in convBenchShapes {
        var p = s.params
        var rng = BenchLCG(state: 0xC0_4E00 &+ UInt64(s.K * 131 + s.P))
        let inWords = s.batch * s.C * s.H * s.W, outWords = s.batch * s.F * s.Ho * s.Wo
        // Activations in [-1, 1], weights ~ 1/sqrt(K), output gradients ~ 1/64: typical magnitudes.
        let x: [Int32] = (0 ..< inWords).map { _ in rng.q16Unit() }
        let wScale = Int32(max(1, Int(65536.0 / Double(s.K).squareRoot())))
        var w: [Int32] = (0 ..< s.F * s.K).map { _ in Int32(Int64(rng.q16Unit()) * Int64(wScale) / 65536) }
        var bias: [Int32] = (0 ..< s.F).map { _ in rng.q16Unit() / 16 }
        let dy: [Int32] = (0 ..< outWords).map { _ in rng.q16Unit() / 64 }
        var y = [Int32](repeating: 0, count: outWords)
        var dx = [Int32](repeating: 0, count: inWords)
        // Caller scratch, allocated once, of the sizes the kernels ask for.
        let fb = q16_conv_forward_buffer_size(&p), db = q16_conv_backward_data_buffer_size(&p),
            wb = q16_conv_weight_buffer_size(&p)
        var fScratch = [Int32](repeating: 0, count: max(fb / 4, 1))
        var dScratch = [Int32](repeating: 0, count: max(db / 4, 1))
        var wScratch = [Int64](repeating: 0, count: max((wb + 7) / 8, 1))
        var sat: UInt64 = 0
        var counter: UInt64 = 0
        let lr = UInt32(0.01 * 4_294_967_296.0)
        let B = Int32(s.batch)

        func forward() {
            if q16_conv_forward(&y, &fScratch, x, w, bias, B, &p, &sat) != Q16_OK { failed += 1 }
        }
        func backwardData() {
            if q16_conv_backward_data(&dx, &dScratch, dy, w, B, &p, &sat) != Q16_OK { failed += 1 }
        }
        func backwardWeights() {
            if q16_conv_backward_weights_sr(&w, &bias, &wScratch, dy, x, lr, B, &p, 42, counter, &sat) != Q16_OK {
                failed += 1
            }
            counter &+= UInt64(s.F * s.K + s.F)
        }
        let fwd = benchGMACs(macs: s.macs, seconds: seconds) { forward() }
        let bwd = benchGMACs(macs: s.macs, seconds: seconds) { backwardData() }
        let bww = benchGMACs(macs: s.macs, seconds: seconds) { backwardWeights() }
        let step = benchGMACs(macs: 3 * s.macs, seconds: seconds) {
            forward()
            backwardData()
            backwardWeights()
        }
        sink &+= Int64(y[outWords / 2]) &+ Int64(dx[inWords / 2]) &+ Int64(w[0])

        // float32 step on the same values.
        var fc = FloatConv(shape: s, x: x.map { Float($0) / 65536 }, w: w.map { Float($0) / 65536 },
                           bias: bias.map { Float($0) / 65536 }, dy: dy.map { Float($0) / 65536 })
        let f32 = benchGMACs(macs: 3 * s.macs, seconds: seconds) { fc.step(lr: 0.01) }
        sink &+= Int64(fc.checksum)

        worst = min(worst, step / gemm)
        let f = benchCell
        lines.append("| \(s.name) | \(f(fwd)) | \(f(bwd)) | \(f(bww)) | \(f(step)) | \(String(format: "%.0f", 100 * step / gemm)) % "
            + "| \(f(f32)) | \(f(step / f32))x |")
    }
    lines.append("")
    lines.append("q16 GEMM 256^3 (q16_gemm_nn, same process): \(benchCell(gemm)) GMAC/s.")
    let met = worst >= 0.70
    lines.append("Goal: a conv step at >= 70 % of the 256^3 GEMM GMAC/s: \(met ? "met" : "NOT met") "
        + "(lowest step / GEMM = \(String(format: "%.0f", 100 * worst)) %).")
    if failed > 0 { lines.append("(\(failed) kernel calls returned an error status)") }
    lines.append("")
    lines.append("q16: exact int64 sums, one rounding + saturation per output (bit-identical to the reference "
        + "kernels); weights updated in place by the fused stochastic-rounding SGD step. f32: im2col + blocked "
        + "i-p-j Swift GEMM loops over Float (auto-vectorised for the build's target CPU, no FMA, no register "
        + "tiling, not BLAS), col2im, W -= lr*dW. (checksum \(sink & 0xFFFF))")
    return lines.joined(separator: "\n")
}

/// The float32 conv step: forward (im2col + GEMM), data gradient (GEMM + col2im),
/// weight gradient (GEMM over the transposed patches) and the SGD update.
private struct FloatConv {
    let s: ConvBenchShape
    let x: [Float], dy: [Float]
    var w: [Float], bias: [Float]
    var y: [Float], dx: [Float], dw: [Float], db: [Float]
    var col: [Float]  // [K x P]
    var colT: [Float] // [P x K]
    var wT: [Float]   // [K x F]

    init(shape: ConvBenchShape, x: [Float], w: [Float], bias: [Float], dy: [Float]) {
        s = shape
        self.x = x
        self.w = w
        self.bias = bias
        self.dy = dy
        y = [Float](repeating: 0, count: dy.count)
        dx = [Float](repeating: 0, count: x.count)
        dw = [Float](repeating: 0, count: w.count)
        db = [Float](repeating: 0, count: bias.count)
        col = [Float](repeating: 0, count: shape.K * shape.P)
        colT = [Float](repeating: 0, count: shape.K * shape.P)
        wT = [Float](repeating: 0, count: w.count)
    }

    var checksum: Float { y[y.count / 2] * 1000 + dx[dx.count / 2] * 1000 + w[0] * 1000 }

    mutating func step(lr: Float) {
        let s = self.s
        let K = s.K, P = s.P, F = s.F
        let inW = s.C * s.H * s.W, outW = F * P
        for f in 0 ..< F { for k in 0 ..< K { wT[k * F + f] = w[f * K + k] } }
        for i in dw.indices { dw[i] = 0 }
        for i in db.indices { db[i] = 0 }
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { dyp in
                w.withUnsafeBufferPointer { wp in
                    wT.withUnsafeBufferPointer { wtp in
                        bias.withUnsafeBufferPointer { bp in
                            y.withUnsafeMutableBufferPointer { yp in
                                dx.withUnsafeMutableBufferPointer { dxp in
                                    dw.withUnsafeMutableBufferPointer { dwp in
                                        db.withUnsafeMutableBufferPointer { dbp in
                                            col.withUnsafeMutableBufferPointer { cp in
                                                colT.withUnsafeMutableBufferPointer { ctp in
                                                    for b in 0 ..< s.batch {
                                                        let xb = xp.baseAddress! + b * inW
                                                        let yb = yp.baseAddress! + b * outW
                                                        let dyb = dyp.baseAddress! + b * outW
                                                        let dxb = dxp.baseAddress! + b * inW
                                                        // forward: Y_b = W[F x K] * col[K x P] + bias
                                                        floatIm2col(cp.baseAddress!, xb, s)
                                                        sgemmBlocked(yb, wp.baseAddress!, cp.baseAddress!, m: F, n: P, k: K)
                                                        for f in 0 ..< F {
                                                            let bv = bp[f]
                                                            for q in 0 ..< P { yb[f * P + q] += bv }
                                                        }
                                                        // weight gradient: dW[F x K] += dY_b[F x P] * colT[P x K]
                                                        for k in 0 ..< K { for q in 0 ..< P { ctp[q * K + k] = cp[k * P + q] } }
                                                        sgemmBlocked(dwp.baseAddress!, dyb, ctp.baseAddress!, m: F, n: K, k: P,
                                                                     accumulate: true)
                                                        for f in 0 ..< F {
                                                            var t: Float = 0
                                                            for q in 0 ..< P { t += dyb[f * P + q] }
                                                            dbp[f] += t
                                                        }
                                                        // data gradient: dcol[K x P] = W^T[K x F] * dY_b[F x P], col2im
                                                        sgemmBlocked(cp.baseAddress!, wtp.baseAddress!, dyb, m: K, n: P, k: F)
                                                        floatCol2im(dxb, cp.baseAddress!, s)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for i in w.indices { w[i] -= lr * dw[i] }
        for i in bias.indices { bias[i] -= lr * db[i] }
    }
}

/// The rows of the stride-1 patch matrix of `s`, in order: for tap (c, u, v) and output row i,
/// `body(row, src, jlo, jhi)` with `row` the offset of col[(c*kh + u)*kw + v][i*Wo] and `src` the offset
/// of X[c][i + u - pt][v - pl] (column j of the row reads src + j), or nil when no column of the row
/// lies inside the input; columns j in jlo ..< jhi are inside.
@inline(__always)
private func forEachPatchRow(_ s: ConvBenchShape, _ body: (_ row: Int, _ src: Int?, _ jlo: Int, _ jhi: Int) -> Void) {
    var row = 0
    for c in 0 ..< s.C {
        for u in 0 ..< s.kh {
            for v in 0 ..< s.kw {
                let off = v - s.padLeft
                let jlo = max(0, -off), jhi = min(s.Wo, s.W - off)
                for i in 0 ..< s.Ho {
                    let yy = i + u - s.padTop
                    let inside = yy >= 0 && yy < s.H && jlo < jhi
                    body(row + i * s.Wo, inside ? (c * s.H + yy) * s.W + off : nil, jlo, jhi)
                }
                row += s.P
            }
        }
    }
}

/// col[(c*kh + u)*kw + v][i*Wo + j] = X[c][i + u - pt][j + v - pl] (0 outside); stride 1.
private func floatIm2col(_ col: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ s: ConvBenchShape) {
    forEachPatchRow(s) { row, src, jlo, jhi in
        let dst = col + row
        guard let src else {
            dst.update(repeating: 0, count: s.Wo)
            return
        }
        let xs = x + src
        if jlo > 0 { dst.update(repeating: 0, count: jlo) }
        for j in jlo ..< jhi { dst[j] = xs[j] }
        if jhi < s.Wo { (dst + jhi).update(repeating: 0, count: s.Wo - jhi) }
    }
}

/// dX = col2im(dcol): dX[c][i + u - pt][j + v - pl] += dcol[(c*kh + u)*kw + v][i*Wo + j]; stride 1.
private func floatCol2im(_ dx: UnsafeMutablePointer<Float>, _ dcol: UnsafePointer<Float>, _ s: ConvBenchShape) {
    dx.update(repeating: 0, count: s.C * s.H * s.W)
    forEachPatchRow(s) { row, src, jlo, jhi in
        guard let src else { return }
        let from = dcol + row, to = dx + src
        for j in jlo ..< jhi { to[j] += from[j] }
    }
}
