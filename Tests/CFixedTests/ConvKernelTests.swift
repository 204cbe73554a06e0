// ConvKernelTests.swift -- the convolution and pooling kernels of CFixed (issue 11, item 3).
//
//  - q16_conv_check: consistent "same" / "valid" / asymmetric paddings accepted, every kind of
//    inconsistency refused, buffer sizes as documented;
//  - fast == reference, bit for bit (outputs, status, saturation count), for the forward pass,
//    backward data, the weight gradient and the fused SR update, over seeded random shapes:
//    2-D and 1-D (H = kh = 1), strides 1, 2 and 3, same / valid / asymmetric padding, batch 1...4,
//    value spreads from |x| <= 1 to the full q16 range and the extremes (which saturate and force
//    the exact 128-bit paths); the fast kernels also with a NULL scratch;
//  - both against an exact Swift model written from the formulas in q16.h (Int128 sums: no
//    intermediate can overflow; round to nearest, ties away, saturate once and count), so the stated
//    error bound is 0.5 LSB of the exact value when not saturated and the check is bit for bit;
//    the fused SR update against its documented formula with the random words of q16_rng_u32;
//  - the scratch is never written beyond its ..._buffer_size (canary words after it);
//  - pools against exact models and a double-precision model (|error| <= 0.5 LSB); max-pool
//    backward routes every gradient to its argmax;
//  - every error status of every kernel (NULL, sizes, overlap, a bad argmax index) and that nothing
//    is written on error.
// Loops count checks and keep the first failure (an XCTAssert per element is slow in debug builds);
// each test prints its number of checks.

import CFixed
import XCTest

/// The check log of this file (shared CheckLog, lines printed as "ConvKernelTests: ...").
private extension CheckLog {
    init(_ name: String) { self.init(suite: "ConvKernelTests", name: name) }
}

// MARK: - Exact arithmetic models (srExact, clampCount, divNearest: TestSupport.swift)

/// Round an exact Q32.32 sum to q16: nearest, ties away from zero, then saturate (counted).
private func roundSat(_ acc: Int128, _ sat: inout UInt64) -> Int32 {
    let neg = acc < 0
    let mag = neg ? -acc : acc
    let q = (mag + 0x8000) >> 16
    let v = neg ? -q : q
    return clampCount(v, &sat)
}

// Values (Spread, values, rate) and pointer helpers: TestSupport.swift.

// Shapes (ConvShape, Padding, randomShape), variants and scratch with canaries: ConvTestSupport.swift.

// MARK: - Exact models of the conv kernels

private func modelForward(_ s: ConvShape, _ X: [Int32], _ Wt: [Int32], _ bias: [Int32]?) -> (y: [Int32], sat: UInt64) {
    var acc: [Int128] = (0 ..< s.outWords).map { o in bias.map { Int128($0[s.filter(ofOutput: o)]) << 16 } ?? 0 }
    s.forEachProduct { o, w, x in acc[o] += Int128(Wt[w]) * Int128(X[x]) }
    var sat: UInt64 = 0
    return (acc.map { roundSat($0, &sat) }, sat)
}

/// Backward data, written as the scatter of every forward product's gradient (a different loop
/// order from the reference kernel's gather).
private func modelBackwardData(_ s: ConvShape, _ dY: [Int32], _ Wt: [Int32]) -> (dx: [Int32], sat: UInt64) {
    var acc = [Int128](repeating: 0, count: s.inWords)
    s.forEachProduct { o, w, x in acc[x] += Int128(dY[o]) * Int128(Wt[w]) }
    var sat: UInt64 = 0
    return (acc.map { roundSat($0, &sat) }, sat)
}

/// dW rounded once (its saturations in wsat), dB the exact sums saturated once (in bsat).
private func modelWeightGrad(_ s: ConvShape, _ dY: [Int32], _ X: [Int32])
    -> (dw: [Int32], db: [Int32], wsat: UInt64, bsat: UInt64)
{
    let sums = s.weightSums(dY, X)
    var wsat: UInt64 = 0, bsat: UInt64 = 0
    let dw = sums.w.map { roundSat($0, &wsat) }
    let db = sums.b.map { clampCount($0, &bsat) }
    return (dw, db, wsat, bsat)
}

/// The documented fused update: W -= SR(s lr / 2^48), bias -= SR(sum dY lr / 2^32), saturating.
private func modelWeightsSR(_ s: ConvShape, _ W: [Int32], _ bias: [Int32]?, _ dY: [Int32], _ X: [Int32], _ lr: UInt32,
                            _ seed: UInt64, _ counter: UInt64) -> (w: [Int32], b: [Int32]?, sat: UInt64)
{
    let sums = s.weightSums(dY, X)
    var sat: UInt64 = 0
    var w = W
    for k in 0 ..< w.count {
        let d = srExact(sums.w[k] * Int128(lr), 48, q16_rng_u32(seed, counter &+ UInt64(k)))
        w[k] = clampCount(Int128(W[k]) - d, &sat)
    }
    var b = bias
    if let bias {
        for f in 0 ..< s.F {
            let ctr = counter &+ UInt64(s.weightWords) &+ UInt64(f)
            let d = srExact(sums.b[f] * Int128(lr), 32, q16_rng_u32(seed, ctr))
            b![f] = clampCount(Int128(bias[f]) - d, &sat)
        }
    }
    return (w, b, sat)
}

// MARK: - Running the kernels

private struct Outcome: Equatable {
    var status: q16_status
    var out: [Int32]
    var out2: [Int32]? = nil
    var sat: UInt64
}

private func runForward(_ v: Variant, _ s: ConvShape, _ X: [Int32], _ Wt: [Int32], _ bias: [Int32]?,
                        _ log: inout CheckLog) -> Outcome
{
    var p = s.params
    var y = [Int32](repeating: 0x5A5A_5A5A, count: s.outWords)
    var sat = satStart
    let st: q16_status = withOptionalConst(bias) { bp in
        switch v {
        case .reference:
            return q16_ref_conv_forward(&y, X, Wt, bp, Int32(s.batch), &p, &sat)
        case .fastNoScratch:
            return q16_conv_forward(&y, nil, X, Wt, bp, Int32(s.batch), &p, &sat)
        case .fast:
            let bytes = q16_conv_forward_buffer_size(&p)
            let (r, intact) = withScratch32(bytes) { q16_conv_forward(&y, $0, X, Wt, bp, Int32(s.batch), &p, &sat) }
            log.expect(intact, "forward \(s): scratch written beyond its \(bytes) bytes")
            return r
        }
    }
    return Outcome(status: st, out: y, sat: sat - satStart)
}

private func runBackwardData(_ v: Variant, _ s: ConvShape, _ dY: [Int32], _ Wt: [Int32], _ log: inout CheckLog) -> Outcome {
    var p = s.params
    var dx = [Int32](repeating: 0x5A5A_5A5A, count: s.inWords)
    var sat = satStart
    let st: q16_status
    switch v {
    case .reference: st = q16_ref_conv_backward_data(&dx, dY, Wt, Int32(s.batch), &p, &sat)
    case .fastNoScratch: st = q16_conv_backward_data(&dx, nil, dY, Wt, Int32(s.batch), &p, &sat)
    case .fast:
        let bytes = q16_conv_backward_data_buffer_size(&p)
        let (r, intact) = withScratch32(bytes) { q16_conv_backward_data(&dx, $0, dY, Wt, Int32(s.batch), &p, &sat) }
        log.expect(intact, "backward data \(s): scratch written beyond its \(bytes) bytes")
        st = r
    }
    return Outcome(status: st, out: dx, sat: sat - satStart)
}

