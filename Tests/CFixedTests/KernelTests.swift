// KernelTests.swift -- dot / gemv / gemm (fast and reference), ReLU, and the
// stochastic-rounding weight updates of CFixed.
//
//  - fast == reference, bit for bit (results AND saturation counts), on seeded
//    random shapes (odd sizes 1...67, block boundaries, 64/128/256) and value
//    distributions from typical NN magnitudes to the full q16 range (which
//    forces the exact 128-bit fallback and saturation);
//  - reference == an independent exact model in Swift (Int128 sums, round to
//    nearest with ties away from zero, saturate once and count), plus a
//    double-precision check (error <= 0.5 LSB) where doubles are exact;
//  - hand-checked tiny cases (ties, saturation, a sum whose partial sums
//    overflow int64 but whose result is 1.0);
//  - ReLU forward/backward;
//  - update kernels vs an independent Swift model of the documented formula
//    and random-bit indexing, and a statistical check that SR is unbiased;
//  - every error status (NULL, sizes, int overflow of a product, overlap), and
//    that nothing is written on error.
// Loops count failures and report the first (XCTAssert per element is slow in
// debug builds).

import CFixed
import Foundation
import XCTest

// qMax, qMin (Q16_MAX, Q16_MIN): TestSupport.swift
private let one: Int32 = 65536 // Q16_ONE

// MARK: - Exact models

/// Round an exact Q32.32 sum to q16: nearest, ties away from zero, then saturate.
private func roundSat(_ acc: Int128) -> (value: Int32, saturated: Bool) {
    let neg = acc < 0
    let mag = neg ? -acc : acc
    let q = (mag + 0x8000) >> 16
    if !neg { return q > Int128(qMax) ? (qMax, true) : (Int32(q), false) }
    return q > (Int128(1) << 31) ? (qMin, true) : (Int32(-q), false)
}

private func clampQ16(_ v: Int128) -> (value: Int32, saturated: Bool) {
    if v > Int128(qMax) { return (qMax, true) }
    if v < Int128(qMin) { return (qMin, true) }
    return (Int32(v), false)
}

private enum Layout: String, CaseIterable { case nn, tn, nt }

/// Exact GEMM model: A holds m*k values, B holds k*n values (interpreted per layout).
private func exactGemm(_ layout: Layout, _ A: [Int32], _ B: [Int32], _ bias: [Int32]?,
                       _ m: Int, _ n: Int, _ k: Int) -> (c: [Int32], sat: UInt64, acc: [Int128])
{
    var c = [Int32](repeating: 0, count: m * n)
    var accs = [Int128](repeating: 0, count: m * n)
    var sat: UInt64 = 0
    for i in 0 ..< m {
        for j in 0 ..< n {
            var acc: Int128 = 0
            if let bias { acc += Int128(bias[j]) << 16 }
            for p in 0 ..< k {
                let a: Int32, b: Int32
                switch layout {
                case .nn: a = A[i * k + p]; b = B[p * n + j]
                case .tn: a = A[p * m + i]; b = B[p * n + j]
                case .nt: a = A[i * k + p]; b = B[j * k + p]
                }
                acc += Int128(Int64(a) * Int64(b))
            }
            let r = roundSat(acc)
            c[i * n + j] = r.value
            accs[i * n + j] = acc
            if r.saturated { sat += 1 }
        }
    }
    return (c, sat, accs)
}

/// Stochastic rounding model: floor(t / 2^shift) + 1 if the top 32 bits of the
/// shift-bit fraction exceed rnd (shift >= 32).
private func srModel(_ t: Int128, shift: Int, rnd: UInt32) -> Int128 {
    let fl = t >> shift // arithmetic shift = floor
    let frac = t - (fl << shift) // in [0, 2^shift)
    let top = UInt32(truncatingIfNeeded: frac >> (shift - 32))
    return fl + (top > rnd ? 1 : 0)
}

// MARK: - Value distributions

private enum Dist: String, CaseIterable {
    case nn // |x| <= 1.0: typical weights/activations/gradients
    case wide // |x| <= 128
    case full // the whole q16 range: forces the 128-bit fallback and saturation
    case extremes // Q16_MIN, Q16_MAX and neighbours of 0
    case scales // random magnitudes 2^0 ... 2^31
}

private func draw(_ d: Dist, _ rng: inout SplitMix64) -> Int32 {
    switch d {
    case .nn: return rng.nextI32(in: -65536 ... 65536)
    case .wide: return rng.nextI32(in: -(1 << 23) ... (1 << 23))
    case .full: return rng.nextI32()
    case .extremes:
        let pick: [Int32] = [qMin, qMax, qMin + 1, qMax - 1, -1, 0, 1]
        return pick[Int(rng.next() % UInt64(pick.count))]
    case .scales:
        let s = Int(rng.next() % 32)
        let r = Int64(rng.next() % (UInt64(1) << s))
        return Int32(truncatingIfNeeded: r - (Int64(1) << s) / 2)
    }
}

private func fill(_ count: Int, _ d: Dist, _ rng: inout SplitMix64) -> [Int32] {
    (0 ..< count).map { _ in draw(d, &rng) }
}

// MARK: - Running the C kernels

private struct Outcome: Equatable {
    var status: q16_status
    var out: [Int32]
    var sat: UInt64
}

