// ConvRiemannianTests.swift -- q16_conv_backward_weights_riemannian_sr and its reference twin
// q16_ref_conv_backward_weights_riemannian_sr: the dense Riemannian rule (q16_update_outer_riemannian_sr)
// applied per convolution weight and bias.
//
//  - fast (with caller scratch, and with a NULL scratch) == reference, bit for bit (W, bias, phi, status,
//    saturation count), and both == an exact Int128 model written from q16.h, over seeded random shapes:
//    2-D and 1-D (H = kh = 1), strides 1...3, same / valid / random padding, batch 1...4, both phi kinds,
//    every value spread (Q16_MIN / Q16_MAX included), counters that wrap;
//  - extreme inputs that clamp the gradient sums, on the fast kernel's int64 path (sums in (2^62, 2^63))
//    and on its exact 128-bit fallback (sums beyond 2^63), counted once per clamped sum;
//  - alpha = 0: W and bias equal q16_conv_backward_weights_sr's bit for bit whenever no sum is clamped
//    (the count too, plus the metric's own clamps for GRAD_SQUARED);
//  - a double-precision model of one step (the real-valued formula, no stochastic rounding) within the
//    bound derived from the documented roundings: |w - w_real| <= 1.5 + |step_real| * errE / 2^16 LSB,
//    |phi - phi_real| <= errPhi (see testOneStepMatchesDoubleModel);
//  - every error status (NULL, domain, size, overlap) and that nothing is written on error;
//  - the scratch is never written beyond q16_conv_weight_buffer_size (canary words after it).
// Loops count checks and keep the first failure; each test prints its number of checks.

import CFixed
import XCTest

/// The check log of this file (shared CheckLog, lines printed as "ConvRiemannianTests: ...").
private extension CheckLog {
    init(_ name: String) { self.init(suite: "ConvRiemannianTests", name: name) }
}

// Shapes (ConvShape, Padding, randomShape), variants and scratch: ConvTestSupport.swift. The exact model of
// the rule, mulNearest, bounded and UpdateOutcome: RiemannTestSupport.swift.

private extension ConvShape {
    var phiWords: Int { weightWords + F }
}

// MARK: - Problems, runners, model

private typealias Case = RiemannCase<ConvShape>

/// The Riemannian kernel (one variant) on a copy of the case; `intact` is false when the fast kernel wrote
/// beyond its q16_conv_weight_buffer_size bytes of scratch.
private func runRiemann(_ v: Variant, _ c: Case) -> (result: UpdateOutcome, intact: Bool) {
    var p = c.shape.params
    var W = c.W, bias = c.bias, phi = c.phi
    var sat = satStart
    let batch = Int32(c.shape.batch)
    let (st, intact): (q16_status, Bool) = withScratch64(q16_conv_weight_buffer_size(&p)) { scratch in
        W.withUnsafeMutableBufferPointer { wp in
            withOptionalBase(&bias) { bp in
                withOptionalBase(&phi) { pp in
                    switch v {
                    case .reference:
                        return q16_ref_conv_backward_weights_riemannian_sr(wp.baseAddress, bp, pp, c.dY, c.X, c.lr,
                                                                           c.gscale, c.alpha, c.rho, c.kind, batch,
                                                                           &p, c.seed, c.counter, &sat)
                    case .fastNoScratch:
                        return q16_conv_backward_weights_riemannian_sr(wp.baseAddress, bp, pp, nil, c.dY, c.X, c.lr,
                                                                       c.gscale, c.alpha, c.rho, c.kind, batch, &p,
                                                                       c.seed, c.counter, &sat)
                    case .fast:
                        return q16_conv_backward_weights_riemannian_sr(wp.baseAddress, bp, pp, scratch, c.dY, c.X,
                                                                       c.lr, c.gscale, c.alpha, c.rho, c.kind, batch,
                                                                       &p, c.seed, c.counter, &sat)
                    }
                }
            }
        }
    }
    return (UpdateOutcome(status: st, W: W, bias: bias, phi: phi, sat: sat - satStart), intact)
}