private func runWeightGrad(_ v: Variant, _ s: ConvShape, _ dY: [Int32], _ X: [Int32], withBias: Bool,
                           _ log: inout CheckLog) -> Outcome
{
    var p = s.params
    var dw = [Int32](repeating: 0x5A5A_5A5A, count: s.weightWords)
    var db: [Int32]? = withBias ? [Int32](repeating: 0x5A5A_5A5A, count: s.F) : nil
    var sat = satStart
    let st: q16_status = withOptionalBase(&db) { dbp in
        switch v {
        case .reference: return q16_ref_conv_weight_grad(&dw, dbp, dY, X, Int32(s.batch), &p, &sat)
        case .fastNoScratch: return q16_conv_weight_grad(&dw, dbp, nil, dY, X, Int32(s.batch), &p, &sat)
        case .fast:
            let bytes = q16_conv_weight_buffer_size(&p)
            let (r, intact) = withScratch64(bytes) {
                q16_conv_weight_grad(&dw, dbp, $0, dY, X, Int32(s.batch), &p, &sat)
            }
            log.expect(intact, "weight grad \(s): scratch written beyond its \(bytes) bytes")
            return r
        }
    }
    return Outcome(status: st, out: dw, out2: db, sat: sat - satStart)
}

private func runWeightsSR(_ v: Variant, _ s: ConvShape, _ W: [Int32], _ bias: [Int32]?, _ dY: [Int32], _ X: [Int32],
                          _ lr: UInt32, _ seed: UInt64, _ counter: UInt64, _ log: inout CheckLog) -> Outcome
{
    var p = s.params
    var w = W, b = bias
    var sat = satStart
    let st: q16_status = withOptionalBase(&b) { bp in
        switch v {
        case .reference:
            return q16_ref_conv_backward_weights_sr(&w, bp, dY, X, lr, Int32(s.batch), &p, seed, counter, &sat)
        case .fastNoScratch:
            return q16_conv_backward_weights_sr(&w, bp, nil, dY, X, lr, Int32(s.batch), &p, seed, counter, &sat)
        case .fast:
            let bytes = q16_conv_weight_buffer_size(&p)
            let (r, intact) = withScratch64(bytes) {
                q16_conv_backward_weights_sr(&w, bp, $0, dY, X, lr, Int32(s.batch), &p, seed, counter, &sat)
            }
            log.expect(intact, "weights SR \(s): scratch written beyond its \(bytes) bytes")
            return r
        }
    }
    return Outcome(status: st, out: w, out2: b, sat: sat - satStart)
}

// MARK: - The random problem set

private struct Problem {
    var shape: ConvShape
    var spread: Spread
    var X: [Int32], Wt: [Int32], bias: [Int32]?, dY: [Int32]
    var tag: String
}

/// Seeded random problems: 2-D and 1-D, strides 1...3, same / valid / random padding, batch 1...4,
/// every value spread (X, W and dY may use different ones).
private func problems(_ seed: UInt64, count: Int) -> [Problem] {
    var rng = SplitMix64(seed: seed)
    var out: [Problem] = []
    for it in 0 ..< count {
        let oneD = it % 4 == 3
        let pad = Padding.allCases[it % Padding.allCases.count]
        let maxStride = it % 5 == 0 ? 3 : 2
        let s = randomShape(&rng, oneD: oneD, maxStride: maxStride, pad: pad)
        let spread = Spread.allCases[(it / 3) % Spread.allCases.count]
        let other = it % 7 == 0 ? Spread.allCases[Int(rng.next() % 5)] : spread
        let X = values(s.inWords, spread, &rng)
        let Wt = values(s.weightWords, other, &rng)
        let bias: [Int32]? = it % 4 == 1 ? nil : values(s.F, other, &rng)
        let dY = values(s.outWords, spread, &rng)
        out.append(Problem(shape: s, spread: spread, X: X, Wt: Wt, bias: bias, dY: dY,
                           tag: "#\(it) \(s) \(pad) \(spread)/\(other)"))
    }
    return out
}

/// A few larger shapes (vectorised loops, filter blocks of 32, the 16 -> 16 3x3 layer).
private func largeShapes() -> [ConvShape] {
    var a = ConvShape(C: 16, H: 28, W: 28, F: 16, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 28, Wo: 28)
    a.batch = 2
    var b = ConvShape(C: 3, H: 13, W: 17, F: 40, kh: 3, kw: 5, sh: 2, sw: 2, pt: 1, pl: 2, Ho: 7, Wo: 9)
    b.batch = 3
    var c = ConvShape(C: 6, H: 1, W: 100, F: 33, kh: 1, kw: 7, sh: 1, sw: 1, pt: 0, pl: 3, Ho: 1, Wo: 100)
    c.batch = 2
    var d = ConvShape(C: 8, H: 12, W: 12, F: 70, kh: 1, kw: 1, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 6, Wo: 6)
    d.batch = 4
    return [a, b, c, d]
}

/// Each of the larger shapes with unit and then full-range values, drawn from a generator seeded per shape.
private func forLargeShapes(seed: (ConvShape) -> UInt64, _ body: (ConvShape, Spread, inout SplitMix64) -> Void) {
    for s in largeShapes() {
        var rng = SplitMix64(seed: seed(s))
        for spread in [Spread.unit, .full] { body(s, spread, &rng) }
    }
}

private extension CheckLog {
    /// The reference kernel against the exact model's `want`, then the fast kernel with and without scratch
    /// against the reference, bit for bit; `run` runs one variant on the problem. Returns the reference's outcome.
    @discardableResult
    mutating func expectVariants(_ tag: String, model want: Outcome,
                                 _ run: (Variant, inout CheckLog) -> Outcome) -> Outcome
    {
        let ref = run(.reference, &self)
        expectEqual(ref, want, "\(tag): reference vs model")
        for v in [Variant.fast, .fastNoScratch] {
            expectEqual(run(v, &self), ref, "\(tag): \(v) vs reference")
        }
        return ref
    }

    /// The random problems include the extremes: the models must have seen many saturations.
    mutating func expectExtremesSaturated(_ saturated: UInt64) {
        expect(saturated > 100, "the extremes should saturate (\(saturated) saturations)")
    }
}

/// One conv kernel on a log named `name`: `check` checks random problem `it` of `seed` (the variants against
/// the exact model) and returns the saturations its model counted; `large` compares the fast kernel with the
/// reference on a larger shape, drawing its inputs from a generator seeded per shape by `largeSeed`. The
/// extremes among the problems must saturate.
private func checkConvKernel(_ name: String, seed: UInt64, largeSeed: (ConvShape) -> UInt64,
                             file: StaticString = #filePath, line: UInt = #line,
                             _ check: (_ it: Int, _ pr: Problem, _ log: inout CheckLog) -> UInt64,
                             large: (_ s: ConvShape, _ spread: Spread, _ rng: inout SplitMix64, _ log: inout CheckLog) -> Void)
{
    var log = CheckLog(name)
    var saturated: UInt64 = 0
    for (it, pr) in problems(seed, count: 480).enumerated() { saturated += check(it, pr, &log) }
    forLargeShapes(seed: largeSeed) { s, spread, rng in large(s, spread, &rng, &log) }
    log.expectExtremesSaturated(saturated)
    log.finish(file: file, line: line)
}

// MARK: - Tests

final class ConvKernelTests: XCTestCase {
    // MARK: parameters