private func runGemm(_ layout: Layout, fast: Bool, _ A: [Int32], _ B: [Int32], _ bias: [Int32]?,
                     _ m: Int, _ n: Int, _ k: Int) -> Outcome
{
    var c = [Int32](repeating: 0x5A5A_5A5A, count: m * n)
    var sat: UInt64 = 0
    let M = Int32(m), N = Int32(n), K = Int32(k)
    let st: q16_status
    switch (layout, fast) {
    case (.nn, true): st = q16_gemm_nn(&c, A, B, M, N, K, &sat)
    case (.nn, false): st = q16_ref_gemm_nn(&c, A, B, M, N, K, &sat)
    case (.tn, true): st = q16_gemm_tn(&c, A, B, M, N, K, &sat)
    case (.tn, false): st = q16_ref_gemm_tn(&c, A, B, M, N, K, &sat)
    case (.nt, true):
        // With the caller scratch of q16_gemm_nt_buffer_size (the packed path where it applies)
        // and without scratch (the unpacked path): both must give the same words and count.
        let words = q16_gemm_nt_buffer_size(M, N, K) / 4
        var scratch = [Int32](repeating: 0x3C3C_3C3C, count: max(words, 1))
        var c2 = c
        var sat2: UInt64 = 0
        let st2: q16_status
        st = scratch.withUnsafeMutableBufferPointer { sp in
            q16_gemm_nt(&c, words > 0 ? sp.baseAddress : nil, A, B, bias, M, N, K, &sat)
        }
        st2 = q16_gemm_nt(&c2, nil, A, B, bias, M, N, K, &sat2)
        XCTAssertEqual(Outcome(status: st, out: c, sat: sat), Outcome(status: st2, out: c2, sat: sat2),
                       "gemm_nt \(m)x\(n)x\(k): packed (scratch) and unpacked paths differ")
    case (.nt, false):
        st = bias == nil ? q16_ref_gemm_nt(&c, A, B, nil, M, N, K, &sat)
            : q16_ref_gemm_nt(&c, A, B, bias!, M, N, K, &sat)
    }
    return Outcome(status: st, out: c, sat: sat)
}

private func runGemv(fast: Bool, _ A: [Int32], _ x: [Int32], _ bias: [Int32]?, _ m: Int, _ n: Int) -> Outcome {
    var y = [Int32](repeating: 0x5A5A_5A5A, count: m)
    var sat: UInt64 = 0
    let st: q16_status
    if let bias {
        st = fast ? q16_gemv(&y, A, x, bias, Int32(m), Int32(n), &sat)
            : q16_ref_gemv(&y, A, x, bias, Int32(m), Int32(n), &sat)
    } else {
        st = fast ? q16_gemv(&y, A, x, nil, Int32(m), Int32(n), &sat)
            : q16_ref_gemv(&y, A, x, nil, Int32(m), Int32(n), &sat)
    }
    return Outcome(status: st, out: y, sat: sat)
}

private func runDot(fast: Bool, _ a: [Int32], _ b: [Int32]) -> Outcome {
    var out: Int32 = 0x5A5A_5A5A
    var sat: UInt64 = 0
    let st = fast ? q16_dot(&out, a, b, Int32(a.count), &sat) : q16_ref_dot(&out, a, b, Int32(a.count), &sat)
    return Outcome(status: st, out: [out], sat: sat)
}

/// Failure tally: counts checks, keeps the first failure message.
private struct Tally {
    var checks = 0
    var fails = 0
    var first: String?

    mutating func check(_ ok: Bool, _ what: @autoclosure () -> String) {
        checks += 1
        if !ok {
            fails += 1
            if first == nil { first = what() }
        }
    }

    func assertClean(_ name: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThan(checks, 0, "\(name): no checks ran", file: file, line: line)
        XCTAssertEqual(fails, 0, "\(name): \(fails)/\(checks) failed; first: \(first ?? "-")", file: file, line: line)
    }
}

final class KernelTests: XCTestCase {
    // MARK: hand-checked cases

    func testTinyHandChecked() {
        // [[1,2],[3,4]] * [[5,6],[7,8]] = [[19,22],[43,50]]
        let A: [Int32] = [1, 2, 3, 4].map { $0 * one }
        let B: [Int32] = [5, 6, 7, 8].map { $0 * one }
        for fast in [true, false] {
            XCTAssertEqual(runGemm(.nn, fast: fast, A, B, nil, 2, 2, 2),
                           Outcome(status: Q16_OK, out: [19, 22, 43, 50].map { $0 * one }, sat: 0))
            // A^T B with A = [[1,2],[3,4]]: [[1*5+3*7, 1*6+3*8], [2*5+4*7, 2*6+4*8]] = [[26,30],[38,44]]
            XCTAssertEqual(runGemm(.tn, fast: fast, A, B, nil, 2, 2, 2),
                           Outcome(status: Q16_OK, out: [26, 30, 38, 44].map { $0 * one }, sat: 0))
            // A B^T + bias: [[1*5+2*6, 1*7+2*8], [3*5+4*6, 3*7+4*8]] + [0.5, -1] = [[17.5,22],[39.5,52]]
            let bias: [Int32] = [one / 2, -one]
            XCTAssertEqual(runGemm(.nt, fast: fast, A, B, bias, 2, 2, 2),
                           Outcome(status: Q16_OK, out: [17 * one + one / 2, 22 * one, 39 * one + one / 2, 52 * one],
                                   sat: 0))
            // gemv: [[1,2],[3,4]] * [5,6] + [1, -1] = [18, 38]
            XCTAssertEqual(runGemv(fast: fast, A, [5 * one, 6 * one], [one, -one], 2, 2),
                           Outcome(status: Q16_OK, out: [18 * one, 38 * one], sat: 0))
            // Rounding at bit 16, ties away from zero: 1 LSB * 0.5 = 0.5 LSB -> 1 LSB; -0.5 LSB -> -1 LSB.
            XCTAssertEqual(runDot(fast: fast, [1], [one / 2]).out, [1])
            XCTAssertEqual(runDot(fast: fast, [-1], [one / 2]).out, [-1])
            XCTAssertEqual(runDot(fast: fast, [1], [one / 2 - 1]).out, [0]) // 0.49998 LSB -> 0
            XCTAssertEqual(runDot(fast: fast, [-1], [one / 2 - 1]).out, [0])
            XCTAssertEqual(runDot(fast: fast, [3], [one / 2]).out, [2]) // 1.5 LSB -> 2
            XCTAssertEqual(runDot(fast: fast, [-3], [one / 2]).out, [-2])
            // Rounding happens once on the exact sum: 0.5 LSB + 0.5 LSB = 1 LSB (twice-rounded would give 2).
            XCTAssertEqual(runDot(fast: fast, [1, 1], [one / 2, one / 2]).out, [1])
            // 0.39999 LSB summed 5 times = 1.99997 LSB -> 2 (rounding each product first would give 0).
            XCTAssertEqual(runDot(fast: fast, [1, 1, 1, 1, 1], [Int32](repeating: 26214, count: 5)).out, [2])
            // Saturation, counted once per output.
            XCTAssertEqual(runDot(fast: fast, [200 * one], [200 * one]), Outcome(status: Q16_OK, out: [qMax], sat: 1))
            XCTAssertEqual(runDot(fast: fast, [-200 * one], [200 * one]), Outcome(status: Q16_OK, out: [qMin], sat: 1))
            // The boundary: 32767.99998 * 1 = Q16_MAX exactly, -32768 * 1 = Q16_MIN exactly: not saturated.
            XCTAssertEqual(runDot(fast: fast, [qMax], [one]), Outcome(status: Q16_OK, out: [qMax], sat: 0))
            XCTAssertEqual(runDot(fast: fast, [qMin], [one]), Outcome(status: Q16_OK, out: [qMin], sat: 0))
            // Partial sums overflow int64 (2^62 + 2^62 = 2^63) but the exact total is 2^32 (Q32.32) = 1.0.
            // products: MIN*MIN = 2^62 (x2), MIN*MAX = -2^62 + 2^31 (x2): total 2^32.
            XCTAssertEqual(runDot(fast: fast, [qMin, qMin, qMin, qMin], [qMin, qMin, qMax, qMax]),
                           Outcome(status: Q16_OK, out: [one], sat: 0))
            // Every product is 2^62 (k=1: the int64 path; k=2: 2^63, the 128-bit fallback): saturates.
            for k in 1 ... 3 {
                let a = [Int32](repeating: qMin, count: 4 * k), b = [Int32](repeating: qMin, count: 4 * k)
                XCTAssertEqual(runGemm(.nn, fast: fast, a, b, nil, 4, 4, k),
                               Outcome(status: Q16_OK, out: [Int32](repeating: qMax, count: 16), sat: 16))
            }
        }
        // A bias alone that would be 2^47 (no products) stays exact: 0 * x + bias = bias.
        XCTAssertEqual(runGemm(.nt, fast: true, [0], [0], [qMin], 1, 1, 1), Outcome(status: Q16_OK, out: [qMin], sat: 0))
        XCTAssertEqual(runGemv(fast: true, [0], [0], [qMax], 1, 1), Outcome(status: Q16_OK, out: [qMax], sat: 0))
        // sat may be NULL.
        var c: [Int32] = [0]
        XCTAssertEqual(q16_gemm_nn(&c, [200 * one], [200 * one], 1, 1, 1, nil), Q16_OK)
        XCTAssertEqual(c, [qMax])
    }