/// q16_conv_backward_weights_sr (fast with scratch, or the reference) on the same W, bias, dY, X, lr,
/// seed and counter (phi passed through unchanged).
private func runConvSR(_ c: Case, reference: Bool) -> UpdateOutcome {
    var p = c.shape.params
    var W = c.W, bias = c.bias
    var sat = satStart
    var scratch = [Int64](repeating: 0, count: (q16_conv_weight_buffer_size(&p) + 7) / 8)
    let batch = Int32(c.shape.batch)
    let st: q16_status = withOptionalBase(&bias) { bp in
        reference
            ? q16_ref_conv_backward_weights_sr(&W, bp, c.dY, c.X, c.lr, batch, &p, c.seed, c.counter, &sat)
            : q16_conv_backward_weights_sr(&W, bp, &scratch, c.dY, c.X, c.lr, batch, &p, c.seed, c.counter, &sat)
    }
    return UpdateOutcome(status: st, W: W, bias: bias, phi: c.phi, sat: sat - satStart)
}

/// The documented rule on the case's exact sums (RiemannCase.exactModel): counters weight w -> counter + w,
/// bias f -> counter + F*K + f; also the number of clamped sums and the metric's part of the count.
private func model(_ c: Case) -> (result: UpdateOutcome, clampedSums: UInt64, metricSat: UInt64) {
    let sums = c.shape.weightSums(c.dY, c.X)
    return c.exactModel(weightSums: sums.w, biasSums: sums.b)
}

/// 1 when the fast kernel's int64 pre-pass admits the problem (batch*Ho*Wo * max|dY| * max|X| <= INT64_MAX):
/// which of its two paths runs.
private func int64Path(_ c: Case) -> Bool {
    let mdy = c.dY.map { Int128($0.magnitude) }.max() ?? 0, mx = c.X.map { Int128($0.magnitude) }.max() ?? 0
    return Int128(c.shape.batch * c.shape.Ho * c.shape.Wo) * mdy * mx <= Int128(Int64.max)
}

/// A random case on `shape` with dY and X given; W, bias, phi, rates, alpha, kind, seed and counter drawn here
/// (RiemannCase.drawRandom; lr is 0 one time in 13).
private func randomCase(_ rng: inout SplitMix64, _ shape: ConvShape, dY: [Int32], X: [Int32], kind: q16_phi_kind,
                        alpha: Int32, tag: String) -> Case
{
    var c = Case(shape: shape, W: [], dY: dY, X: X)
    c.drawRandom(&rng, weights: shape.weightWords, biases: shape.F, batch: shape.batch, kind: kind, alpha: alpha,
                 zeroLROneIn: 13)
    c.tag = tag
    return c
}

private extension CheckLog {
    /// Every variant against the exact model: the reference, the fast kernel with scratch (whose canaries
    /// must survive) and with a NULL scratch. Returns the reference's result.
    @discardableResult
    mutating func expectAllVariants(_ c: Case, model want: UpdateOutcome) -> UpdateOutcome {
        let ref = runRiemann(.reference, c).result
        expectEqual(ref, want, "\(c.label): reference vs model")
        let fast = runRiemann(.fast, c)
        expect(fast.intact, "\(c.label): scratch written beyond q16_conv_weight_buffer_size")
        expectEqual(fast.result, ref, "\(c.label): fast vs reference")
        expectEqual(runRiemann(.fastNoScratch, c).result, ref, "\(c.label): fast (NULL scratch) vs reference")
        return ref
    }
}

// MARK: - Tests