    func testConvCheckAndBufferSizes() {
        var log = CheckLog("conv_check and buffer sizes")
        var rng = SplitMix64(seed: 0xC0_4C4E_C4)
        // Every generated same / valid / asymmetric shape is accepted; the sizes are the documented formulas.
        for it in 0 ..< 2000 {
            let pad = Padding.allCases[it % 3]
            let s = randomShape(&rng, oneD: it % 4 == 0, maxStride: 4, pad: pad, maxC: 20, maxF: 70, maxHW: 40)
            var p = s.params
            log.expectEqual(q16_conv_check(&p), Q16_OK, "\(s) \(pad)")
            let k1 = s.K + 1, P = s.Ho * s.Wo
            log.expectEqual(q16_conv_forward_buffer_size(&p), 4 * (s.F * k1 + k1 * P), "forward size \(s)")
            let taps = s.F * ((s.kh + s.sh - 1) / s.sh) * ((s.kw + s.sw - 1) / s.sw)
            let pos = ((s.H + s.sh - 1) / s.sh) * ((s.W + s.sw - 1) / s.sw)
            let strided = s.sh > 1 || s.sw > 1
            log.expectEqual(q16_conv_backward_data_buffer_size(&p), 4 * (s.C * taps + taps * pos + (strided ? s.C * pos : 0)),
                            "backward data size \(s)")
            let colBytes = (4 * s.K * P + 7) / 8 * 8
            log.expectEqual(q16_conv_weight_buffer_size(&p), 8 * min(s.F, 32) * s.K + colBytes, "weight size \(s)")
        }
        // Hand-picked consistent shapes.
        let good: [ConvShape] = [
            ConvShape(C: 1, H: 28, W: 28, F: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 28, Wo: 28), // same
            ConvShape(C: 1, H: 28, W: 28, F: 8, kh: 3, kw: 3, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 26, Wo: 26), // valid
            ConvShape(C: 3, H: 28, W: 28, F: 8, kh: 3, kw: 3, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 14, Wo: 14), // same, stride 2
            ConvShape(C: 3, H: 7, W: 7, F: 2, kh: 3, kw: 3, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 3, Wo: 3), // valid, remainder 0
            ConvShape(C: 3, H: 8, W: 8, F: 2, kh: 3, kw: 3, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 3, Wo: 3), // valid, 1 row unused
            ConvShape(C: 6, H: 1, W: 100, F: 8, kh: 1, kw: 5, sh: 1, sw: 1, pt: 0, pl: 2, Ho: 1, Wo: 100), // 1-D same
            ConvShape(C: 1, H: 1, W: 1, F: 1, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 1, Wo: 1), // 1x1 input, same
            ConvShape(C: 1, H: 5, W: 5, F: 1, kh: 1, kw: 1, sh: 3, sw: 3, pt: 0, pl: 0, Ho: 2, Wo: 2), // 1x1 conv stride 3
        ]
        for s in good {
            var p = s.params
            log.expectEqual(q16_conv_check(&p), Q16_OK, "good \(s)")
        }
        // Inconsistent shapes.
        let base = ConvShape(C: 2, H: 10, W: 10, F: 4, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 10, Wo: 10)
        var bad: [(String, ConvShape)] = []
        func variant(_ name: String, _ edit: (inout ConvShape) -> Void) {
            var s = base
            edit(&s)
            bad.append((name, s))
        }
        variant("C = 0") { $0.C = 0 }
        variant("H = 0") { $0.H = 0 }
        variant("W < 0") { $0.W = -3 }
        variant("F = 0") { $0.F = 0 }
        variant("kh = 0") { $0.kh = 0 }
        variant("kw = 0") { $0.kw = 0 }
        variant("stride_h = 0") { $0.sh = 0 }
        variant("stride_w < 0") { $0.sw = -1 }
        variant("Ho = 0") { $0.Ho = 0 }
        variant("Wo = 0") { $0.Wo = 0 }
        variant("pad_top < 0") { $0.pt = -1 }
        variant("pad_left = kw") { $0.pl = 3 }
        variant("pad_top = kh") { $0.pt = 3; $0.Ho = 12 }
        variant("Ho too large (pad_bottom >= kh)") { $0.Ho = 12 } // 11 is fine: pad 1 top, 2 bottom
        variant("Wo too large") { $0.Wo = 12 }
        variant("Ho too small (rows a valid conv would reach left out)") { $0.Ho = 8 } // 9: pad 1 top, 0 bottom
        variant("Wo too small") { $0.Wo = 8 }
        variant("stride 2: Ho too large") { $0.sh = 2; $0.Ho = 7 } // 5 and 6 are fine
        variant("stride 2: Ho too small") { $0.sh = 2; $0.Ho = 4 }
        variant("C*H*W overflows int") { $0.C = 65536; $0.H = 65536; $0.Ho = 65536 }
        variant("F*Ho*Wo overflows int") { $0.F = 1 << 20; $0.H = 4096; $0.Ho = 4096 }
        func single(_ s: inout ConvShape) { s.H = 1; s.W = 1; s.kh = 1; s.kw = 1; s.pt = 0; s.pl = 0; s.Ho = 1; s.Wo = 1 }
        variant("C*kh*kw + 1 overflows int") { single(&$0); $0.C = Int(Int32.max) } // C*H*W = INT_MAX fits
        variant("(K+1)*Ho*Wo overflows int") { $0.C = 1 << 16; $0.H = 1 << 14; $0.Ho = 1 << 14; $0.W = 1; $0.kw = 1; $0.pl = 0; $0.Wo = 1 }
        variant("F*(K+1) overflows int") { $0.F = 1 << 20; $0.C = 4096; $0.H = 1; $0.W = 1; $0.kh = 1; $0.kw = 1; $0.pt = 0; $0.pl = 0; $0.Ho = 1; $0.Wo = 1 }
        variant("H + pad + kh overflows int") { $0.H = Int(Int32.max) - 1; $0.C = 1; $0.W = 1; $0.kw = 1; $0.pl = 0; $0.Wo = 1; $0.Ho = Int(Int32.max) - 1 }
        variant("backward-data phase matrix overflows int") { // F*kh*kw*H*W = 2^32, every other product small
            $0.C = 1; $0.F = 256; $0.H = 64; $0.W = 64; $0.kh = 64; $0.kw = 64; $0.pt = 0; $0.pl = 0; $0.Ho = 1; $0.Wo = 1
        }
        for (name, s) in bad {
            var p = s.params
            log.expectEqual(q16_conv_check(&p), Q16_ERR_SIZE, "bad: \(name)")
            log.expectEqual(q16_conv_forward_buffer_size(&p), 0, "bad: \(name): forward size")
            log.expectEqual(q16_conv_backward_data_buffer_size(&p), 0, "bad: \(name): backward data size")
            log.expectEqual(q16_conv_weight_buffer_size(&p), 0, "bad: \(name): weight size")
        }
        log.expectEqual(q16_conv_check(nil), Q16_ERR_NULL, "NULL params")
        log.expectEqual(q16_conv_forward_buffer_size(nil), 0, "NULL params: size")
        log.expectEqual(q16_conv_backward_data_buffer_size(nil), 0, "NULL params: size")
        log.expectEqual(q16_conv_weight_buffer_size(nil), 0, "NULL params: size")
        log.finish()
    }

    // MARK: fast == reference == exact model