    // MARK: fast == reference

    /// Compare fast and reference on one problem; every layout, plus gemv and dot on slices of it.
    private func compareAll(_ t: inout Tally, _ A: [Int32], _ B: [Int32], _ bias: [Int32], _ x: [Int32],
                            _ m: Int, _ n: Int, _ k: Int, _ tag: String)
    {
        for layout in Layout.allCases {
            let f = runGemm(layout, fast: true, A, B, nil, m, n, k)
            let r = runGemm(layout, fast: false, A, B, nil, m, n, k)
            t.check(f == r && f.status == Q16_OK, "\(layout) \(tag): fast sat \(f.sat) ref sat \(r.sat)")
        }
        let fb = runGemm(.nt, fast: true, A, B, bias, m, n, k)
        let rb = runGemm(.nt, fast: false, A, B, bias, m, n, k)
        t.check(fb == rb && fb.status == Q16_OK, "nt+bias \(tag)")
        // gemv: A as m x k, x[k], bias[m] (bias values reused)
        let gb = Array((0 ..< m).map { bias[$0 % bias.count] })
        t.check(runGemv(fast: true, A, x, gb, m, k) == runGemv(fast: false, A, x, gb, m, k), "gemv+bias \(tag)")
        t.check(runGemv(fast: true, A, x, nil, m, k) == runGemv(fast: false, A, x, nil, m, k), "gemv \(tag)")
        let a0 = Array(A[0 ..< k])
        t.check(runDot(fast: true, a0, x) == runDot(fast: false, a0, x), "dot \(tag)")
    }