final class ConvRiemannianTests: XCTestCase {
    /// Seeded random shapes and values (every spread, both kinds, alpha from 0 to Q16_MAX): fast, fast
    /// without scratch and reference agree bit for bit with each other and with the exact model.
    func testFastMatchesReferenceAndExactModel() {
        var log = CheckLog("fast == reference == exact model")
        var rng = SplitMix64(seed: 0xC0_41E3_A77)
        var saturated: UInt64 = 0, clamped: UInt64 = 0, moved = 0, phiMoved = 0, paths = (int64: 0, wide: 0)
        for it in 0 ..< 600 {
            let pad = Padding.allCases[it % Padding.allCases.count]
            let shape = randomShape(&rng, oneD: it % 4 == 3, maxStride: it % 5 == 0 ? 3 : 2, pad: pad)
            let spread = Spread.allCases[(it / 3) % Spread.allCases.count]
            let other = it % 7 == 0 ? Spread.allCases[Int(rng.next() % 5)] : spread
            let kind = it % 2 == 0 ? Q16_PHI_GRAD_SQUARED : Q16_PHI_WEIGHT_ABS
            let alphas: [Int32] = [0, 1, 65536, 1 << 20, qMax, rng.nextI32(in: 0 ... qMax)]
            let c = randomCase(&rng, shape, dY: values(shape.outWords, spread, &rng),
                               X: values(shape.inWords, other, &rng), kind: kind,
                               alpha: alphas[Int(rng.next() % UInt64(alphas.count))],
                               tag: "#\(it) \(pad) \(spread)/\(other)")
            let want = model(c)
            let ref = log.expectAllVariants(c, model: want.result)
            saturated += want.result.sat
            clamped += want.clampedSums
            moved += zip(ref.W, c.W).filter { $0 != $1 }.count
            if let p0 = c.phi, let p1 = ref.phi { phiMoved += zip(p0, p1).filter { $0 != $1 }.count }
            if int64Path(c) { paths.int64 += 1 } else { paths.wide += 1 }
        }
        // The problem set must reach what it claims to test.
        log.expect(saturated > 1000, "the extremes should saturate (\(saturated) saturations)")
        log.expect(clamped > 50, "some gradient sums should be clamped (\(clamped))")
        log.expect(moved > 5000, "the updates should move weights (\(moved) moved)")
        log.expect(phiMoved > 1000, "GRAD_SQUARED should update phi (\(phiMoved) moved)")
        log.expect(paths.int64 > 100 && paths.wide > 50, "both fast paths should run (\(paths))")
        log.finish()
    }