    func testForwardMatchesReferenceAndModel() {
        checkConvKernel("conv forward", seed: 0xF0_4A4D, largeSeed: { UInt64($0.inWords) }) { _, pr, log in
            let want = modelForward(pr.shape, pr.X, pr.Wt, pr.bias)
            log.expectVariants(pr.tag, model: Outcome(status: Q16_OK, out: want.y, sat: want.sat)) {
                runForward($0, pr.shape, pr.X, pr.Wt, pr.bias, &$1)
            }
            return want.sat
        } large: { s, spread, rng, log in
            let X = values(s.inWords, spread, &rng), Wt = values(s.weightWords, spread, &rng)
            let bias = values(s.F, spread, &rng)
            let ref = runForward(.reference, s, X, Wt, bias, &log)
            log.expectEqual(runForward(.fast, s, X, Wt, bias, &log), ref, "large \(s) \(spread)")
            log.expectEqual(runForward(.fast, s, X, Wt, nil, &log), runForward(.reference, s, X, Wt, nil, &log),
                            "large \(s) \(spread), no bias")
        }
    }

    func testBackwardDataMatchesReferenceAndModel() {
        checkConvKernel("conv backward data", seed: 0xBD_A7A, largeSeed: { UInt64($0.outWords) }) { _, pr, log in
            let want = modelBackwardData(pr.shape, pr.dY, pr.Wt)
            log.expectVariants(pr.tag, model: Outcome(status: Q16_OK, out: want.dx, sat: want.sat)) {
                runBackwardData($0, pr.shape, pr.dY, pr.Wt, &$1)
            }
            return want.sat
        } large: { s, spread, rng, log in
            let dY = values(s.outWords, spread, &rng), Wt = values(s.weightWords, spread, &rng)
            log.expectEqual(runBackwardData(.fast, s, dY, Wt, &log), runBackwardData(.reference, s, dY, Wt, &log),
                            "large \(s) \(spread)")
        }
    }

    func testWeightGradMatchesReferenceAndModel() {
        checkConvKernel("conv weight grad", seed: 0x3E16_47, largeSeed: { UInt64($0.weightWords) }) { it, pr, log in
            let withBias = it % 3 != 0
            let want = modelWeightGrad(pr.shape, pr.dY, pr.X)
            // without dB the bias sums are neither stored nor counted
            let wantOutcome = Outcome(status: Q16_OK, out: want.dw, out2: withBias ? want.db : nil,
                                      sat: want.wsat + (withBias ? want.bsat : 0))
            log.expectVariants("\(pr.tag) bias=\(withBias)", model: wantOutcome) {
                runWeightGrad($0, pr.shape, pr.dY, pr.X, withBias: withBias, &$1)
            }
            return want.wsat + want.bsat
        } large: { s, spread, rng, log in
            let dY = values(s.outWords, spread, &rng), X = values(s.inWords, spread, &rng)
            log.expectEqual(runWeightGrad(.fast, s, dY, X, withBias: true, &log),
                            runWeightGrad(.reference, s, dY, X, withBias: true, &log), "large \(s) \(spread)")
        }
    }

    func testWeightsSRMatchesReferenceAndModel() {
        var log = CheckLog("conv fused SR update")
        var rng = SplitMix64(seed: 0x5A_0F_0C)
        var saturated: UInt64 = 0, moved = 0
        for (it, pr) in problems(0x5A_0F_0D, count: 480).enumerated() {
            let s = pr.shape
            let W = values(s.weightWords, it % 2 == 0 ? .mixed : pr.spread, &rng)
            let bias: [Int32]? = it % 3 == 0 ? nil : values(s.F, .mixed, &rng)
            let lr = it % 11 == 0 ? 0 : rate(&rng)
            let seed = rng.next()
            // counters near the top of UInt64 wrap inside the call (counter + index is modular)
            let counter = it % 5 == 0 ? UInt64.max - UInt64(rng.next() % 8) : rng.next()
            let want = modelWeightsSR(s, W, bias, pr.dY, pr.X, lr, seed, counter)
            let ref = log.expectVariants("\(pr.tag) lr=\(lr)",
                                         model: Outcome(status: Q16_OK, out: want.w, out2: want.b, sat: want.sat)) {
                runWeightsSR($0, s, W, bias, pr.dY, pr.X, lr, seed, counter, &$1)
            }
            if lr == 0 {
                // SR(0) is 0 for every random word: nothing moves
                log.expectEqual(ref.out, W, "\(pr.tag): lr 0 leaves W unchanged")
            }
            saturated += want.sat
            moved += zip(ref.out, W).filter { $0 != $1 }.count
        }
        forLargeShapes(seed: { UInt64($0.weightWords) ^ 0xAB }) { s, spread, lrng in
            let dY = values(s.outWords, spread, &lrng), X = values(s.inWords, spread, &lrng)
            let W = values(s.weightWords, .unit, &lrng), bias = values(s.F, .unit, &lrng)
            let lr = rate(&lrng), seed = lrng.next(), counter = lrng.next()
            log.expectEqual(runWeightsSR(.fast, s, W, bias, dY, X, lr, seed, counter, &log),
                            runWeightsSR(.reference, s, W, bias, dY, X, lr, seed, counter, &log),
                            "large \(s) \(spread)")
        }
        log.expectExtremesSaturated(saturated)
        log.expect(moved > 1000, "the updates should move weights (\(moved) moved)")
        log.finish()
    }

    /// Hand-checked values: a 1-D conv with "same" padding, a stride-2 2-D conv, and ties.
    func testHandChecked() {
        var log = CheckLog("hand-checked")
        let one: Int32 = 65536
        // 1-D: x = [1, 2, 3, 4], kernel [1, 0.5, -1], same padding (pad 1), bias 0.25
        var s = ConvShape(C: 1, H: 1, W: 4, F: 1, kh: 1, kw: 3, sh: 1, sw: 1, pt: 0, pl: 1, Ho: 1, Wo: 4)
        let x: [Int32] = [1, 2, 3, 4].map { $0 * one }
        let w: [Int32] = [one, one / 2, -one]
        let b: [Int32] = [one / 4]
        // y[j] = 0.25 + x[j-1] + 0.5 x[j] - x[j+1]
        let want1Values: [Double] = [-1.25, -0.75, -0.25, 5.25] // 0.25 + 0 + 0.5 - 2, 0.25 + 1 + 1 - 3, ...
        let want1: [Int32] = want1Values.map { Int32($0 * 65536) }
        for v in Variant.allCases {
            log.expectEqual(runForward(v, s, x, w, b, &log).out, want1, "1-D same \(v)")
        }
        // dX of the same layer for dY = [1, 0, 0, 0]: dX[y] = sum_j dY[j] w[y - j + 1] -> [0.5, -1, 0, 0]
        let dy: [Int32] = [one, 0, 0, 0]
        for v in Variant.allCases {
            log.expectEqual(runBackwardData(v, s, dy, w, &log).out, [one / 2, -one, 0, 0], "1-D backward \(v)")
        }
        // dW[v] = sum_j dY[j] x[j + v - 1] -> [0, 1, 2] for dY = [1, 0, 0, 0]; dB = 1
        for v in Variant.allCases {
            let r = runWeightGrad(v, s, dy, x, withBias: true, &log)
            log.expectEqual(r.out, [0, one, 2 * one], "1-D weight grad \(v)")
            log.expectEqual(r.out2, [one], "1-D bias grad \(v)")
        }
        // Rounding ties away from zero: 3 * 2^-16 * 0.5 = 1.5 LSB -> 2, and -1.5 LSB -> -2.
        s = ConvShape(C: 1, H: 1, W: 1, F: 1, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 1)
        for v in Variant.allCases {
            log.expectEqual(runForward(v, s, [3], [one / 2], nil, &log).out, [2], "tie +1.5 LSB \(v)")
            log.expectEqual(runForward(v, s, [-3], [one / 2], nil, &log).out, [-2], "tie -1.5 LSB \(v)")
            // bias inside the exact sum: -0.5 LSB + 1 LSB = 0.5 LSB -> 1 (rounding first, then adding, gives 0)
            log.expectEqual(runForward(v, s, [-1], [one / 2], [1], &log).out, [1], "bias before rounding \(v)")
        }
        // 2-D stride 2, valid: 4x4 input 0...15, 2x2 kernel of ones -> window sums
        s = ConvShape(C: 1, H: 4, W: 4, F: 1, kh: 2, kw: 2, sh: 2, sw: 2, pt: 0, pl: 0, Ho: 2, Wo: 2)
        let x2: [Int32] = (0 ..< 16).map { Int32($0) * one }
        let w2: [Int32] = [one, one, one, one]
        for v in Variant.allCases {
            log.expectEqual(runForward(v, s, x2, w2, nil, &log).out, [10, 18, 42, 50].map { $0 * one }, "2x2/2 \(v)")
        }
        // Saturation: Q16_MAX * Q16_MAX summed; counted once per output.
        s = ConvShape(C: 2, H: 1, W: 1, F: 1, kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0, Ho: 1, Wo: 1)
        for v in Variant.allCases {
            let r = runForward(v, s, [qMax, qMax], [qMax, qMax], nil, &log)
            log.expectEqual(r.out, [qMax], "saturate \(v)")
            log.expectEqual(r.sat, 1, "saturation counted once \(v)")
            // 2^62 - (2^62 - 2^31) = 2^31 (Q32.32) = 0.5: exact despite the huge terms
            let r2 = runForward(v, s, [qMin, qMin], [qMin, qMax], nil, &log)
            log.expectEqual(r2.out, [32768], "cancelling extremes \(v)")
            log.expectEqual(r2.sat, 0, "cancelling extremes: no saturation \(v)")
        }
        log.finish()
    }