    func testFastEqualsReferenceRandomShapes() {
        var rng = SplitMix64(seed: 0x6E6D_6D31)
        var t = Tally()
        let edges = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 67]
        for it in 0 ..< 600 {
            let m: Int, n: Int, k: Int
            if it % 2 == 0 {
                m = 1 + Int(rng.next() % 67); n = 1 + Int(rng.next() % 67); k = 1 + Int(rng.next() % 67)
            } else {
                m = edges[Int(rng.next() % UInt64(edges.count))]
                n = edges[Int(rng.next() % UInt64(edges.count))]
                k = edges[Int(rng.next() % UInt64(edges.count))]
            }
            let dA = Dist.allCases[it % Dist.allCases.count]
            // Mostly the same distribution for both operands; sometimes one full-range operand.
            let dB = it % 7 == 3 ? Dist.full : dA
            let A = fill(m * k, dA, &rng), B = fill(k * n, dB, &rng)
            let bias = fill(max(m, n), dA, &rng), x = fill(k, dB, &rng)
            compareAll(&t, A, B, bias, x, m, n, k, "m=\(m) n=\(n) k=\(k) \(dA)/\(dB)")
        }
        // Long k with few outputs (the dot-form kernels' tails), and k near the int64-safety limit.
        for k in [1, 2, 3, 255, 256, 257, 1000, 4099] {
            let A = fill(3 * k, .nn, &rng), B = fill(5 * k, .nn, &rng)
            compareAll(&t, A, B, fill(5, .nn, &rng), fill(k, .nn, &rng), 3, 5, k, "long k=\(k)")
        }
        t.assertClean("fast vs reference, random shapes")
    }

    /// Small-batch shapes of a dense layer (gemm_nt's packed-transpose path: m rows of A
    /// transposed into a stack block, several blocks when m * k is large), odd sizes 1...40,
    /// with and without bias; all layouts are compared with the reference.
    func testFastEqualsReferenceSmallBatchShapes() {
        var rng = SplitMix64(seed: 0x5B47_C432)
        var t = Tally()
        for it in 0 ..< 400 {
            let m = 1 + Int(rng.next() % 40), n = 1 + Int(rng.next() % 40), k = 1 + Int(rng.next() % 40)
            let d = Dist.allCases[it % Dist.allCases.count]
            compareAll(&t, fill(m * k, d, &rng), fill(k * n, d, &rng), fill(max(m, n), d, &rng),
                       fill(k, d, &rng), m, n, k, "small m=\(m) n=\(n) k=\(k) \(d)")
        }
        let shapes: [(Int, Int, Int)] = [(32, 128, 64), (32, 128, 128), (32, 10, 128), (32, 64, 129), (31, 33, 127),
                                         (33, 40, 128), (100, 37, 100), (97, 64, 120), (200, 50, 41), (8, 9, 512),
                                         (9, 300, 455), (64, 17, 64)]
        for (m, n, k) in shapes {
            for d in [Dist.nn, .wide, .scales] {
                compareAll(&t, fill(m * k, d, &rng), fill(k * n, d, &rng), fill(max(m, n), d, &rng),
                           fill(k, d, &rng), m, n, k, "batch m=\(m) n=\(n) k=\(k) \(d)")
            }
        }
        t.assertClean("fast vs reference, small-batch shapes")
    }

    func testFastEqualsReferenceLargeSizes() {
        var rng = SplitMix64(seed: 0x0B16_0256)
        var t = Tally()
        for (size, dist) in [(64, Dist.nn), (128, .nn), (256, .nn), (64, .full), (128, .wide), (256, .scales)] {
            let A = fill(size * size, dist, &rng), B = fill(size * size, dist, &rng)
            compareAll(&t, A, B, fill(size, dist, &rng), fill(size, dist, &rng), size, size, size,
                       "\(size)^3 \(dist)")
        }
        // Rectangular shapes of a dense layer: batch x in -> batch x out.
        let shapes: [(Int, Int, Int)] = [(32, 10, 784), (32, 128, 784), (128, 64, 33), (1, 256, 256), (256, 1, 256)]
        for (m, n, k) in shapes {
            compareAll(&t, fill(m * k, .nn, &rng), fill(k * n, .nn, &rng), fill(max(m, n), .nn, &rng),
                       fill(k, .nn, &rng), m, n, k, "rect m=\(m) n=\(n) k=\(k)")
        }
        t.assertClean("fast vs reference, large sizes")
    }

    // MARK: reference == exact model

    func testReferenceMatchesExactModel() {
        var rng = SplitMix64(seed: 0xE8AC_7128)
        var t = Tally()
        var satSeen: UInt64 = 0
        var within = 0
        for it in 0 ..< 200 {
            let m = 1 + Int(rng.next() % 23), n = 1 + Int(rng.next() % 23), k = 1 + Int(rng.next() % 41)
            let d = Dist.allCases[it % Dist.allCases.count]
            let A = fill(m * k, d, &rng), B = fill(k * n, d, &rng), bias = fill(n, d, &rng)
            for layout in Layout.allCases {
                let useBias = layout == .nt && it % 2 == 0
                let want = exactGemm(layout, A, B, useBias ? bias : nil, m, n, k)
                for fast in [false, true] {
                    let got = runGemm(layout, fast: fast, A, B, useBias ? bias : nil, m, n, k)
                    t.check(got.status == Q16_OK && got.out == want.c && got.sat == want.sat,
                            "\(layout) fast=\(fast) m=\(m) n=\(n) k=\(k) \(d): sat \(got.sat) want \(want.sat)")
                }
                satSeen += want.sat
                // Error against the real-valued result: <= 0.5 LSB unless saturated (then exactly MIN/MAX).
                let got = runGemm(layout, fast: false, A, B, useBias ? bias : nil, m, n, k)
                for e in 0 ..< m * n {
                    let acc = want.acc[e]
                    if acc > Int128(qMax) << 16 + 0x7FFF {
                        t.check(got.out[e] == qMax, "positive overflow must give Q16_MAX")
                    } else if acc <= Int128(qMin) << 16 - 0x8000 {
                        t.check(got.out[e] == qMin, "negative overflow must give Q16_MIN")
                    } else {
                        // |got * 2^16 - acc| <= 2^15 exactly (0.5 LSB), in exact integers.
                        let diff = Int128(got.out[e]) << 16 - acc
                        t.check(diff >= -0x8000 && diff <= 0x8000, "error > 0.5 LSB: \(diff)")
                        within += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(satSeen, 0, "the full-range cases should saturate some outputs")
        XCTAssertGreaterThan(within, 1000)
        t.assertClean("reference vs exact Int128 model")
    }

    func testSmallValuesWithinHalfLSBOfDouble() {
        // For |x| <= 1 every product and every sum here is exact in double,
        // so the double result is the exact value.
        var rng = SplitMix64(seed: 0xD0_0B1E)
        var t = Tally()
        var maxErr = 0.0
        for _ in 0 ..< 40 {
            let m = 1 + Int(rng.next() % 19), n = 1 + Int(rng.next() % 19), k = 1 + Int(rng.next() % 67)
            let A = fill(m * k, .nn, &rng), B = fill(k * n, .nn, &rng), bias = fill(n, .nn, &rng)
            let got = runGemm(.nt, fast: true, A, B, bias, m, n, k)
            for i in 0 ..< m {
                for j in 0 ..< n {
                    var s = Double(bias[j]) / 65536
                    for p in 0 ..< k { s += (Double(A[i * k + p]) / 65536) * (Double(B[j * k + p]) / 65536) }
                    let err = abs(Double(got.out[i * n + j]) - s * 65536) // in LSB
                    maxErr = max(maxErr, err)
                    t.check(err <= 0.5, "nt m=\(m) n=\(n) k=\(k) (\(i),\(j)): error \(err) LSB")
                }
            }
            t.check(got.sat == 0, "no saturation expected")
        }
        XCTAssertLessThanOrEqual(maxErr, 0.5)
        t.assertClean("within 0.5 LSB of double")
    }

    // MARK: ReLU

    func testRelu() {
        let x: [Int32] = [qMin, -65536, -1, 0, 1, 65536, qMax, -7, 42]
        let want: [Int32] = [0, 0, 0, 0, 1, 65536, qMax, 0, 42]
        var out = [Int32](repeating: 99, count: x.count)
        XCTAssertEqual(q16_relu(&out, x, Int32(x.count)), Q16_OK)
        XCTAssertEqual(out, want)
        // In place.
        var inPlace = x
        let st = inPlace.withUnsafeMutableBufferPointer { q16_relu($0.baseAddress, $0.baseAddress, Int32($0.count)) }
        XCTAssertEqual(st, Q16_OK)
        XCTAssertEqual(inPlace, want)
        // Backward: delta kept where act > 0.
        let act: [Int32] = [qMin, -1, 0, 1, qMax, 5, 0, -3, 8]
        var delta: [Int32] = [11, 12, 13, 14, 15, qMin, qMax, 18, -19]
        XCTAssertEqual(q16_relu_backward(&delta, act, Int32(act.count)), Q16_OK)
        XCTAssertEqual(delta, [0, 0, 0, 14, 15, qMin, 0, 0, -19])
        // Long random vector, including the vectorised body.
        var rng = SplitMix64(seed: 0x4E1)
        let xs = fill(1037, .scales, &rng)
        var ys = [Int32](repeating: 0, count: xs.count)
        XCTAssertEqual(q16_relu(&ys, xs, Int32(xs.count)), Q16_OK)
        XCTAssertEqual(ys, xs.map { max($0, 0) })
        var ds = fill(1037, .full, &rng)
        let before = ds
        XCTAssertEqual(q16_relu_backward(&ds, xs, Int32(xs.count)), Q16_OK)
        XCTAssertEqual(ds, zip(before, xs).map { $1 > 0 ? $0 : 0 })
        // Errors.
        XCTAssertEqual(q16_relu(nil, x, 3), Q16_ERR_NULL)
        XCTAssertEqual(q16_relu(&out, nil, 3), Q16_ERR_NULL)
        XCTAssertEqual(q16_relu(&out, x, 0), Q16_ERR_SIZE)
        XCTAssertEqual(q16_relu(&out, x, -1), Q16_ERR_SIZE)
        XCTAssertEqual(q16_relu_backward(nil, act, 3), Q16_ERR_NULL)
        XCTAssertEqual(q16_relu_backward(&delta, nil, 3), Q16_ERR_NULL)
        XCTAssertEqual(q16_relu_backward(&delta, act, 0), Q16_ERR_SIZE)
        var buf = [Int32](repeating: -5, count: 8)
        buf.withUnsafeMutableBufferPointer { p in
            let b = p.baseAddress!
            XCTAssertEqual(q16_relu(b + 1, b, 4), Q16_ERR_OVERLAP) // partial overlap
            XCTAssertEqual(q16_relu(b, b + 3, 4), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_relu_backward(b + 2, b, 4), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_relu(b + 4, b, 4), Q16_OK) // adjacent is fine
        }
        XCTAssertEqual(buf, [-5, -5, -5, -5, 0, 0, 0, 0])
    }

    // MARK: updates

    func testUpdateSRMatchesModel() {
        var rng = SplitMix64(seed: 0x5_6D00)
        var t = Tally()
        for it in 0 ..< 40 {
            let n = 1 + Int(rng.next() % 300)
            let d = Dist.allCases[it % Dist.allCases.count]
            var w = fill(n, d, &rng)
            let g = fill(n, it % 3 == 0 ? .full : d, &rng)
            let lr = it % 4 == 0 ? UInt32.max : rng.nextU32()
            let seed = rng.next(), counter = rng.next()
            // model
            var want = w
            var wantSat: UInt64 = 0
            for i in 0 ..< n {
                let rnd = q16_rng_u32(seed, counter &+ UInt64(i))
                let step = srModel(Int128(Int64(g[i]) * Int64(lr)), shift: 32, rnd: rnd)
                let r = clampQ16(Int128(w[i]) - step)
                want[i] = r.value
                if r.saturated { wantSat += 1 }
            }
            var sat: UInt64 = 0
            let st = q16_update_sr(&w, g, lr, Int32(n), seed, counter, &sat)
            t.check(st == Q16_OK && w == want && sat == wantSat, "update_sr n=\(n) \(d): sat \(sat) want \(wantSat)")
        }
        // Element i uses counter + i: two half calls equal one call.
        let g = fill(100, .nn, &rng)
        var w1 = fill(100, .nn, &rng)
        var w2 = w1
        XCTAssertEqual(q16_update_sr(&w1, g, 0x1234_5678, 100, 7, 1000, nil), Q16_OK)
        w2.withUnsafeMutableBufferPointer { p in
            g.withUnsafeBufferPointer { q in
                XCTAssertEqual(q16_update_sr(p.baseAddress, q.baseAddress, 0x1234_5678, 40, 7, 1000, nil), Q16_OK)
                XCTAssertEqual(q16_update_sr(p.baseAddress! + 40, q.baseAddress! + 40, 0x1234_5678, 60, 7, 1040, nil),
                               Q16_OK)
            }
        }
        XCTAssertEqual(w1, w2)
        t.assertClean("update_sr vs model")
    }

    func testMomentumMatchesModel() {
        var rng = SplitMix64(seed: 0x30_3E47)
        var t = Tally()
        for it in 0 ..< 40 {
            let n = 1 + Int(rng.next() % 200)
            let d = Dist.allCases[it % Dist.allCases.count]
            var w = fill(n, d, &rng), v = fill(n, d, &rng)
            let g = fill(n, d, &rng)
            let mu = it % 5 == 0 ? UInt32.max : rng.nextU32(), lr = rng.nextU32()
            let seed = rng.next(), counter = rng.next()
            var ww = w, wv = v
            var wantSat: UInt64 = 0
            for i in 0 ..< n {
                let r1 = q16_rng_u32(seed, counter &+ UInt64(i))
                let r2 = q16_rng_u32(seed, counter &+ UInt64(n) &+ UInt64(i))
                let nv = clampQ16(srModel(Int128(Int64(v[i]) * Int64(mu)), shift: 32, rnd: r1) + Int128(g[i]))
                if nv.saturated { wantSat += 1 }
                wv[i] = nv.value
                let nw = clampQ16(Int128(w[i]) - srModel(Int128(Int64(nv.value) * Int64(lr)), shift: 32, rnd: r2))
                if nw.saturated { wantSat += 1 }
                ww[i] = nw.value
            }
            var sat: UInt64 = 0
            let st = q16_update_momentum_sr(&w, &v, g, mu, lr, Int32(n), seed, counter, &sat)
            t.check(st == Q16_OK && w == ww && v == wv && sat == wantSat,
                    "momentum n=\(n) \(d): sat \(sat) want \(wantSat)")
        }
        t.assertClean("momentum vs model")
    }

    /// The Swift model of q16_update_outer_sr (exact Int128 arithmetic).
    private func outerModel(_ W: [Int32], _ bias: [Int32]?, _ dY: [Int32], _ X: [Int32], _ lr: UInt32,
                            _ batch: Int, _ m: Int, _ n: Int, _ seed: UInt64, _ counter: UInt64)
        -> (W: [Int32], bias: [Int32]?, sat: UInt64)
    {
        var w = W
        var sat: UInt64 = 0
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s: Int128 = 0
                for b in 0 ..< batch { s += Int128(Int64(dY[b * m + i]) * Int64(X[b * n + j])) }
                let rnd = q16_rng_u32(seed, counter &+ UInt64(i * n + j))
                let r = clampQ16(Int128(w[i * n + j]) - srModel(s * Int128(lr), shift: 48, rnd: rnd))
                w[i * n + j] = r.value
                if r.saturated { sat += 1 }
            }
        }
        var nb = bias
        if let bias {
            for i in 0 ..< m {
                var s: Int128 = 0
                for b in 0 ..< batch { s += Int128(dY[b * m + i]) }
                let rnd = q16_rng_u32(seed, counter &+ UInt64(m * n + i))
                let r = clampQ16(Int128(bias[i]) - srModel(s * Int128(lr), shift: 32, rnd: rnd))
                nb![i] = r.value
                if r.saturated { sat += 1 }
            }
        }
        return (w, nb, sat)
    }

    func testUpdateOuterMatchesModel() {
        var rng = SplitMix64(seed: 0x0_07E2)
        var t = Tally()
        for it in 0 ..< 120 {
            let batch = 1 + Int(rng.next() % 9), m = 1 + Int(rng.next() % 13), n = 1 + Int(rng.next() % 37)
            let d = Dist.allCases[it % Dist.allCases.count]
            // Full-range dY and X with batch >= 2 overflow int64 row sums: the exact 128-bit path.
            var W = fill(m * n, d, &rng)
            var bias: [Int32]? = it % 3 == 2 ? nil : fill(m, d, &rng)
            let dY = fill(batch * m, d, &rng), X = fill(batch * n, d, &rng)
            let lr = it % 4 == 1 ? UInt32.max : rng.nextU32()
            let seed = rng.next(), counter = rng.next()
            let want = outerModel(W, bias, dY, X, lr, batch, m, n, seed, counter)
            var scratch = [Int64](repeating: 0x77, count: n)
            XCTAssertEqual(q16_update_outer_sr_buffer_size(Int32(n)), 8 * n)
            var sat: UInt64 = 0
            let st: q16_status
            if bias != nil {
                st = q16_update_outer_sr(&W, &bias!, &scratch, dY, X, lr, Int32(batch), Int32(m), Int32(n),
                                         seed, counter, &sat)
            } else {
                st = q16_update_outer_sr(&W, nil, &scratch, dY, X, lr, Int32(batch), Int32(m), Int32(n),
                                         seed, counter, &sat)
            }
            t.check(st == Q16_OK && W == want.W && bias == want.bias && sat == want.sat,
                    "outer batch=\(batch) m=\(m) n=\(n) \(d): sat \(sat) want \(want.sat)")
        }
        // A dense-layer-sized case with NN-like values.
        do {
            let batch = 32, m = 64, n = 200
            var W = fill(m * n, .nn, &rng), bias: [Int32] = fill(m, .nn, &rng)
            let dY = fill(batch * m, .nn, &rng).map { $0 / 16 }, X = fill(batch * n, .nn, &rng).map { max($0, 0) }
            let want = outerModel(W, bias, dY, X, 42_949_673, batch, m, n, 99, 12345) // lr ~ 0.01
            var scratch = [Int64](repeating: 0, count: n)
            var sat: UInt64 = 0
            XCTAssertEqual(q16_update_outer_sr(&W, &bias, &scratch, dY, X, 42_949_673, Int32(batch), Int32(m),
                                               Int32(n), 99, 12345, &sat), Q16_OK)
            t.check(W == want.W && bias == want.bias! && sat == want.sat, "outer dense 32x64x200")
        }
        t.assertClean("update_outer_sr vs model")
    }

    func testStochasticRoundingIsUnbiased() {
        // A step of 0.3 LSB: round-to-nearest would never move w; SR moves it by
        // 1 LSB with probability 0.3, so the mean step is 0.3 LSB.
        let n = 100_000
        let lr = UInt32(0.3 * 4_294_967_296.0) // 0.3 in Q0.32
        let exact = Double(lr) / 4_294_967_296.0 // the exact step in LSB (g = 1 LSB)
        for sign: Int32 in [1, -1] {
            var w = [Int32](repeating: 0, count: n)
            let g = [Int32](repeating: sign, count: n)
            XCTAssertEqual(q16_update_sr(&w, g, lr, Int32(n), 2024, 0, nil), Q16_OK)
            let mean = -Double(w.reduce(0) { $0 + Int64($1) }) / Double(n) // mean step
            XCTAssertEqual(mean, Double(sign) * exact, accuracy: 0.03 * exact, "update_sr SR mean, sign \(sign)")
            XCTAssertTrue(w.allSatisfy { $0 == 0 || $0 == -sign }, "steps are 0 or 1 LSB")
        }
        // Fused outer update: s = 2 * 2^7 * 2^7 = 2^15 (Q32.32), lr = 0.5: step = 2^15 * 2^31 / 2^48 = 0.25 LSB.
        do {
            let batch = 2, m = 32, n = 1000
            var W = [Int32](repeating: 100, count: m * n)
            var bias = [Int32](repeating: 0, count: m)
            let dY = [Int32](repeating: 128, count: batch * m), X = [Int32](repeating: 128, count: batch * n)
            var scratch = [Int64](repeating: 0, count: n)
            XCTAssertEqual(q16_update_outer_sr(&W, &bias, &scratch, dY, X, 1 << 31, Int32(batch), Int32(m), Int32(n),
                                               77, 5, nil), Q16_OK)
            let mean = Double(W.reduce(0) { $0 + Int64(100 - $1) }) / Double(m * n)
            XCTAssertEqual(mean, 0.25, accuracy: 0.01, "outer SR mean")
            // bias step = 0.5 * (128 + 128) LSB = 128 LSB exactly: no randomness left.
            XCTAssertEqual(bias, [Int32](repeating: -128, count: m))
        }
        // Momentum: v = SR(0.5 * 1 LSB) + 0 -> mean 0.5 LSB.
        do {
            var w = [Int32](repeating: 0, count: n), v = [Int32](repeating: 1, count: n)
            let g = [Int32](repeating: 0, count: n)
            XCTAssertEqual(q16_update_momentum_sr(&w, &v, g, 1 << 31, 0, Int32(n), 3, 0, nil), Q16_OK)
            let mean = Double(v.reduce(0) { $0 + Int64($1) }) / Double(n)
            XCTAssertEqual(mean, 0.5, accuracy: 0.015, "momentum SR mean")
            XCTAssertEqual(w, [Int32](repeating: 0, count: n), "lr = 0 leaves w unchanged")
        }
    }

    // MARK: errors

    func testGemmErrors() {
        let A = [Int32](repeating: one, count: 64), B = [Int32](repeating: one, count: 64)
        let sentinel: Int32 = 0x1234_5678
        var C = [Int32](repeating: sentinel, count: 64)
        var sat: UInt64 = 0
        typealias G = (UnsafeMutablePointer<Int32>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32, Int32, Int32,
                       UnsafeMutablePointer<UInt64>?) -> q16_status
        let kernels: [(String, G)] = [
            ("nn", q16_gemm_nn), ("tn", q16_gemm_tn), ("ref_nn", q16_ref_gemm_nn), ("ref_tn", q16_ref_gemm_tn),
            ("nt", { q16_gemm_nt($0, nil, $1, $2, nil, $3, $4, $5, $6) }),
            ("ref_nt", { q16_ref_gemm_nt($0, $1, $2, nil, $3, $4, $5, $6) }),
        ]
        for (name, f) in kernels {
            C.withUnsafeMutableBufferPointer { cp in
                let c = cp.baseAddress!
                A.withUnsafeBufferPointer { ap in
                    B.withUnsafeBufferPointer { bp in
                        let a = ap.baseAddress!, b = bp.baseAddress!
                        XCTAssertEqual(f(nil, a, b, 2, 2, 2, &sat), Q16_ERR_NULL, name)
                        XCTAssertEqual(f(c, nil, b, 2, 2, 2, &sat), Q16_ERR_NULL, name)
                        XCTAssertEqual(f(c, a, nil, 2, 2, 2, &sat), Q16_ERR_NULL, name)
                        XCTAssertEqual(f(nil, a, b, 0, 2, 2, &sat), Q16_ERR_NULL, "\(name): NULL is checked first")
                        XCTAssertEqual(f(c, a, b, 0, 2, 2, &sat), Q16_ERR_SIZE, name)
                        XCTAssertEqual(f(c, a, b, 2, 0, 2, &sat), Q16_ERR_SIZE, name)
                        XCTAssertEqual(f(c, a, b, 2, 2, 0, &sat), Q16_ERR_SIZE, name)
                        XCTAssertEqual(f(c, a, b, -1, 2, 2, &sat), Q16_ERR_SIZE, name)
                        XCTAssertEqual(f(c, a, b, 2, -5, 2, &sat), Q16_ERR_SIZE, name)
                        XCTAssertEqual(f(c, a, b, 2, 2, Int32.min, &sat), Q16_ERR_SIZE, name)
                        // products of dimensions overflowing int (buffers are never touched)
                        XCTAssertEqual(f(c, a, b, 65536, 1, 65536, &sat), Q16_ERR_SIZE, "\(name) m*k")
                        XCTAssertEqual(f(c, a, b, 1, 65536, 65536, &sat), Q16_ERR_SIZE, "\(name) k*n")
                        XCTAssertEqual(f(c, a, b, 65536, 65536, 1, &sat), Q16_ERR_SIZE, "\(name) m*n")
                        XCTAssertEqual(f(c, a, b, Int32.max, 2, 1, &sat), Q16_ERR_SIZE, "\(name) m*n")
                        // overlap of the output with an input
                        XCTAssertEqual(f(c, UnsafePointer(c), b, 2, 2, 2, &sat), Q16_ERR_OVERLAP, name)
                        XCTAssertEqual(f(c, a, UnsafePointer(c), 2, 2, 2, &sat), Q16_ERR_OVERLAP, name)
                        XCTAssertEqual(f(c + 3, UnsafePointer(c), b, 2, 2, 2, &sat), Q16_ERR_OVERLAP, name)
                        XCTAssertEqual(f(c, UnsafePointer(c + 3), b, 2, 2, 2, &sat), Q16_ERR_OVERLAP, name)
                    }
                }
            }
            XCTAssertEqual(C, [Int32](repeating: sentinel, count: 64), "\(name): nothing written on error")
            XCTAssertEqual(sat, 0)
            // Exactly adjacent ranges do not overlap.
            C.withUnsafeMutableBufferPointer { cp in
                let c = cp.baseAddress!
                for i in 0 ..< 8 { c[i] = one }
                XCTAssertEqual(f(c + 8, UnsafePointer(c), UnsafePointer(c + 4), 2, 2, 2, &sat), Q16_OK, name)
                XCTAssertEqual(Array(cp[8 ..< 12]), [2 * one, 2 * one, 2 * one, 2 * one], name)
            }
            C = [Int32](repeating: sentinel, count: 64)
        }
        // gemm_nt: the output must not overlap the bias either.
        C.withUnsafeMutableBufferPointer { cp in
            let c = cp.baseAddress!
            XCTAssertEqual(q16_gemm_nt(c, nil, A, B, UnsafePointer(c + 3), 2, 2, 2, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_ref_gemm_nt(c, A, B, UnsafePointer(c + 3), 2, 2, 2, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_gemm_nt(c, nil, A, B, UnsafePointer(c + 4), 2, 2, 2, nil), Q16_OK)
        }
        // gemv and dot.
        var y = [Int32](repeating: sentinel, count: 8)
        for fast in [true, false] {
            let gemv = fast ? q16_gemv : q16_ref_gemv
            let dot = fast ? q16_dot : q16_ref_dot
            XCTAssertEqual(gemv(nil, A, B, nil, 2, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(gemv(&y, nil, B, nil, 2, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(gemv(&y, A, nil, nil, 2, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(gemv(&y, A, B, nil, 0, 2, nil), Q16_ERR_SIZE)
            XCTAssertEqual(gemv(&y, A, B, nil, 2, 0, nil), Q16_ERR_SIZE)
            XCTAssertEqual(gemv(&y, A, B, nil, 65536, 65536, nil), Q16_ERR_SIZE)
            XCTAssertEqual(dot(nil, A, B, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(dot(&y, nil, B, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(dot(&y, A, nil, 2, nil), Q16_ERR_NULL)
            XCTAssertEqual(dot(&y, A, B, 0, nil), Q16_ERR_SIZE)
            XCTAssertEqual(dot(&y, A, B, -3, nil), Q16_ERR_SIZE)
            y.withUnsafeMutableBufferPointer { yp in
                let p = yp.baseAddress!
                XCTAssertEqual(gemv(p, UnsafePointer(p + 1), B, nil, 2, 2, nil), Q16_ERR_OVERLAP)
                XCTAssertEqual(gemv(p + 1, A, UnsafePointer(p), nil, 2, 2, nil), Q16_ERR_OVERLAP)
                XCTAssertEqual(gemv(p, A, B, UnsafePointer(p + 1), 2, 2, nil), Q16_ERR_OVERLAP)
                XCTAssertEqual(dot(p + 1, UnsafePointer(p), B, 2, nil), Q16_ERR_OVERLAP)
                XCTAssertEqual(dot(p, A, UnsafePointer(p), 2, nil), Q16_ERR_OVERLAP)
            }
            XCTAssertEqual(y, [Int32](repeating: sentinel, count: 8), "nothing written on error")
        }
    }

    func testUpdateErrors() {
        var w = [Int32](repeating: 5, count: 16), v = [Int32](repeating: 6, count: 16)
        let g = [Int32](repeating: one, count: 16)
        var scratch = [Int64](repeating: 0, count: 16)
        var bias = [Int32](repeating: 7, count: 4)
        XCTAssertEqual(q16_update_sr(nil, g, 1, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_sr(&w, nil, 1, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_sr(&w, g, 1, 0, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_sr(&w, g, 1, -4, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_momentum_sr(nil, &v, g, 1, 1, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_momentum_sr(&w, nil, g, 1, 1, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_momentum_sr(&w, &v, nil, 1, 1, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_momentum_sr(&w, &v, g, 1, 1, 0, 0, 0, nil), Q16_ERR_SIZE)
        // update_outer_sr: W[4 x 4], dY[2 x 4], X[2 x 4]
        XCTAssertEqual(q16_update_outer_sr(nil, &bias, &scratch, g, g, 1, 2, 4, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, nil, g, g, 1, 2, 4, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, nil, g, 1, 2, 4, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, nil, 1, 2, 4, 4, 0, 0, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, g, 1, 0, 4, 4, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, g, 1, 2, 0, 4, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, g, 1, 2, 4, -4, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, g, 1, 65536, 65536, 1, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr(&w, &bias, &scratch, g, g, 1, 1, 65536, 65536, 0, 0, nil), Q16_ERR_SIZE)
        XCTAssertEqual(q16_update_outer_sr_buffer_size(0), 0)
        XCTAssertEqual(q16_update_outer_sr_buffer_size(-1), 0)
        XCTAssertEqual(q16_update_outer_sr_buffer_size(1000), 8000)
        // overlaps
        w.withUnsafeMutableBufferPointer { wp in
            let p = wp.baseAddress!
            XCTAssertEqual(q16_update_sr(p, UnsafePointer(p + 2), 1, 4, 0, 0, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_sr(p, UnsafePointer(p), 1, 4, 0, 0, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_momentum_sr(p, p + 3, g, 1, 1, 4, 0, 0, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_momentum_sr(p + 8, &v, UnsafePointer(p + 5), 1, 1, 4, 0, 0, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_outer_sr(p, nil, &scratch, UnsafePointer(p + 15), g, 1, 2, 4, 4, 0, 0, nil),
                           Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_outer_sr(p, p + 15, &scratch, g, g, 1, 2, 4, 4, 0, 0, nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_outer_sr(p, nil, &scratch, g, UnsafePointer(p + 2), 1, 2, 2, 2, 0, 0, nil),
                           Q16_ERR_OVERLAP)
        }
        v.withUnsafeMutableBufferPointer { vp in
            // scratch (16 bytes for n = 2) overlapping X
            let raw = UnsafeMutableRawPointer(vp.baseAddress!).assumingMemoryBound(to: Int64.self)
            XCTAssertEqual(q16_update_outer_sr(&bias, nil, raw, g, UnsafePointer(vp.baseAddress! + 3), 1, 1, 2, 2, 0, 0,
                                               nil), Q16_ERR_OVERLAP)
            XCTAssertEqual(q16_update_outer_sr(&bias, nil, raw + 1, g, UnsafePointer(vp.baseAddress! + 1), 1, 1, 2, 2,
                                               0, 0, nil), Q16_ERR_OVERLAP)
        }
        XCTAssertEqual(w, [Int32](repeating: 5, count: 16), "nothing written on error")
        XCTAssertEqual(v, [Int32](repeating: 6, count: 16))
        XCTAssertEqual(bias, [Int32](repeating: 7, count: 4))
    }
}