    /// Larger shapes: more than 32 filters (several filter blocks of the fast kernel), a 16 -> 16 3x3 layer,
    /// a long 1-D series; fast == reference, and the reference == the exact model.
    func testLargeShapes() {
        var log = CheckLog("large shapes")
        var shapes = [
            ConvShape(C: 3, H: 13, W: 17, F: 40, kh: 3, kw: 5, sh: 2, sw: 2, pt: 1, pl: 2, Ho: 7, Wo: 9),
            ConvShape(C: 16, H: 12, W: 12, F: 16, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 12, Wo: 12),
            ConvShape(C: 6, H: 1, W: 100, F: 33, kh: 1, kw: 7, sh: 1, sw: 1, pt: 0, pl: 3, Ho: 1, Wo: 100),
            ConvShape(C: 8, H: 12, W: 12, F: 70, kh: 1, kw: 1, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 6, Wo: 6),
        ]
        shapes[0].batch = 3; shapes[1].batch = 2; shapes[2].batch = 2; shapes[3].batch = 2
        var rng = SplitMix64(seed: 0x1A_4E5)
        for (k, s) in shapes.enumerated() {
            for spread in [Spread.unit, .full] {
                for kind in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS] {
                    let c = randomCase(&rng, s, dY: values(s.outWords, spread, &rng), X: values(s.inWords, spread, &rng),
                                       kind: kind, alpha: k % 2 == 0 ? 3 << 16 : rng.nextI32(in: 0 ... qMax),
                                       tag: "large \(spread)")
                    log.expectAllVariants(c, model: model(c).result)
                }
            }
        }
        log.finish()
    }

    /// Extremes that clamp the gradient sums, counted once per clamped sum, on both fast paths:
    ///  - dY = Q16_MIN, X = -2^30: products 2^61, three per weight: the int64 pre-pass admits it and the
    ///    sums 1.5 * 2^62 exceed the clamp inside int64;
    ///  - dY, X all Q16_MIN / Q16_MAX with 32 products per weight: sums beyond 2^63, the 128-bit fallback;
    ///  - bias sums beyond 2^46 (many Q16_MIN gradients).
    func testExtremeInputsClampSums() {
        var log = CheckLog("extreme inputs")
        var rng = SplitMix64(seed: 0xE47_8E3E)
        // 1-D, W = 3 positions, kernel 1: every weight sees batch * 3 products.
        let s3 = ConvShape(C: 2, H: 1, W: 3, F: 2, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 3)
        // 2-D same 3x3 on 4x4 with batch 2: interior taps see 32 products.
        var s32 = ConvShape(C: 1, H: 4, W: 4, F: 3, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 4, Wo: 4)
        s32.batch = 2
        for kind in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS] {
            for (lr, alpha) in [(UInt32.max, Int32(0)), (1, 65536), (1 << 20, qMax), (rng.nextU32(), 3 << 16)] {
                // int64 path, sums in (2^62, 2^63)
                var c = randomCase(&rng, s3, dY: [Int32](repeating: qMin, count: s3.outWords),
                                   X: [Int32](repeating: -(1 << 30), count: s3.inWords), kind: kind, alpha: alpha,
                                   tag: "int64 clamp")
                c.lr = lr
                log.expect(int64Path(c), "\(c.label): should take the int64 path")
                var want = model(c)
                log.expectAllVariants(c, model: want.result)
                log.expectEqual(want.clampedSums, UInt64(s3.weightWords), "\(c.label): every weight sum clamps")
                // 128-bit path: all extremes
                for (dv, xv) in [(qMin, qMin), (qMin, qMax), (qMax, qMax)] {
                    c = randomCase(&rng, s32, dY: [Int32](repeating: dv, count: s32.outWords),
                                   X: [Int32](repeating: xv, count: s32.inWords), kind: kind, alpha: alpha,
                                   tag: "wide dY=\(dv) X=\(xv)")
                    c.lr = lr
                    log.expect(!int64Path(c), "\(c.label): should take the 128-bit path")
                    want = model(c)
                    log.expectAllVariants(c, model: want.result)
                    log.expect(want.clampedSums >= UInt64(s32.F), "\(c.label): the centre taps clamp")
                }
            }
        }
        // Bias sums beyond 2^46: 1-D, 40 x 1000 positions of Q16_MIN = -2^31 * 40000 < -2^46 (X = 0: weights 0).
        var sb = ConvShape(C: 1, H: 1, W: 1000, F: 2, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 1000)
        sb.batch = 40
        for kind in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS] {
            var c = randomCase(&rng, sb, dY: [Int32](repeating: qMin, count: sb.outWords),
                               X: [Int32](repeating: 0, count: sb.inWords), kind: kind, alpha: 65536, tag: "bias clamp")
            c.bias = [0, qMax]
            c.lr = 1 << 16 // 2^-16: the clamped bias sum 2^46 (Q16) steps by SR(2^46 2^16 / 2^32) = 2^30
            let want = model(c)
            let ref = log.expectAllVariants(c, model: want.result)
            log.expectEqual(want.clampedSums, 2, "\(c.label): both bias sums clamp")
            // -2^46 LSB * 2^-16 = -2^30, divided by E = 1 + |b| (WEIGHT_ABS) or by E of phi (GRAD_SQUARED)
            if kind == Q16_PHI_WEIGHT_ABS {
                log.expectEqual(ref.bias?[0], 1 << 30, "\(c.label): bias 0 moves by exactly 2^30 LSB (E = 1)")
            }
        }
        // One sum whose partial sums cross the clamp but whose total does not: the clamp applies to the sum.
        // Products 2^62, 2^62, -(2^62 - 2^31) (three samples): 2^62 + 2^31 clamps to 2^62, lr = 1: step 16384.
        var one = ConvShape(C: 1, H: 1, W: 1, F: 1, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 1)
        one.batch = 3
        for order in [[qMin, qMin, qMax], [qMax, qMin, qMin]] {
            var c = Case(shape: one, W: [0], dY: [qMin, qMin, qMin], X: order)
            c.lr = 1; c.kind = Q16_PHI_WEIGHT_ABS; c.seed = 1; c.tag = "partial sums \(order)"
            for v in Variant.allCases {
                let r = runRiemann(v, c).result
                log.expectEqual(r.W, [-16384], "\(c.label) \(v): clamp of the exact sum")
                log.expectEqual(r.sat, 1, "\(c.label) \(v): one clamped sum, counted once")
            }
        }
        log.finish()
    }

    /// alpha = 0: E = 1, so W and bias equal q16_conv_backward_weights_sr's (fast and reference) bit for bit
    /// whenever no sum is clamped; the count equals its count plus the metric's own clamps (g, g^2, phi;
    /// none for WEIGHT_ABS). |dY|, |X| <= 2^26 with at most 4 * 140 products per sum keeps every weight sum
    /// below 2^62 and every bias sum below 2^46 (the model confirms no clamp).
    func testAlphaZeroEqualsConvSR() {
        var log = CheckLog("alpha = 0 vs conv_backward_weights_sr")
        var rng = SplitMix64(seed: 0xA1FA_C0)
        var metricSaturated: UInt64 = 0, wSaturated: UInt64 = 0, moved = 0
        for it in 0 ..< 400 {
            let pad = Padding.allCases[it % Padding.allCases.count]
            let shape = randomShape(&rng, oneD: it % 4 == 1, maxStride: 3, pad: pad)
            let bits = [12, 16, 20, 24, 26][it % 5]
            let kind = it % 2 == 0 ? Q16_PHI_GRAD_SQUARED : Q16_PHI_WEIGHT_ABS
            let c = randomCase(&rng, shape, dY: bounded(shape.outWords, bits: bits, &rng),
                               X: bounded(shape.inWords, bits: bits, &rng), kind: kind, alpha: 0,
                               tag: "#\(it) \(pad) 2^\(bits)")
            let want = model(c)
            log.expectEqual(want.clampedSums, 0, "\(c.label): no sum may clamp here")
            let r = runRiemann(.fast, c).result, rr = runRiemann(.reference, c).result
            let o = runConvSR(c, reference: false), oref = runConvSR(c, reference: true)
            log.expectEqual(o, oref, "\(c.label): conv SR fast vs reference")
            log.expectEqual(r, rr, "\(c.label): Riemannian fast vs reference")
            log.expectEqual(r.status, Q16_OK, c.label)
            log.expectEqual(r.W, o.W, "\(c.label): W")
            log.expectEqual(r.bias, o.bias, "\(c.label): bias")
            log.expectEqual(r.sat, o.sat + want.metricSat, "\(c.label): saturation count")
            if kind == Q16_PHI_WEIGHT_ABS {
                log.expectEqual(want.metricSat, 0, "\(c.label): WEIGHT_ABS with alpha 0 adds no count")
                log.expectEqual(r.phi, c.phi, "\(c.label): WEIGHT_ABS leaves phi untouched")
            } else {
                log.expectEqual(r.phi, want.result.phi, "\(c.label): phi")
            }
            metricSaturated += want.metricSat
            wSaturated += o.sat
            moved += zip(r.W, c.W).filter { $0 != $1 }.count
        }
        log.expect(metricSaturated > 0, "some metric clamps (g^2 of large gradients) should be exercised")
        log.expect(wSaturated > 0, "some weights should saturate")
        log.expect(moved > 2000, "the updates should move weights (\(moved) moved)")
        log.finish()
    }

    /// One step against the real-valued formula in double precision (no stochastic rounding), in LSB:
    ///   u_r = S lr / 2^48, g_r = S gscale / 2^48, phi_r = rho phi + (1 - rho) g_r^2 / 2^16 (or |w|),
    ///   E_r = 2^16 + alpha phi_r / 2^16, step_r = u_r 2^16 / E_r, w_r = w - step_r.
    /// Each rounding adds a bounded error (no value saturates here, which the test checks: count 0):
    ///   |u - u_r| < 1 and |g - g_r| < 1 (SR), |g2 - g2_r| <= 0.5 + (2|g_r| + 1) / 2^16 (q16_mul),
    ///   |phi - phi_r| < 2 + (1 - rho) errG2 =: errPhi (two SRs), |E - E_r| <= 0.5 + alpha errPhi / 2^16 =: errE,
    ///   |step - step_r| <= 0.5 (rounding) + |u - u_r| 2^16 / E (<= 1, E >= 2^16) + |step_r| errE / E,
    /// so |w - w_r| <= 1.5 + |step_r| errE / 2^16 (+ 1e-6 for the double arithmetic), and |phi - phi_r| <= errPhi.
    func testOneStepMatchesDoubleModel() {
        var log = CheckLog("one step vs double model")
        var rng = SplitMix64(seed: 0xD0_0B1E)
        var worst = 0.0, bigMetric = 0, bigSteps = 0
        for it in 0 ..< 300 {
            let shape = randomShape(&rng, oneD: it % 3 == 0, maxStride: 2, pad: Padding.allCases[it % 3])
            let kind = it % 2 == 0 ? Q16_PHI_GRAD_SQUARED : Q16_PHI_WEIGHT_ABS
            // |dY| <= 0.25, |X| <= 1: |g| <= Ho*Wo/4 <= 35 with gscale = 1/batch, g^2 <= 1225; alpha <= 16
            // keeps E below 2^15; |w| <= 128 and steps below 100 keep w in range.
            let dY = bounded(shape.outWords, bits: 14, &rng), X = bounded(shape.inWords, bits: 16, &rng)
            let alpha = rng.nextI32(in: 0 ... (16 << 16))
            var c = randomCase(&rng, shape, dY: dY, X: X, kind: kind, alpha: alpha, tag: "#\(it)")
            c.W = bounded(shape.weightWords, bits: 23, &rng)
            c.bias = it % 4 == 0 ? nil : bounded(shape.F, bits: 23, &rng)
            c.phi = kind == Q16_PHI_GRAD_SQUARED || it % 3 == 0
                ? (0 ..< shape.phiWords).map { _ in rng.nextI32(in: 0 ... (64 << 16)) } : nil
            c.lr = UInt32(rng.next() % (UInt64(1) << 28)) // lr < 1/16
            c.gscale = UInt32(min((UInt64(1) << 32) / UInt64(shape.batch), UInt64(UInt32.max))) // 1/batch
            let got = runRiemann(.fast, c).result
            log.expectEqual(got.status, Q16_OK, c.label)
            log.expectEqual(got.sat, 0, "\(c.label): nothing saturates here")
            log.expectEqual(got, runRiemann(.reference, c).result, "\(c.label): fast vs reference")
            let sums = shape.weightSums(dY, X)
            let lr = Double(c.lr), gs = Double(c.gscale), rho = Double(c.rho) / 0x1p32, al = Double(c.alpha)
            func check(_ w0: Int32, _ w1: Int32, _ at: Int, _ S: Double, _ what: String) {
                let uR = S * lr / 0x1p48
                var phiR: Double, errPhi = 0.0
                if kind == Q16_PHI_GRAD_SQUARED {
                    let gR = S * gs / 0x1p48
                    let g2R = gR * gR / 65536, errG2 = 0.5 + (2 * abs(gR) + 1) / 65536
                    phiR = rho * Double(c.phi![at]) + (1 - rho) * g2R
                    errPhi = 2 + (1 - rho) * errG2
                    let dp = abs(Double(got.phi![at]) - phiR)
                    log.expect(dp <= errPhi + 1e-6, "\(c.label) \(what): phi \(got.phi![at]) vs \(phiR) (bound \(errPhi))")
                } else {
                    phiR = Double(w0.magnitude)
                }
                let eR = 65536 + al * phiR / 65536, errE = 0.5 + al * errPhi / 65536
                let stepR = uR * 65536 / eR, wR = Double(w0) - stepR
                let bound = 1.5 + abs(stepR) * errE / 65536 + 1e-6
                let err = abs(Double(w1) - wR)
                log.expect(err <= bound, "\(c.label) \(what): w \(w1) vs \(wR) (|err| \(err) > bound \(bound))")
                worst = max(worst, err / bound)
                if eR > 2 * 65536 { bigMetric += 1 }
                if abs(stepR) > 16 { bigSteps += 1 }
            }
            for w in 0 ..< shape.weightWords { check(c.W[w], got.W[w], w, Double(sums.w[w]), "weight \(w)") }
            if let b0 = c.bias, let b1 = got.bias {
                for f in 0 ..< shape.F {
                    check(b0[f], b1[f], shape.weightWords + f, Double(sums.b[f]) * 65536, "bias \(f)")
                }
            }
        }
        print("ConvRiemannianTests: one step vs double model: worst |error| / bound = \(worst)")
        // The model must be discriminating: the metric changes the step a lot, and the steps are many LSB.
        log.expect(bigMetric > 1000, "E > 2 should be common (\(bigMetric))")
        log.expect(bigSteps > 1000, "steps above 16 LSB should be common (\(bigSteps))")
        log.finish()
    }

    /// Every error status, in the documented order (NULL, domain, size, overlap), for the fast kernel (with
    /// and without scratch) and the reference; nothing is written and nothing counted on error.
    func testErrors() {
        var log = CheckLog("errors")
        // C 1, 1 x 4 -> F 2, kernel 1 x 2, valid: Ho 1, Wo 3. Weights 4, bias 2, phi 6, dY 6 (batch 1), X 4;
        // scratch q16_conv_weight_buffer_size = 8*2*2 + 4*2*3 (rounded up to 8) = 56 bytes = 14 words.
        let shape = ConvShape(C: 1, H: 1, W: 4, F: 2, kh: 1, kw: 2, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 3)
        var p = shape.params
        var badP = p
        badP.Wo = 5 // kernel 2 on 4 columns: 3 (valid) or 4 (one column of trailing pad), never 5
        log.expectEqual(q16_conv_check(&badP), Q16_ERR_SIZE, "the bad params are bad")
        log.expectEqual(q16_conv_weight_buffer_size(&p), 56, "scratch bytes")
        let good = UnsafeMutablePointer<q16_conv_params>.allocate(capacity: 1)
        good.initialize(to: p)
        let badPtr = UnsafeMutablePointer<q16_conv_params>.allocate(capacity: 1)
        badPtr.initialize(to: badP)
        defer { good.deallocate(); badPtr.deallocate() }
        let words = 64
        let raw = UnsafeMutableRawPointer.allocate(byteCount: words * 4, alignment: 16)
        defer { raw.deallocate() }
        let pool = raw.bindMemory(to: Int32.self, capacity: words)
        for i in 0 ..< words { pool[i] = Int32(i) * 65536 / 7 + 3 }
        let before = Array(UnsafeBufferPointer(start: pool, count: words))
        func i64(_ q: UnsafeMutablePointer<Int32>) -> UnsafeMutablePointer<Int64> {
            UnsafeMutableRawPointer(q).assumingMemoryBound(to: Int64.self)
        }
        // W 0..<4, bias 8..<10, phi 12..<18, scratch 20..<34, dY 40..<46, X 48..<52 (gaps between them).
        let W = pool, bias = pool + 8, phi = pool + 12, scr = i64(pool + 20), dY = pool + 40, X = pool + 48
        var sat: UInt64 = 0
        for v in Variant.allCases {
            func call(_ w: UnsafeMutablePointer<Int32>?, _ b: UnsafeMutablePointer<Int32>?,
                      _ ph: UnsafeMutablePointer<Int32>?, _ s: UnsafeMutablePointer<Int64>?,
                      _ y: UnsafeMutablePointer<Int32>?, _ x: UnsafeMutablePointer<Int32>?,
                      kind: q16_phi_kind = Q16_PHI_GRAD_SQUARED, alpha: Int32 = 65536, batch: Int32 = 1,
                      params: UnsafePointer<q16_conv_params>? = nil, nullParams: Bool = false) -> q16_status
            {
                let pp: UnsafePointer<q16_conv_params>? = nullParams ? nil : (params ?? UnsafePointer(good))
                switch v {
                case .reference:
                    return q16_ref_conv_backward_weights_riemannian_sr(w, b, ph, y, x, 1 << 30, 1 << 31, alpha,
                                                                       1 << 31, kind, batch, pp, 9, 0, &sat)
                case .fastNoScratch:
                    return q16_conv_backward_weights_riemannian_sr(w, b, ph, nil, y, x, 1 << 30, 1 << 31, alpha,
                                                                   1 << 31, kind, batch, pp, 9, 0, &sat)
                case .fast:
                    return q16_conv_backward_weights_riemannian_sr(w, b, ph, s, y, x, 1 << 30, 1 << 31, alpha,
                                                                   1 << 31, kind, batch, pp, 9, 0, &sat)
                }
            }
            let bad = UnsafePointer(badPtr)
            var cases: [(String, q16_status, () -> q16_status)] = [
                ("params NULL", Q16_ERR_NULL, { call(W, bias, phi, scr, dY, X, nullParams: true) }),
                ("W NULL", Q16_ERR_NULL, { call(nil, bias, phi, scr, dY, X) }),
                ("dY NULL", Q16_ERR_NULL, { call(W, bias, phi, scr, nil, X) }),
                ("X NULL", Q16_ERR_NULL, { call(W, bias, phi, scr, dY, nil) }),
                ("phi NULL with GRAD_SQUARED", Q16_ERR_NULL, { call(W, bias, nil, scr, dY, X) }),
                ("NULL before domain", Q16_ERR_NULL, { call(nil, bias, phi, scr, dY, X, alpha: -1) }),
                ("unknown phi kind", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, kind: q16_phi_kind(rawValue: 7)) }),
                ("alpha < 0", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, alpha: -1) }),
                ("alpha = Q16_MIN", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, alpha: qMin) }),
                ("domain before size", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, alpha: -1, params: bad) }),
                ("bad params", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, params: bad) }),
                ("batch 0", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, batch: 0) }),
                ("batch < 0", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, batch: -3) }),
                ("batch * F*Ho*Wo overflows", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, batch: Int32.max / 5) }),
                ("size before overlap", Q16_ERR_SIZE, { call(W, W, phi, scr, dY, X, batch: 0) }),
                // overlaps: every output against every other output and every input
                ("bias overlaps W", Q16_ERR_OVERLAP, { call(W, W + 3, phi, scr, dY, X) }),
                ("W overlaps bias", Q16_ERR_OVERLAP, { call(bias - 3, bias, phi, scr, dY, X) }),
                ("bias overlaps dY", Q16_ERR_OVERLAP, { call(W, dY + 5, phi, scr, dY, X) }),
                ("bias overlaps X", Q16_ERR_OVERLAP, { call(W, X - 1, phi, scr, dY, X) }),
                ("bias overlaps phi", Q16_ERR_OVERLAP, { call(W, phi + 5, phi, scr, dY, X) }),
                ("W overlaps phi", Q16_ERR_OVERLAP, { call(W, nil, W + 3, scr, dY, X) }),
                ("phi overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, dY - 5, scr, dY, X) }),
                ("phi overlaps X", Q16_ERR_OVERLAP, { call(W, bias, X + 3, scr, dY, X) }),
                ("W overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, W + 3, X) }),
                ("W overlaps X", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, dY, W + 2) }),
                ("W at the top of memory overlaps X", Q16_ERR_OVERLAP, {
                    call(topAddress(16), bias, phi, scr, dY, topAddress(4))
                }),
            ]
            if v == .fast {
                cases += [
                    ("scratch overlaps phi", Q16_ERR_OVERLAP, { call(W, bias, phi, i64(pool + 16), dY, X) }),
                    ("phi overlaps scratch", Q16_ERR_OVERLAP, { call(W, bias, pool + 33, scr, dY, X) }),
                    ("scratch overlaps bias", Q16_ERR_OVERLAP, { call(W, pool + 33, phi, scr, dY, X) }),
                    ("scratch overlaps W", Q16_ERR_OVERLAP, { call(W, nil, phi, i64(W + 2), dY, X) }),
                    ("scratch overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, pool + 33, X) }),
                    ("scratch overlaps X", Q16_ERR_OVERLAP, { call(W, bias, phi, i64(pool + 36), dY, X) }),
                    ("scratch at the top of memory overlaps X", Q16_ERR_OVERLAP, {
                        call(W, bias, phi, i64(topAddress(56)), dY, topAddress(8))
                    }),
                ]
            }
            for (name, want, run) in cases {
                log.expectEqual(run(), want, "\(v): \(name)")
                log.expectEqual(Array(UnsafeBufferPointer(start: pool, count: words)), before,
                                "\(v): \(name): nothing written")
            }
            log.expectEqual(sat, 0, "\(v): nothing counted on error")
        }
        // Controls: the same layout without overlaps runs and changes W; WEIGHT_ABS neither reads nor writes
        // phi, so a phi on top of other buffers (or NULL) is no overlap.
        var sat2: UInt64 = 0
        log.expectEqual(q16_conv_backward_weights_riemannian_sr(W, bias, phi, scr, dY, X, 1 << 30, 1 << 31, 65536,
                                                                1 << 31, Q16_PHI_GRAD_SQUARED, 1, &p, 9, 0, &sat2),
                        Q16_OK, "no overlap")
        log.expect(Array(UnsafeBufferPointer(start: W, count: 4)) != Array(before[0 ..< 4]), "W changed")
        log.expect(Array(UnsafeBufferPointer(start: phi, count: 6)) != Array(before[12 ..< 18]), "phi changed")
        let snapshot = Array(UnsafeBufferPointer(start: pool + 20, count: 14))
        log.expectEqual(q16_conv_backward_weights_riemannian_sr(W, bias, pool + 20, nil, dY, X, 1 << 30, 1 << 31,
                                                                65536, 1 << 31, Q16_PHI_WEIGHT_ABS, 1, &p, 9, 0, &sat2),
                        Q16_OK, "WEIGHT_ABS ignores phi")
        log.expectEqual(Array(UnsafeBufferPointer(start: pool + 20, count: 14)), snapshot, "WEIGHT_ABS: phi untouched")
        log.expectEqual(q16_ref_conv_backward_weights_riemannian_sr(W, bias, nil, dY, X, 1 << 30, 1 << 31, 65536,
                                                                    1 << 31, Q16_PHI_WEIGHT_ABS, 1, &p, 9, 0, nil),
                        Q16_OK, "WEIGHT_ABS with phi NULL, sat NULL")
        log.finish()
    }
}