    /// Conv forward with all-extreme values at scale: the int64 bound fails and the exact 128-bit
    /// paths run; fast and reference agree, and every output saturates or not exactly as the model.
    func testExtremeValuesAtScale() {
        var log = CheckLog("extremes at scale")
        var s = ConvShape(C: 8, H: 9, W: 9, F: 5, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 9, Wo: 9)
        s.batch = 3
        var rng = SplitMix64(seed: 0xE87E_4E5)
        for fill in [qMax, qMin] {
            let X = [Int32](repeating: fill, count: s.inWords), Wt = [Int32](repeating: qMax, count: s.weightWords)
            let dY = [Int32](repeating: fill, count: s.outWords)
            let ref = runForward(.reference, s, X, Wt, nil, &log)
            log.expectEqual(ref.sat, UInt64(s.outWords), "every output saturates (fill \(fill))")
            log.expectEqual(runForward(.fast, s, X, Wt, nil, &log), ref, "forward fill \(fill)")
            log.expectEqual(runBackwardData(.fast, s, dY, Wt, &log), runBackwardData(.reference, s, dY, Wt, &log),
                            "backward data fill \(fill)")
            log.expectEqual(runWeightGrad(.fast, s, dY, X, withBias: true, &log),
                            runWeightGrad(.reference, s, dY, X, withBias: true, &log), "weight grad fill \(fill)")
            let W = values(s.weightWords, .mixed, &rng)
            let want = modelWeightsSR(s, W, [0, 1, -1, qMax, qMin], dY, X, UInt32.max, 7, 9)
            log.expectEqual(runWeightsSR(.fast, s, W, [0, 1, -1, qMax, qMin], dY, X, UInt32.max, 7, 9, &log),
                            Outcome(status: Q16_OK, out: want.w, out2: want.b, sat: want.sat), "SR fill \(fill)")
        }
        log.finish()
    }

    // MARK: pools

    func testMaxPool() {
        var log = CheckLog("max pool")
        var rng = SplitMix64(seed: 0x3A_9001)
        for it in 0 ..< 300 {
            let oneD = it % 4 == 0
            let batch = 1 + Int(rng.next() % 3), C = 1 + Int(rng.next() % 3)
            let H = oneD ? 1 : 1 + Int(rng.next() % 9), W = 1 + Int(rng.next() % 12)
            let ph = oneD ? 1 : 1 + Int(rng.next() % UInt64(H)), pw = 1 + Int(rng.next() % UInt64(min(W, 4)))
            let Ho = H / ph, Wo = W / pw
            // few distinct values -> many ties (the first maximum must win)
            let X: [Int32] = it % 3 == 0 ? (0 ..< batch * C * H * W).map { _ in Int32(rng.next() % 3) - 1 }
                : values(batch * C * H * W, Spread.allCases[it % 5], &rng)
            var Y = [Int32](repeating: 0x5A5A_5A5A, count: batch * C * Ho * Wo)
            var idx = [Int32](repeating: -7, count: Y.count)
            let tag = "#\(it) b\(batch) C\(C) \(H)x\(W) pool \(ph)x\(pw)"
            log.expectEqual(q16_maxpool_forward(&Y, &idx, X, Int32(batch), Int32(C), Int32(H), Int32(W), Int32(ph),
                                                Int32(pw)), Q16_OK, "\(tag): status")
            // model: scan row-major, strictly greater replaces
            var wantY = Y, wantIdx = idx
            for pl in 0 ..< batch * C {
                for i in 0 ..< Ho {
                    for j in 0 ..< Wo {
                        var best = Int32.min, at = -1
                        for u in 0 ..< ph {
                            for v in 0 ..< pw {
                                let k = (i * ph + u) * W + j * pw + v
                                if at < 0 || X[pl * H * W + k] > best { best = X[pl * H * W + k]; at = k }
                            }
                        }
                        wantY[(pl * Ho + i) * Wo + j] = best
                        wantIdx[(pl * Ho + i) * Wo + j] = Int32(at)
                    }
                }
            }
            log.expectEqual(Y, wantY, "\(tag): values")
            log.expectEqual(idx, wantIdx, "\(tag): argmax (first maximum)")
            // without the index array: the same values
            var Y2 = [Int32](repeating: 0, count: Y.count)
            log.expectEqual(q16_maxpool_forward(&Y2, nil, X, Int32(batch), Int32(C), Int32(H), Int32(W), Int32(ph),
                                                Int32(pw)), Q16_OK, "\(tag): status without idx")
            log.expectEqual(Y2, Y, "\(tag): values without idx")
            // backward: every gradient goes to its argmax, everything else is 0
            let dY = values(Y.count, .mixed, &rng)
            var dX = [Int32](repeating: 0x5A5A_5A5A, count: X.count)
            log.expectEqual(q16_maxpool_backward(&dX, dY, idx, Int32(batch), Int32(C), Int32(H), Int32(W), Int32(ph),
                                                 Int32(pw)), Q16_OK, "\(tag): backward status")
            var wantDX = [Int32](repeating: 0, count: X.count)
            for pl in 0 ..< batch * C {
                for o in 0 ..< Ho * Wo { wantDX[pl * H * W + Int(idx[pl * Ho * Wo + o])] = dY[pl * Ho * Wo + o] }
            }
            log.expectEqual(dX, wantDX, "\(tag): backward routes each gradient to its argmax")
            let nonzeroIn = dX.filter { $0 != 0 }.count, nonzeroOut = dY.filter { $0 != 0 }.count
            log.expectEqual(nonzeroIn, nonzeroOut, "\(tag): no gradient lost or duplicated")
            log.expectEqual(dX.reduce(Int128(0)) { $0 + Int128($1) }, dY.reduce(Int128(0)) { $0 + Int128($1) },
                            "\(tag): gradient mass preserved")
        }
        log.finish()
    }

    func testAveragePools() {
        var log = CheckLog("average pools")
        var rng = SplitMix64(seed: 0xA7_9001)
        var tiesSeen = 0
        for it in 0 ..< 300 {
            let oneD = it % 4 == 0
            let batch = 1 + Int(rng.next() % 3), C = 1 + Int(rng.next() % 3)
            let H = oneD ? 1 : 1 + Int(rng.next() % 9), W = 1 + Int(rng.next() % 12)
            let global = it % 5 == 0
            let ph = global ? H : (oneD ? 1 : 1 + Int(rng.next() % UInt64(H)))
            let pw = global ? W : 1 + Int(rng.next() % UInt64(min(W, 4)))
            let Ho = H / ph, Wo = W / pw, n = ph * pw
            let X = it % 3 == 0 ? (0 ..< batch * C * H * W).map { _ in Int32(rng.next() % 7) - 3 }
                : values(batch * C * H * W, Spread.allCases[it % 5], &rng)
            var Y = [Int32](repeating: 0x5A5A_5A5A, count: batch * C * Ho * Wo)
            let tag = "#\(it) b\(batch) C\(C) \(H)x\(W) pool \(ph)x\(pw)\(global ? " (global)" : "")"
            let st = global ? q16_global_avgpool_forward(&Y, X, Int32(batch), Int32(C), Int32(H), Int32(W))
                : q16_avgpool_forward(&Y, X, Int32(batch), Int32(C), Int32(H), Int32(W), Int32(ph), Int32(pw))
            log.expectEqual(st, Q16_OK, "\(tag): status")
            for pl in 0 ..< batch * C {
                for i in 0 ..< Ho {
                    for j in 0 ..< Wo {
                        var sum: Int128 = 0
                        for u in 0 ..< ph {
                            for v in 0 ..< pw { sum += Int128(X[pl * H * W + (i * ph + u) * W + j * pw + v]) }
                        }
                        let got = Y[(pl * Ho + i) * Wo + j]
                        log.expectEqual(Int128(got), divNearest(sum, Int128(n)), "\(tag) [\(pl),\(i),\(j)]: exact model")
                        // double model: the mean in LSB is exact in a double here (|sum| < 2^53 * n)
                        let mean = Double(sum) / Double(n)
                        log.expect(abs(Double(got) - mean) <= 0.5, "\(tag): |Y - mean| > 0.5 LSB")
                        if 2 * (abs(sum) % Int128(n)) == Int128(n) { tiesSeen += 1 }
                    }
                }
            }
            // backward: round(dY / n) over each window, 0 in the trailing rows / columns
            let dY = values(Y.count, Spread.allCases[(it + 1) % 5], &rng)
            var dX = [Int32](repeating: 0x5A5A_5A5A, count: X.count)
            let bst = global ? q16_global_avgpool_backward(&dX, dY, Int32(batch), Int32(C), Int32(H), Int32(W))
                : q16_avgpool_backward(&dX, dY, Int32(batch), Int32(C), Int32(H), Int32(W), Int32(ph), Int32(pw))
            log.expectEqual(bst, Q16_OK, "\(tag): backward status")
            for pl in 0 ..< batch * C {
                for y in 0 ..< H {
                    for x in 0 ..< W {
                        let i = y / ph, j = x / pw
                        let got = dX[pl * H * W + y * W + x]
                        if i >= Ho || j >= Wo { log.expectEqual(got, 0, "\(tag): trailing gradient"); continue }
                        let g = dY[(pl * Ho + i) * Wo + j]
                        log.expectEqual(Int128(got), divNearest(Int128(g), Int128(n)), "\(tag): backward model")
                        log.expect(abs(Double(got) - Double(g) / Double(n)) <= 0.5, "\(tag): backward > 0.5 LSB")
                    }
                }
            }
        }
        log.expect(tiesSeen > 10, "ties should occur (\(tiesSeen))")
        // Ties away from zero: mean of [1, 2] LSB = 1.5 -> 2; of [-1, -2] -> -2; extremes stay in range.
        var y = [Int32](repeating: 0, count: 1)
        XCTAssertEqual(q16_avgpool_forward(&y, [1, 2], 1, 1, 1, 2, 1, 2), Q16_OK)
        log.expectEqual(y, [2], "tie +1.5")
        XCTAssertEqual(q16_avgpool_forward(&y, [-1, -2], 1, 1, 1, 2, 1, 2), Q16_OK)
        log.expectEqual(y, [-2], "tie -1.5")
        XCTAssertEqual(q16_global_avgpool_forward(&y, [qMax, qMax, qMax], 1, 1, 1, 3), Q16_OK)
        log.expectEqual(y, [qMax], "mean of Q16_MAX")
        XCTAssertEqual(q16_global_avgpool_forward(&y, [qMin, qMin, qMin, qMin], 1, 1, 2, 2), Q16_OK)
        log.expectEqual(y, [qMin], "mean of Q16_MIN")
        log.finish()
    }

    // MARK: errors

    func testConvErrors() {
        var log = CheckLog("conv errors")
        let s = ConvShape(C: 2, H: 4, W: 4, F: 3, kh: 3, kw: 3, sh: 1, sw: 1, pt: 1, pl: 1, Ho: 4, Wo: 4)
        var p = s.params
        var badP = p
        badP.Ho = 9
        let sentinel: Int32 = 0x2468_ACE0
        // One arena holding every buffer, so overlaps can be made on purpose.
        let xw = s.inWords, yw = s.outWords, ww = s.weightWords, fw = s.F
        let fs = q16_conv_forward_buffer_size(&p) / 4, bs = q16_conv_backward_data_buffer_size(&p) / 4
        let gs = q16_conv_weight_buffer_size(&p) / 8
        var arena = [Int32](repeating: sentinel, count: 4 * (xw + yw + ww + fw + fs + bs) + 64)
        var scratch64 = [Int64](repeating: 0x1357, count: gs + 4)
        let dYvals = [Int32](repeating: 65536, count: yw)
        arena.withUnsafeMutableBufferPointer { ap in
            let base = ap.baseAddress!
            let X = base, Y = X + xw, Wt = Y + yw, bias = Wt + ww, fsc = bias + fw, bsc = fsc + fs
            let dY = bsc + bs
            for i in 0 ..< yw { dY[i] = dYvals[i] }
            let cX = UnsafePointer(X), cWt = UnsafePointer(Wt), cb = UnsafePointer(bias), cdY = UnsafePointer(dY)
            var sat: UInt64 = 0
            scratch64.withUnsafeMutableBufferPointer { sp in
                let gsc = sp.baseAddress!
                // forward (fast and reference)
                typealias Fwd = (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafePointer<Int32>?,
                                 UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32,
                                 UnsafePointer<q16_conv_params>?) -> q16_status
                let fwds: [(String, Fwd)] = [
                    ("forward", { q16_conv_forward($0, $1, $2, $3, $4, $5, $6, &sat) }),
                    ("ref_forward", { y, _, x, w, b, n, pp in q16_ref_conv_forward(y, x, w, b, n, pp, &sat) }),
                ]
                for (name, f) in fwds {
                    let fast = name == "forward"
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, 2, nil), Q16_ERR_NULL, "\(name): NULL params")
                    log.expectEqual(f(nil, fsc, cX, cWt, cb, 2, &p), Q16_ERR_NULL, "\(name): NULL Y")
                    log.expectEqual(f(Y, fsc, nil, cWt, cb, 2, &p), Q16_ERR_NULL, "\(name): NULL X")
                    log.expectEqual(f(Y, fsc, cX, nil, cb, 2, &p), Q16_ERR_NULL, "\(name): NULL Wt")
                    log.expectEqual(f(nil, fsc, cX, cWt, cb, 0, &badP), Q16_ERR_NULL, "\(name): NULL before size")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, 2, &badP), Q16_ERR_SIZE, "\(name): bad params")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, 0, &p), Q16_ERR_SIZE, "\(name): batch 0")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, -1, &p), Q16_ERR_SIZE, "\(name): batch < 0")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, Int32.max / 16, &p), Q16_ERR_SIZE, "\(name): batch*C*H*W")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, Int32.max / 40, &p), Q16_ERR_SIZE, "\(name): batch*F*Ho*Wo")
                    log.expectEqual(f(X + 1, fsc, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP, "\(name): Y overlaps X")
                    log.expectEqual(f(Wt - 5, fsc, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP, "\(name): Y overlaps Wt")
                    log.expectEqual(f(Y, fsc, cX, cWt, UnsafePointer(Y + 47), 1, &p), Q16_ERR_OVERLAP,
                                    "\(name): Y overlaps bias")
                    log.expectEqual(f(Y, fsc, cX, cWt, cb, 2, &p), Q16_ERR_OVERLAP, "\(name): batch 2 Y overlaps Wt")
                    if fast {
                        log.expectEqual(f(Y, X + 3, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps X")
                        log.expectEqual(f(Y, Y + 3, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps Y")
                        log.expectEqual(f(Y, Wt - 8, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps Wt")
                        log.expectEqual(f(Y, bias - fs + 1, cX, cWt, cb, 1, &p), Q16_ERR_OVERLAP,
                                        "\(name): scratch overlaps bias")
                        // wrap-free overlap checks: ranges reaching the top of the address space
                        log.expectEqual(f(Y, topAddress(UInt(4 * fs)), UnsafePointer(topAddress(8)), cWt, cb, 1, &p),
                                        Q16_ERR_OVERLAP, "\(name): scratch at the top overlaps X")
                    }
                    log.expectEqual(f(topAddress(UInt(4 * yw)), fsc, UnsafePointer(topAddress(4)), cWt, cb, 1, &p),
                                    Q16_ERR_OVERLAP, "\(name): Y at the top overlaps X")
                }
                // backward data
                for fast in [true, false] {
                    let name = fast ? "backward_data" : "ref_backward_data"
                    func bd(_ dx: UnsafeMutablePointer<Int32>?, _ sc: UnsafeMutablePointer<Int32>?,
                            _ g: UnsafePointer<Int32>?, _ w: UnsafePointer<Int32>?, _ n: Int32,
                            _ pp: UnsafePointer<q16_conv_params>?) -> q16_status
                    {
                        fast ? q16_conv_backward_data(dx, sc, g, w, n, pp, &sat)
                            : q16_ref_conv_backward_data(dx, g, w, n, pp, &sat)
                    }
                    log.expectEqual(bd(X, bsc, cdY, cWt, 1, nil), Q16_ERR_NULL, "\(name): NULL params")
                    log.expectEqual(bd(nil, bsc, cdY, cWt, 1, &p), Q16_ERR_NULL, "\(name): NULL dX")
                    log.expectEqual(bd(X, bsc, nil, cWt, 1, &p), Q16_ERR_NULL, "\(name): NULL dY")
                    log.expectEqual(bd(X, bsc, cdY, nil, 1, &p), Q16_ERR_NULL, "\(name): NULL Wt")
                    log.expectEqual(bd(X, bsc, cdY, cWt, 1, &badP), Q16_ERR_SIZE, "\(name): bad params")
                    log.expectEqual(bd(X, bsc, cdY, cWt, 0, &p), Q16_ERR_SIZE, "\(name): batch 0")
                    log.expectEqual(bd(X, bsc, cdY, cWt, Int32.max / 16, &p), Q16_ERR_SIZE, "\(name): batch overflow")
                    log.expectEqual(bd(dY - 3, bsc, cdY, cWt, 1, &p), Q16_ERR_OVERLAP, "\(name): dX overlaps dY")
                    log.expectEqual(bd(Wt - 1, bsc, cdY, cWt, 1, &p), Q16_ERR_OVERLAP, "\(name): dX overlaps Wt")
                    if fast {
                        log.expectEqual(bd(X, X + 2, cdY, cWt, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps dX")
                        log.expectEqual(bd(X, dY - 1, cdY, cWt, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps dY")
                        log.expectEqual(bd(X, Wt + 1, cdY, cWt, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps Wt")
                    }
                }
                // weight gradient and fused update
                let g64 = UnsafeMutableRawPointer(Y).assumingMemoryBound(to: Int64.self) // scratch on top of Y
                for kind in 0 ..< 4 {
                    let name = ["weight_grad", "ref_weight_grad", "weights_sr", "ref_weights_sr"][kind]
                    let fast = kind % 2 == 0
                    func wk(_ w: UnsafeMutablePointer<Int32>?, _ b: UnsafeMutablePointer<Int32>?,
                            _ sc: UnsafeMutablePointer<Int64>?, _ g: UnsafePointer<Int32>?, _ x: UnsafePointer<Int32>?,
                            _ n: Int32, _ pp: UnsafePointer<q16_conv_params>?) -> q16_status
                    {
                        switch kind {
                        case 0: return q16_conv_weight_grad(w, b, sc, g, x, n, pp, &sat)
                        case 1: return q16_ref_conv_weight_grad(w, b, g, x, n, pp, &sat)
                        case 2: return q16_conv_backward_weights_sr(w, b, sc, g, x, 1 << 20, n, pp, 1, 2, &sat)
                        default: return q16_ref_conv_backward_weights_sr(w, b, g, x, 1 << 20, n, pp, 1, 2, &sat)
                        }
                    }
                    log.expectEqual(wk(Wt, bias, gsc, cdY, cX, 1, nil), Q16_ERR_NULL, "\(name): NULL params")
                    log.expectEqual(wk(nil, bias, gsc, cdY, cX, 1, &p), Q16_ERR_NULL, "\(name): NULL W")
                    log.expectEqual(wk(Wt, bias, gsc, nil, cX, 1, &p), Q16_ERR_NULL, "\(name): NULL dY")
                    log.expectEqual(wk(Wt, bias, gsc, cdY, nil, 1, &p), Q16_ERR_NULL, "\(name): NULL X")
                    log.expectEqual(wk(Wt, bias, gsc, cdY, cX, 1, &badP), Q16_ERR_SIZE, "\(name): bad params")
                    log.expectEqual(wk(Wt, bias, gsc, cdY, cX, -2, &p), Q16_ERR_SIZE, "\(name): batch < 0")
                    log.expectEqual(wk(Wt, bias, gsc, cdY, cX, Int32.max / 40, &p), Q16_ERR_SIZE,
                                    "\(name): batch overflow")
                    log.expectEqual(wk(Wt, Wt + 2, gsc, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): bias overlaps W")
                    log.expectEqual(wk(X + 4, bias, gsc, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): W overlaps X")
                    log.expectEqual(wk(dY + 4, bias, gsc, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): W overlaps dY")
                    log.expectEqual(wk(Wt, dY + 1, gsc, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): bias overlaps dY")
                    log.expectEqual(wk(Wt, X, gsc, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): bias overlaps X")
                    if fast {
                        let xs = UnsafeMutableRawPointer(X).assumingMemoryBound(to: Int64.self)
                        let ws = UnsafeMutableRawPointer(Wt).assumingMemoryBound(to: Int64.self)
                        log.expectEqual(wk(Wt, bias, xs, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps X")
                        log.expectEqual(wk(Wt, bias, ws, cdY, cX, 1, &p), Q16_ERR_OVERLAP, "\(name): scratch overlaps W")
                        log.expectEqual(wk(Wt, bias, g64, cdY, cX, 1, &p), Q16_ERR_OVERLAP,
                                        "\(name): scratch overlaps W (from below)")
                    }
                }
                _ = gsc
            }
            // nothing was written by any failed call
            for i in 0 ..< xw + yw + ww + fw + fs + bs { if base[i] != sentinel { log.expect(false, "word \(i) written on error"); break } }
            log.expectEqual(sat, 0, "no saturation counted on error")
        }
        log.expect(scratch64.allSatisfy { $0 == 0x1357 }, "weight scratch untouched on error")
        log.finish()
    }

    func testPoolErrors() {
        var log = CheckLog("pool errors")
        let sentinel: Int32 = 0x1357_9BDF
        var buf = [Int32](repeating: sentinel, count: 256)
        var idxBuf = [Int32](repeating: 0, count: 16)
        buf.withUnsafeMutableBufferPointer { bp in
            let X = bp.baseAddress!, Y = X + 64, D = X + 128
            let cX = UnsafePointer(X), cY = UnsafePointer(Y)
            // forward max: X[1 x 2 x 4 x 4] -> Y[1 x 2 x 2 x 2]
            idxBuf.withUnsafeMutableBufferPointer { ip in
                let idx = ip.baseAddress!
                log.expectEqual(q16_maxpool_forward(nil, idx, cX, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "max fwd NULL Y")
                log.expectEqual(q16_maxpool_forward(Y, idx, nil, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "max fwd NULL X")
                for (b, c, h, w, ph, pw) in [(0, 2, 4, 4, 2, 2), (1, 0, 4, 4, 2, 2), (1, 2, 0, 4, 2, 2), (1, 2, 4, -1, 2, 2),
                                             (1, 2, 4, 4, 0, 2), (1, 2, 4, 4, 2, -2), (1, 2, 4, 4, 5, 2), (1, 2, 4, 4, 2, 5),
                                             (Int(Int32.max), 2, 4, 4, 2, 2), (1, 65536, 65536, 1, 1, 1)] {
                    let a = [b, c, h, w, ph, pw].map { Int32($0) }
                    log.expectEqual(q16_maxpool_forward(Y, idx, cX, a[0], a[1], a[2], a[3], a[4], a[5]), Q16_ERR_SIZE,
                                    "max fwd size \(a)")
                    log.expectEqual(q16_avgpool_forward(Y, cX, a[0], a[1], a[2], a[3], a[4], a[5]), Q16_ERR_SIZE,
                                    "avg fwd size \(a)")
                    log.expectEqual(q16_maxpool_backward(D, cY, idx, a[0], a[1], a[2], a[3], a[4], a[5]), Q16_ERR_SIZE,
                                    "max bwd size \(a)")
                    log.expectEqual(q16_avgpool_backward(D, cY, a[0], a[1], a[2], a[3], a[4], a[5]), Q16_ERR_SIZE,
                                    "avg bwd size \(a)")
                }
                log.expectEqual(q16_global_avgpool_forward(Y, cX, 1, 2, 0, 4), Q16_ERR_SIZE, "global fwd size")
                log.expectEqual(q16_global_avgpool_backward(D, cY, 1, 2, 4, -4), Q16_ERR_SIZE, "global bwd size")
                log.expectEqual(q16_maxpool_forward(X + 31, idx, cX, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "max fwd Y/X")
                log.expectEqual(q16_maxpool_forward(Y, UnsafeMutableRawPointer(X + 30).assumingMemoryBound(to: Int32.self),
                                                    cX, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "max fwd idx/X")
                log.expectEqual(q16_maxpool_forward(Y, UnsafeMutableRawPointer(Y + 7).assumingMemoryBound(to: Int32.self),
                                                    cX, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "max fwd idx/Y")
                log.expectEqual(q16_avgpool_forward(X + 31, cX, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "avg fwd Y/X")
                log.expectEqual(q16_global_avgpool_forward(X + 31, cX, 1, 2, 4, 4), Q16_ERR_OVERLAP, "global fwd Y/X")
                // backward
                log.expectEqual(q16_maxpool_backward(nil, cY, idx, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "max bwd NULL dX")
                log.expectEqual(q16_maxpool_backward(D, nil, idx, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "max bwd NULL dY")
                log.expectEqual(q16_maxpool_backward(D, cY, nil, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "max bwd NULL idx")
                log.expectEqual(q16_avgpool_backward(nil, cY, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "avg bwd NULL dX")
                log.expectEqual(q16_avgpool_forward(Y, nil, 1, 2, 4, 4, 2, 2), Q16_ERR_NULL, "avg fwd NULL X")
                log.expectEqual(q16_global_avgpool_backward(D, nil, 1, 2, 4, 4), Q16_ERR_NULL, "global bwd NULL dY")
                log.expectEqual(q16_global_avgpool_forward(nil, cX, 1, 2, 4, 4), Q16_ERR_NULL, "global fwd NULL Y")
                log.expectEqual(q16_maxpool_backward(Y - 31, cY, idx, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "max bwd dX/dY")
                log.expectEqual(q16_maxpool_backward(D, cY, UnsafePointer(D + 31), 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP,
                                "max bwd dX/idx")
                log.expectEqual(q16_avgpool_backward(Y - 31, cY, 1, 2, 4, 4, 2, 2), Q16_ERR_OVERLAP, "avg bwd dX/dY")
                log.expectEqual(q16_global_avgpool_backward(Y - 31, cY, 1, 2, 4, 4), Q16_ERR_OVERLAP, "global bwd dX/dY")
                // indices outside their windows: Q16_ERR_DOMAIN, nothing written
                let good: [Int32] = [0, 2, 8, 10, 16 + 5, 16 + 7, 16 + 13, 16 + 15].map { $0 % 16 }
                for (k, badValue) in [(0, Int32(-1)), (3, 16), (1, 0), (5, 4), (7, Int32.max), (2, Int32.min), (4, 2)] {
                    for i in 0 ..< 8 { idx[i] = good[i] }
                    idx[k] = badValue
                    log.expectEqual(q16_maxpool_backward(D, cY, idx, 1, 2, 4, 4, 2, 2), Q16_ERR_DOMAIN,
                                    "index \(badValue) at output \(k)")
                }
                for i in 0 ..< 8 { idx[i] = good[i] }
                for i in 0 ..< 8 { Y[i] = 0 } // dY
            }
            for i in 0 ..< 256 where !(64 ..< 72).contains(i) {
                if bp[i] != sentinel { log.expect(false, "word \(i) written on error"); break }
            }
            // the fixed indices are valid: now it works
            log.expectEqual(q16_maxpool_backward(D, cY, idxBuf, 1, 2, 4, 4, 2, 2), Q16_OK, "valid indices")
        }
        log.finish()
    }
}
