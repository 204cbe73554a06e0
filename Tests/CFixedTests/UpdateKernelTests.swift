// UpdateKernelTests.swift -- C-level tests of the kernels issue 10 changed:
// q16_update_pull_sr, q16_colsum, q16_shift_sr, q16_update_outer_riemannian_sr
// and the caller scratch of q16_gemm_nt.
//
// Every kernel result is compared with an exact model written here from the
// formulas in q16.h (Swift Int128: no intermediate can overflow), over seeded
// random inputs AND the extremes (Q16_MIN, Q16_MAX, 0, +-1, batches large
// enough to reach every documented clamp). The models draw their random words
// from q16_rng_u32 with the documented streams and counters, so stochastic
// roundings are compared bit for bit. Saturation counts are compared exactly
// (each call starts from a non-zero count, so "adds" is checked too).
// Statistical checks (SR is unbiased) use a 6-sigma bound computed from the
// exact Bernoulli variance. Loops count checks and keep the first failure
// (an XCTAssert per element is slow in debug builds); each test prints its
// number of checks.

import CFixed
import XCTest

/// The check log of this file (shared CheckLog, lines printed as "UpdateKernelTests: ...").
private extension CheckLog {
    init(_ name: String) { self.init(suite: "UpdateKernelTests", name: name) }
}

// Exact arithmetic models (srExact, clampCount, divNearest), value generators (Spread, values, rate):
// TestSupport.swift. mulNearest, bounded, UpdateOutcome and the exact model of the Riemannian rule:
// RiemannTestSupport.swift.

// MARK: - Riemannian kernel: inputs, runner, model

/// The dense layer of q16_update_outer_riemannian_sr: W[m x n] += outer products of dY[batch x m] and X[batch x n].
private struct DenseShape: CustomStringConvertible {
    var batch = 1, m = 1, n = 1

    var description: String { "batch=\(batch) m=\(m) n=\(n)" }
}

private typealias DenseCase = RiemannCase<DenseShape>

private func runRiemann(_ c: DenseCase) -> UpdateOutcome {
    let s = c.shape
    var W = c.W, bias = c.bias, phi = c.phi
    var scratch = [Int64](repeating: 0x5EED, count: s.n)
    var sat = satStart
    let st = W.withUnsafeMutableBufferPointer { wp in
        withOptionalBase(&bias) { bp in
            withOptionalBase(&phi) { pp in
                q16_update_outer_riemannian_sr(wp.baseAddress, bp, pp, &scratch, c.dY, c.X, c.lr, c.gscale, c.alpha,
                                               c.rho, c.kind, Int32(s.batch), Int32(s.m), Int32(s.n), c.seed,
                                               c.counter, &sat)
            }
        }
    }
    return UpdateOutcome(status: st, W: W, bias: bias, phi: phi, sat: sat - satStart)
}

/// q16_update_outer_sr on the same W, bias, dY, X, lr, seed and counter (phi passed through).
private func runOuter(_ c: DenseCase) -> UpdateOutcome {
    let s = c.shape
    var W = c.W, bias = c.bias
    var scratch = [Int64](repeating: 0x5EED, count: s.n)
    var sat = satStart
    let st = W.withUnsafeMutableBufferPointer { wp in
        withOptionalBase(&bias) { bp in
            q16_update_outer_sr(wp.baseAddress, bp, &scratch, c.dY, c.X, c.lr, Int32(s.batch), Int32(s.m),
                                Int32(s.n), c.seed, c.counter, &sat)
        }
    }
    return UpdateOutcome(status: st, W: W, bias: bias, phi: c.phi, sat: sat - satStart)
}

/// The documented formulas of q16_update_outer_riemannian_sr (RiemannCase.exactModel) on the exact sums
/// s[i][j] = sum_b dY[b][i] X[b][j] and sum_b dY[b][i]; `metricSat` is the part of the count from g, g^2, phi
/// and alpha * phi (q16_update_outer_sr has none).
private func riemannModel(_ c: DenseCase) -> (result: UpdateOutcome, metricSat: UInt64) {
    let (batch, m, n) = (c.shape.batch, c.shape.m, c.shape.n)
    var ws = [Int128](repeating: 0, count: m * n), bs = [Int128](repeating: 0, count: m)
    for b in 0 ..< batch {
        for i in 0 ..< m {
            bs[i] += Int128(c.dY[b * m + i])
            for j in 0 ..< n { ws[i * n + j] += Int128(c.dY[b * m + i]) * Int128(c.X[b * n + j]) }
        }
    }
    let model = c.exactModel(weightSums: ws, biasSums: bs)
    return (model.result, model.metricSat)
}

/// A random Riemannian problem (RiemannCase.drawRandom) with dY and X given.
private func randomRiemannCase(_ rng: inout SplitMix64, kind: q16_phi_kind, batch: Int, m: Int, n: Int,
                               dY: [Int32], X: [Int32], alpha: Int32) -> DenseCase
{
    var c = DenseCase(shape: DenseShape(batch: batch, m: m, n: n), W: [], dY: dY, X: X)
    c.drawRandom(&rng, weights: m * n, biases: m, batch: batch, kind: kind, alpha: alpha)
    return c
}

/// `count` random Riemannian cases on one log named `name`, from a generator seeded with `seed`: `check`
/// draws case `it`, checks it and returns the saturations its model counted; over all cases some must
/// occur (`saturates` says which).
private func checkRandomRiemannCases(_ name: String, seed: UInt64, count: Int, saturates: String,
                                     file: StaticString = #filePath, line: UInt = #line,
                                     _ check: (_ it: Int, _ rng: inout SplitMix64, _ log: inout CheckLog) -> UInt64)
{
    var rng = SplitMix64(seed: seed)
    var log = CheckLog(name)
    var saturated: UInt64 = 0
    for it in 0 ..< count { saturated += check(it, &rng, &log) }
    log.expect(saturated > 0, saturates)
    log.finish(file: file, line: line)
}

private extension CheckLog {
    /// A Riemannian result against the model's, field by field: status, W, bias, phi and the count.
    mutating func expectUpdate(_ got: UpdateOutcome, equals want: UpdateOutcome, _ tag: String) {
        expectEqual(got.status, Q16_OK, tag)
        expectEqual(got.W, want.W, "\(tag): W")
        expectEqual(got.bias, want.bias, "\(tag): bias")
        expectEqual(got.phi, want.phi, "\(tag): phi")
        expectEqual(got.sat, want.sat, "\(tag): saturation count")
    }
}

// MARK: - Tests

final class UpdateKernelTests: XCTestCase {
    // MARK: q16_update_pull_sr

    /// Exact model: step = floor(v / 2^32) + (frac32 > q16_rng_u32(seed, counter + i)), v = (w - w0) rate.
    private func pullModel(_ w: [Int32], _ w0: [Int32], _ rate: UInt32, _ seed: UInt64, _ counter: UInt64)
        -> (w: [Int32], unclamped: [Int128], sat: UInt64)
    {
        var out = w, raw = [Int128](repeating: 0, count: w.count)
        var sat: UInt64 = 0
        for i in 0 ..< w.count {
            let v = (Int128(w[i]) - Int128(w0[i])) * Int128(rate)
            raw[i] = Int128(w[i]) - srExact(v, 32, q16_rng_u32(seed, counter &+ UInt64(i)))
            out[i] = clampCount(raw[i], &sat)
        }
        return (out, raw, sat)
    }

    private func runPull(_ w: [Int32], _ w0: [Int32], _ rate: UInt32, _ seed: UInt64, _ counter: UInt64)
        -> (status: q16_status, w: [Int32], sat: UInt64)
    {
        var out = w
        var sat = satStart
        let st = q16_update_pull_sr(&out, w0, rate, Int32(w.count), seed, counter, &sat)
        return (st, out, sat - satStart)
    }

    func testPullMatchesExactModel() {
        var rng = SplitMix64(seed: 0x9A11_5EED)
        var log = CheckLog("pull_sr vs exact model")
        var moved = 0
        func check(_ w: [Int32], _ w0: [Int32], _ rate: UInt32, _ seed: UInt64, _ counter: UInt64, _ tag: String) {
            let want = pullModel(w, w0, rate, seed, counter)
            let got = runPull(w, w0, rate, seed, counter)
            log.expectEqual(got.status, Q16_OK, "\(tag): status")
            log.expectEqual(got.w, want.w, "\(tag): values")
            log.expectEqual(got.sat, 0, "\(tag): pull must never saturate")
            log.expectEqual(want.sat, 0, "\(tag): the exact model never leaves the q16 range")
            for i in 0 ..< w.count {
                let lo = min(w[i], w0[i]), hi = max(w[i], w0[i])
                log.expect(got.w[i] >= lo && got.w[i] <= hi,
                           "\(tag) [\(i)]: new w \(got.w[i]) not between w \(w[i]) and w0 \(w0[i])")
                log.expect(want.unclamped[i] >= Int128(lo) && want.unclamped[i] <= Int128(hi),
                           "\(tag) [\(i)]: model value outside [w, w0]")
                if got.w[i] != w[i] { moved += 1 }
            }
        }
        for it in 0 ..< 400 {
            let n = it % 10 == 0 ? 1 + Int(rng.next() % 5000) : 1 + Int(rng.next() % 300)
            let sw = Spread.allCases[it % Spread.allCases.count]
            let s0 = it % 3 == 0 ? Spread.full : Spread.allCases[Int(rng.next() % UInt64(Spread.allCases.count))]
            let w = values(n, sw, &rng), w0 = values(n, s0, &rng)
            let r = it % 17 == 0 ? 0 : rate(&rng)
            let counter = it % 7 == 0 ? UInt64.max - UInt64(rng.next() % UInt64(n)) : rng.next()
            check(w, w0, r, rng.next(), counter, "random #\(it) n=\(n) \(sw)/\(s0) rate=\(r)")
        }
        // The extremes: |w - w0| = 2^32 - 1 with the largest rate (w * rate overflowed int64 before the fix).
        let n = 4096
        for (a, b) in [(qMax, qMin), (qMin, qMax), (qMax, qMax), (qMin, qMin), (qMax, 0), (qMin, 0), (0, qMin),
                       (1, -1), (-1, 1), (qMin, qMin + 1)] {
            for r in [UInt32.max, UInt32.max - 1, 1 << 31, 1, 0] {
                check([Int32](repeating: a, count: n), [Int32](repeating: b, count: n), r, 0xE7_7E3E, 17,
                      "extreme w=\(a) w0=\(b) rate=\(r)")
            }
        }
        // rate 0 changes nothing; rate max moves all the way but never past w0.
        let w = values(1000, .full, &rng), w0 = values(1000, .full, &rng)
        log.expectEqual(runPull(w, w0, 0, 1, 2).w, w, "rate 0 must leave w unchanged")
        log.expect(moved > 1000, "most pulls should move w (moved \(moved))")
        log.finish()
    }

    func testPullIsUnbiased() {
        // The mean SR step over many independent counters must match the exact step rate * (w - w0).
        // Each element's step is floor(x) + Bernoulli(frac(x)): the mean of N is within
        // 6 sigma = 6 sqrt(f (1 - f) / N) of x except with probability ~2e-9.
        var log = CheckLog("pull_sr unbiased")
        let n = 200_000
        let cases: [(Int32, Int32, UInt32)] = [(3, 0, 0x1999_999A), (0, 3, 0x1999_999A), (qMax, qMin, 0xDEAD_BEEF),
                                               (qMin, qMax, 0x8765_4321), (1, 0, 0x4000_0000), (-7, 6, 0x9000_0000)]
        for (a, b, r) in cases {
            let w = [Int32](repeating: a, count: n), w0 = [Int32](repeating: b, count: n)
            let got = runPull(w, w0, r, 0x5EED_0001, 99)
            // the exact step x = (a - b) r / 2^32 = floor + f, f in [0, 1)
            let num = (Int128(a) - Int128(b)) * Int128(r)
            let floorStep = num >> 32
            let f = Double(num - (floorStep << 32)) / 4_294_967_296.0
            var ups = 0, others = 0
            for v in got.w {
                let step = Int128(a) - Int128(v)
                if step == floorStep + 1 { ups += 1 } else if step != floorStep { others += 1 }
            }
            let mean = Double(ups) / Double(n) // estimates f
            let bound = 6 * (f * (1 - f) / Double(n)).squareRoot() + 1e-12
            log.expectEqual(got.status, Q16_OK, "w=\(a) w0=\(b)")
            log.expectEqual(others, 0, "w=\(a) w0=\(b) rate=\(r): steps other than floor or floor + 1")
            log.expect(abs(mean - f) <= bound,
                       "w=\(a) w0=\(b) rate=\(r): mean rounding-up rate \(mean) vs fraction \(f) (bound \(bound))")
        }
        log.finish()
    }

    func testPullErrors() {
        var log = CheckLog("pull_sr errors")
        let sentinel: Int32 = 0x2468_ACE0
        var buf = [Int32](repeating: sentinel, count: 16)
        let w0 = [Int32](repeating: 5, count: 16)
        log.expectEqual(q16_update_pull_sr(nil, w0, 1, 4, 0, 0, nil), Q16_ERR_NULL, "w NULL")
        log.expectEqual(q16_update_pull_sr(&buf, nil, 1, 4, 0, 0, nil), Q16_ERR_NULL, "w0 NULL")
        log.expectEqual(q16_update_pull_sr(&buf, w0, 1, 0, 0, 0, nil), Q16_ERR_SIZE, "n = 0")
        log.expectEqual(q16_update_pull_sr(&buf, w0, 1, -3, 0, 0, nil), Q16_ERR_SIZE, "n < 0")
        log.expectEqual(q16_update_pull_sr(&buf, w0, 1, Int32.min, 0, 0, nil), Q16_ERR_SIZE, "n = INT_MIN")
        buf.withUnsafeMutableBufferPointer { bp in
            let p = bp.baseAddress!
            log.expectEqual(q16_update_pull_sr(p, p, 1, 4, 0, 0, nil), Q16_ERR_OVERLAP, "w == w0")
            log.expectEqual(q16_update_pull_sr(p, p + 3, 1, 4, 0, 0, nil), Q16_ERR_OVERLAP, "w0 inside w")
            log.expectEqual(q16_update_pull_sr(p + 3, p, 1, 4, 0, 0, nil), Q16_ERR_OVERLAP, "w inside w0")
            // rate 0 is checked after the overlap: still an error
            log.expectEqual(q16_update_pull_sr(p + 1, p, 0, 4, 0, 0, nil), Q16_ERR_OVERLAP, "overlap with rate 0")
        }
        // Ranges that reach the top of the address space: end addresses would wrap to 0.
        log.expectEqual(q16_update_pull_sr(topAddress(8), topAddress(4), 1, 2, 0, 0, nil), Q16_ERR_OVERLAP,
                        "w ends at 2^64, w0 inside it")
        log.expectEqual(q16_update_pull_sr(topAddress(4), topAddress(16), 1, 4, 0, 0, nil), Q16_ERR_OVERLAP,
                        "w0 ends at 2^64, w inside it")
        log.expectEqual(q16_update_pull_sr(topAddress(16), topAddress(8), 1, 3, 0, 0, nil), Q16_ERR_OVERLAP,
                        "w0 crosses the top of the address space")
        log.expectEqual(buf, [Int32](repeating: sentinel, count: 16), "nothing written on error")
        // Adjacent ranges are fine: w = buf[4..<8] pulled towards buf[0..<4].
        buf.withUnsafeMutableBufferPointer { bp in
            let p = bp.baseAddress!
            for i in 0 ..< 4 { p[i] = 0; p[4 + i] = 1000 }
            log.expectEqual(q16_update_pull_sr(p + 4, p, UInt32.max, 4, 0, 0, nil), Q16_OK, "adjacent")
            log.expect((4 ..< 8).allSatisfy { p[$0] >= 0 && p[$0] <= 1 }, "rate ~1 pulls w to w0 (within 1 LSB)")
        }
        log.finish()
    }

    // MARK: q16_colsum

    private func colsumModel(_ x: [Int32], rows: Int, n: Int) -> (out: [Int32], sat: UInt64) {
        var sat: UInt64 = 0
        let out = (0 ..< n).map { c -> Int32 in
            var s: Int128 = 0
            for r in 0 ..< rows { s += Int128(x[r * n + c]) }
            return clampCount(s, &sat)
        }
        return (out, sat)
    }

    private func runColsum(_ x: [Int32], rows: Int, n: Int) -> (status: q16_status, out: [Int32], sat: UInt64) {
        var out = [Int32](repeating: 0x1357_9BDF, count: n)
        var sat = satStart
        let st = q16_colsum(&out, x, Int32(rows), Int32(n), &sat)
        return (st, out, sat - satStart)
    }

    func testColsumMatchesExactModel() {
        var rng = SplitMix64(seed: 0xC015_0003)
        var log = CheckLog("colsum vs exact model")
        var satSeen: UInt64 = 0
        for it in 0 ..< 400 {
            let rows = it % 20 == 0 ? 1 + Int(rng.next() % 5000) : 1 + Int(rng.next() % 300)
            let n = 1 + Int(rng.next() % 40)
            let s = Spread.allCases[it % Spread.allCases.count]
            let x = values(rows * n, s, &rng)
            let want = colsumModel(x, rows: rows, n: n)
            let got = runColsum(x, rows: rows, n: n)
            log.expectEqual(got.status, Q16_OK, "rows=\(rows) n=\(n) \(s)")
            log.expectEqual(got.out, want.out, "rows=\(rows) n=\(n) \(s): sums")
            log.expectEqual(got.sat, want.sat, "rows=\(rows) n=\(n) \(s): saturation count")
            satSeen += want.sat
        }
        // Many rows of the extremes: all Q16_MIN (sum -2^48), all Q16_MAX, MIN/MAX alternating
        // (sum -rows/2, exact), 0, +-1 and a full-range random column.
        let rows = 1 << 17, n = 7
        var x = [Int32](repeating: 0, count: rows * n)
        for r in 0 ..< rows {
            x[r * n + 0] = qMin
            x[r * n + 1] = qMax
            x[r * n + 2] = r % 2 == 0 ? qMin : qMax
            x[r * n + 3] = 0
            x[r * n + 4] = r % 2 == 0 ? 1 : -1
            x[r * n + 5] = -1
            x[r * n + 6] = rng.nextI32()
        }
        let want = colsumModel(x, rows: rows, n: n)
        let got = runColsum(x, rows: rows, n: n)
        log.expectEqual(got.status, Q16_OK, "extreme columns")
        log.expectEqual(got.out, want.out, "extreme columns: sums")
        log.expectEqual(Array(got.out[0 ..< 6]), [qMin, qMax, -Int32(rows / 2), 0, 0, -Int32(rows)],
                        "extreme columns: hand values")
        log.expectEqual(got.sat, want.sat, "extreme columns: each clamped sum counted once")
        log.expect(want.sat >= 2, "the MIN and MAX columns must saturate")
        // Exactly at the boundaries: not saturated; one LSB beyond: saturated.
        for (col, sums, sat) in [([qMax, 0], qMax, UInt64(0)), ([qMax, 1], qMax, 1), ([qMin, 0], qMin, 0),
                                 ([qMin, -1], qMin, 1), ([qMax, qMin], -1, 0), ([qMin, qMin, qMax, qMax], -2, 0)] {
            let g = runColsum(col, rows: col.count, n: 1)
            log.expectEqual([g.out[0]], [sums], "boundary column \(col)")
            log.expectEqual(g.sat, sat, "boundary column \(col): count")
        }
        // sat may be NULL.
        var out: [Int32] = [0]
        log.expectEqual(q16_colsum(&out, [qMax, qMax], 2, 1, nil), Q16_OK, "sat NULL")
        log.expectEqual(out, [qMax], "sat NULL: value")
        log.expect(satSeen > 0, "random full-range columns should saturate some sums")
        log.finish()
    }

    func testColsumErrors() {
        var log = CheckLog("colsum errors")
        let sentinel: Int32 = -0x0BAD_F00D
        var buf = [Int32](repeating: sentinel, count: 32)
        let x = [Int32](repeating: 1, count: 32)
        log.expectEqual(q16_colsum(nil, x, 2, 2, nil), Q16_ERR_NULL, "out NULL")
        log.expectEqual(q16_colsum(&buf, nil, 2, 2, nil), Q16_ERR_NULL, "in NULL")
        log.expectEqual(q16_colsum(&buf, x, 0, 2, nil), Q16_ERR_SIZE, "rows = 0")
        log.expectEqual(q16_colsum(&buf, x, 2, 0, nil), Q16_ERR_SIZE, "n = 0")
        log.expectEqual(q16_colsum(&buf, x, -1, 2, nil), Q16_ERR_SIZE, "rows < 0")
        log.expectEqual(q16_colsum(&buf, x, 2, Int32.min, nil), Q16_ERR_SIZE, "n = INT_MIN")
        log.expectEqual(q16_colsum(&buf, x, 65536, 32768, nil), Q16_ERR_SIZE, "rows * n = 2^31 overflows int")
        log.expectEqual(q16_colsum(&buf, x, Int32.max, 2, nil), Q16_ERR_SIZE, "rows * n overflows int")
        buf.withUnsafeMutableBufferPointer { bp in
            let p = bp.baseAddress!
            // in[4 x 4] = p[0..<16]
            log.expectEqual(q16_colsum(p, p, 4, 4, nil), Q16_ERR_OVERLAP, "out == in")
            log.expectEqual(q16_colsum(p + 15, p, 4, 4, nil), Q16_ERR_OVERLAP, "out starts at in's last element")
            log.expectEqual(q16_colsum(p + 5, p + 8, 4, 4, nil), Q16_ERR_OVERLAP, "out's last element is in's first")
            log.expectEqual(q16_colsum(p + 8, p, 4, 4, nil), Q16_ERR_OVERLAP, "out inside in")
        }
        log.expectEqual(q16_colsum(topAddress(8), topAddress(4), 1, 2, nil), Q16_ERR_OVERLAP,
                        "out ends at 2^64, in inside it")
        log.expectEqual(q16_colsum(topAddress(4), topAddress(16), 2, 2, nil), Q16_ERR_OVERLAP,
                        "in ends at 2^64, out inside it")
        log.expectEqual(buf, [Int32](repeating: sentinel, count: 32), "nothing written on error")
        buf.withUnsafeMutableBufferPointer { bp in
            let p = bp.baseAddress!
            for i in 0 ..< 16 { p[i] = Int32(i) }
            log.expectEqual(q16_colsum(p + 16, p, 4, 4, nil), Q16_OK, "adjacent after")
            log.expectEqual(Array(bp[16 ..< 20]), [24, 28, 32, 36], "adjacent after: sums")
            log.expectEqual(q16_colsum(p + 28, p + 16, 3, 4, nil), Q16_OK, "adjacent before/after (12 words)")
        }
        log.finish()
    }

    // MARK: q16_shift_sr

    /// clamp(floor(v / 2^s) + (top 32 bits of the fraction > rnd)), s = min(shift, 62).
    private func shiftModel(_ v: Int64, _ shift: UInt32, _ rnd: UInt32, _ sat: inout UInt64) -> Int32 {
        clampCount(srExact(Int128(v), Int(min(shift, 62)), rnd), &sat)
    }

    func testShiftSRMatchesExactModel() {
        var rng = SplitMix64(seed: 0x5_41F7)
        var log = CheckLog("shift_sr vs exact model")
        let edges64: [Int64] = [.min, .min + 1, -(1 << 62), -(1 << 47), -(1 << 31) - 1, -(1 << 31), -65536, -2, -1,
                                0, 1, 2, 65535, 65536, 1 << 31, (1 << 31) - 1, 1 << 47, 1 << 62, .max - 1, .max]
        let rndEdges: [UInt32] = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]
        var satTotal: UInt64 = 0
        for it in 0 ..< 300_000 {
            let v: Int64
            switch it % 4 {
            case 0: v = Int64(bitPattern: rng.next())
            case 1: v = edges64[Int(rng.next() % UInt64(edges64.count))]
            case 2: v = Int64(bitPattern: rng.next()) >> (rng.next() % 64) // random magnitudes
            default: v = Int64(bitPattern: rng.next()) >> (rng.next() % 24 + 30) // near the q16 range
            }
            let shift = UInt32(rng.next() % 71) // 0...70, > 62 clamped
            let rnd = it % 5 == 0 ? rndEdges[Int(rng.next() % UInt64(rndEdges.count))] : rng.nextU32()
            var wantSat: UInt64 = 0
            let want = shiftModel(v, shift, rnd, &wantSat)
            var sat = satStart
            let got = q16_shift_sr(v, shift, rnd, &sat)
            log.expectEqual(got, want, "v=\(v) shift=\(shift) rnd=\(rnd)")
            log.expectEqual(sat - satStart, wantSat, "v=\(v) shift=\(shift) rnd=\(rnd): saturation count")
            satTotal += wantSat
        }
        // Exhaustive small cases: every v in -1024...1024, every shift 0...12 and the random words at and
        // around the fraction's threshold (the comparison is strict: frac32 > rnd).
        for v in Int64(-1024) ... 1024 {
            for shift in UInt32(0) ... 12 {
                let frac32 = UInt32(((Int128(v) - ((Int128(v) >> Int(shift)) << Int(shift))) << 32) >> Int(shift))
                var words: Set<UInt32> = [0, 1, UInt32.max, UInt32.max - 1, 0x8000_0000, frac32, frac32 &- 1,
                                          frac32 &+ 1]
                words.insert(frac32 &- 2)
                for rnd in words {
                    var wantSat: UInt64 = 0
                    let want = shiftModel(v, shift, rnd, &wantSat)
                    var sat: UInt64 = 0
                    log.expectEqual(q16_shift_sr(v, shift, rnd, &sat), want, "small v=\(v) shift=\(shift) rnd=\(rnd)")
                    log.expectEqual(sat, wantSat, "small v=\(v) shift=\(shift): no saturation")
                }
            }
        }
        // Hand-checked: 5 / 4 = 1.25: frac32 = 2^30; rnd < 2^30 rounds up, rnd >= 2^30 down.
        log.expectEqual(q16_shift_sr(5, 2, (1 << 30) - 1, nil), 2, "1.25, rnd below")
        log.expectEqual(q16_shift_sr(5, 2, 1 << 30, nil), 1, "1.25, rnd equal")
        log.expectEqual(q16_shift_sr(-5, 2, (3 << 30) - 1, nil), -1, "-1.25 = -2 + 0.75, rnd below")
        log.expectEqual(q16_shift_sr(-5, 2, 3 << 30, nil), -2, "-1.25, rnd equal")
        var sat: UInt64 = 0
        log.expectEqual(q16_shift_sr(.max, 0, 0, &sat), qMax, "int64 max, shift 0")
        log.expectEqual(q16_shift_sr(.min, 0, 0, &sat), qMin, "int64 min, shift 0")
        log.expectEqual(q16_shift_sr(.min, 70, 0, &sat), -2, "int64 min >> 62 = -2 exactly")
        log.expectEqual(q16_shift_sr(.max, 200, 0, &sat), 2, "int64 max >> 62 = 1.99..., rounds up with rnd 0")
        log.expectEqual(q16_shift_sr(Int64(qMax) << 16 + 1, 16, 0, &sat), qMax, "just above Q16_MAX rounds up")
        log.expectEqual(sat, 3, "the three clamped results are counted")
        log.expect(satTotal > 0, "random full-range values must saturate sometimes")
        log.finish()
    }

    // MARK: q16_update_outer_riemannian_sr

    func testRiemannianAlphaZeroEqualsOuterSR() {
        // alpha = 0: E = 1, and W, bias and the update's saturation count equal q16_update_outer_sr's
        // bit for bit (the metric's own clamps of g, g^2 and phi are counted on top).
        // |dY|, |X| <= 2^29 and batch <= 9 keep every sum below the 2^62 clamp (outer_sr has none).
        checkRandomRiemannCases("riemannian alpha=0 vs outer_sr", seed: 0xA1FA_0000, count: 300,
                                saturates: "some metric clamps (g^2 of large gradients) should be exercised")
        { it, rng, log in
            let batch = 1 + Int(rng.next() % 9), m = 1 + Int(rng.next() % 13), n = 1 + Int(rng.next() % 37)
            let bits = [16, 20, 24, 29][it % 4]
            let kind = it % 2 == 0 ? Q16_PHI_GRAD_SQUARED : Q16_PHI_WEIGHT_ABS
            let c = randomRiemannCase(&rng, kind: kind, batch: batch, m: m, n: n,
                                      dY: bounded(batch * m, bits: bits, &rng), X: bounded(batch * n, bits: bits, &rng),
                                      alpha: 0)
            let r = runRiemann(c), o = runOuter(c)
            let model = riemannModel(c)
            log.expectEqual(r.status, Q16_OK, c.label)
            log.expectEqual(o.status, Q16_OK, c.label)
            log.expectEqual(r.W, o.W, "\(c.label): W")
            log.expectEqual(r.bias, o.bias, "\(c.label): bias")
            log.expectEqual(r.sat, o.sat + model.metricSat, "\(c.label): saturation count")
            if kind == Q16_PHI_WEIGHT_ABS {
                log.expectEqual(r.sat, o.sat, "\(c.label): WEIGHT_ABS with alpha 0 adds no count")
                log.expectEqual(r.phi, c.phi, "\(c.label): WEIGHT_ABS leaves phi untouched")
            } else {
                log.expectEqual(r.phi, model.result.phi, "\(c.label): phi")
            }
            return model.metricSat
        }
    }

    func testRiemannianMatchesExactModel() {
        // Both phi kinds on small random shapes, against the documented formulas.
        // Partial weight sums stay within +-2^62 here (|x| <= 2^30 with batch <= 4, or any
        // value with batch 1): the clamp itself is tested with large batches below.
        checkRandomRiemannCases("riemannian vs exact model", seed: 0x41E3_A77, count: 400,
                                saturates: "full-range cases should saturate")
        { it, rng, log in
            let kind = it % 2 == 0 ? Q16_PHI_GRAD_SQUARED : Q16_PHI_WEIGHT_ABS
            let m = 1 + Int(rng.next() % 7), n = 1 + Int(rng.next() % 11)
            let batch: Int, dY: [Int32], X: [Int32]
            switch it % 3 {
            case 0:
                batch = 1
                let spreadX: Spread = rng.next() % 2 == 0 ? .full : .edges
                dY = values(m, .mixed, &rng); X = values(n, spreadX, &rng)
            case 1:
                batch = 1 + Int(rng.next() % 4)
                dY = bounded(batch * m, bits: 30, &rng); X = bounded(batch * n, bits: 30, &rng)
            default:
                batch = 1 + Int(rng.next() % 9)
                dY = values(batch * m, .unit, &rng); X = values(batch * n, .wide, &rng)
            }
            let alphas: [Int32] = [0, 1, 65536, 1 << 20, qMax, rng.nextI32(in: 0 ... qMax)]
            let c = randomRiemannCase(&rng, kind: kind, batch: batch, m: m, n: n, dY: dY, X: X,
                                      alpha: alphas[Int(rng.next() % UInt64(alphas.count))])
            let want = riemannModel(c).result
            log.expectUpdate(runRiemann(c), equals: want, c.label)
            return want.sat
        }
    }

    func testRiemannianLargeStepWithLargeMetric() {
        // u = SR(s lr / 2^48) can reach 2^46; with E up to 32768 the step u / E does not saturate w,
        // so u must not be clamped before the division (any clamp below 2^46 changes the result).
        // s = Q16_MIN * Q16_MIN = 2^62 (not beyond the documented clamp), lr = 2^31: u = 2^45 exactly;
        // WEIGHT_ABS, w = Q16_MAX, alpha = Q16_MAX: E = 1 + alpha |w| saturates to Q16_MAX.
        var log = CheckLog("riemannian large step / large metric")
        var c = DenseCase(shape: DenseShape(), W: [qMax], dY: [qMin], X: [qMin])
        c.lr = 1 << 31; c.alpha = qMax; c.kind = Q16_PHI_WEIGHT_ABS
        let want = Int32(Int128(qMax) - divNearest(Int128(1) << 61, Int128(qMax))) // w - round(2^45 * 2^16 / e)
        let got = runRiemann(c)
        log.expectEqual(got.W, [want], "w = MAX - round(2^45 / E)")
        log.expectEqual(got.W, riemannModel(c).result.W, "model agrees")
        log.expectEqual(got.sat, 1, "only alpha * phi saturates (q16_mul)")
        // The same with negative gradients and GRAD_SQUARED (phi saturates, E = Q16_MAX).
        c.W = [qMin]; c.X = [qMax]; c.kind = Q16_PHI_GRAD_SQUARED; c.phi = [qMax]; c.rho = UInt32.max
        c.gscale = UInt32.max
        let m2 = riemannModel(c).result
        let got2 = runRiemann(c)
        log.expectEqual(got2.W, m2.W, "negative step, GRAD_SQUARED: W")
        log.expectEqual(got2.phi, m2.phi, "negative step, GRAD_SQUARED: phi")
        log.expectEqual(got2.sat, m2.sat, "negative step, GRAD_SQUARED: count")
        log.expect(m2.W[0] > qMin && m2.W[0] < 0, "the documented step does not saturate (w = \(m2.W[0]))")
        log.finish()
    }

    func testRiemannianExtremeBatchClampsSums() {
        // batch 33000 with dY = X = Q16_MIN: every weight sum is 33000 * 2^62 (clamped to 2^62) and every
        // bias sum is -33000 * 2^31 (beyond -2^46, clamped): each clamped SUM counts once. This overflowed
        // int64 before the fix. Also mixed signs (sums -2^62 + ...) and a sum whose partial sums cross the
        // clamp but whose total does not (the clamp applies to the sum, not to partial sums).
        var log = CheckLog("riemannian extreme batch")
        var rng = SplitMix64(seed: 0xB16_BA7C)
        let batch = 33000, m = 2, n = 3
        for (dv, xv) in [(qMin, qMin), (qMin, qMax), (qMax, qMin)] {
            for kind in [Q16_PHI_GRAD_SQUARED, Q16_PHI_WEIGHT_ABS] {
                for (lr, alpha) in [(UInt32.max, Int32(0)), (1, 65536), (1 << 20, qMax), (rng.nextU32(), 3 << 16)] {
                    var c = DenseCase(shape: DenseShape(batch: batch, m: m, n: n), W: values(m * n, .full, &rng),
                                      dY: [Int32](repeating: dv, count: batch * m), X: [Int32](repeating: xv, count: batch * n))
                    c.bias = values(m, .full, &rng)
                    c.phi = kind == Q16_PHI_GRAD_SQUARED ? values(m * n + m, .unit, &rng).map { abs($0) } : nil
                    c.lr = lr; c.alpha = alpha; c.kind = kind; c.rho = rng.nextU32()
                    c.gscale = UInt32((UInt64(1) << 32) / UInt64(batch))
                    c.seed = rng.next(); c.counter = rng.next()
                    let want = riemannModel(c).result
                    let tag = "dY=\(dv) X=\(xv) \(c.label)"
                    log.expectUpdate(runRiemann(c), equals: want, tag)
                    log.expect(want.sat >= UInt64(m * n + m), "\(tag): every sum clamps and is counted")
                }
            }
        }
        // Products 2^62, 2^62, -(2^62 - 2^31): the exact sum 2^62 + 2^31 clamps to 2^62, so with
        // lr_q32 = 1 the step is 2^62 / 2^48 = 16384 LSB exactly (a running clamp would give 0).
        var c = DenseCase(shape: DenseShape(batch: 3), W: [0], dY: [qMin, qMin, qMin], X: [qMin, qMin, qMax])
        c.lr = 1; c.kind = Q16_PHI_WEIGHT_ABS; c.seed = 1
        let got = runRiemann(c)
        log.expectEqual(got.W, [-16384], "clamp of the exact sum, not of partial sums")
        log.expectEqual(got.sat, 1, "one clamped sum, counted once")
        log.expectEqual(riemannModel(c).result, got, "model agrees")
        // Same products in another order: the result must not depend on the order of the batch.
        c.dY = [qMin, qMin, qMin]; c.X = [qMax, qMin, qMin]
        log.expectEqual(runRiemann(c), got, "batch order must not matter")
        log.finish()
    }

    func testRiemannianErrors() {
        var log = CheckLog("riemannian errors")
        // One 16-byte-aligned pool holding every array, so that ranges can be made to overlap.
        let words = 64
        let raw = UnsafeMutableRawPointer.allocate(byteCount: words * 4, alignment: 16)
        defer { raw.deallocate() }
        let pool = raw.bindMemory(to: Int32.self, capacity: words)
        for i in 0 ..< words { pool[i] = Int32(i) * 65536 / 7 }
        let before = Array(UnsafeBufferPointer(start: pool, count: words))
        func i64(_ p: UnsafeMutablePointer<Int32>) -> UnsafeMutablePointer<Int64> {
            UnsafeMutableRawPointer(p).assumingMemoryBound(to: Int64.self)
        }
        // batch 2, m 2, n 3 (words): W 0..<6, bias 8..<10, phi 12..<20, scratch 24..<30 (3 int64), dY 32..<36,
        // X 40..<46; gaps between them so that each overlap case below hits exactly one pair.
        let W = pool, bias = pool + 8, phi = pool + 12, scr = i64(pool + 24), dY = pool + 32, X = pool + 40
        func call(_ w: UnsafeMutablePointer<Int32>?, _ b: UnsafeMutablePointer<Int32>?,
                  _ p: UnsafeMutablePointer<Int32>?, _ s: UnsafeMutablePointer<Int64>?, _ y: UnsafeMutablePointer<Int32>?,
                  _ x: UnsafeMutablePointer<Int32>?, kind: q16_phi_kind = Q16_PHI_GRAD_SQUARED, alpha: Int32 = 65536,
                  batch: Int32 = 2, m: Int32 = 2, n: Int32 = 3) -> q16_status
        {
            q16_update_outer_riemannian_sr(w, b, p, s, y, x, 1 << 30, 1 << 31, alpha, 1 << 31, kind, batch, m, n, 9,
                                           0, nil)
        }
        let cases: [(String, q16_status, () -> q16_status)] = [
            ("W NULL", Q16_ERR_NULL, { call(nil, bias, phi, scr, dY, X) }),
            ("scratch NULL", Q16_ERR_NULL, { call(W, bias, phi, nil, dY, X) }),
            ("dY NULL", Q16_ERR_NULL, { call(W, bias, phi, scr, nil, X) }),
            ("X NULL", Q16_ERR_NULL, { call(W, bias, phi, scr, dY, nil) }),
            ("phi NULL with GRAD_SQUARED", Q16_ERR_NULL, { call(W, bias, nil, scr, dY, X) }),
            ("unknown phi kind", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, kind: q16_phi_kind(rawValue: 7)) }),
            ("alpha < 0", Q16_ERR_DOMAIN, { call(W, bias, phi, scr, dY, X, alpha: -1) }),
            ("batch 0", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, batch: 0) }),
            ("m < 0", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, m: -2) }),
            ("batch * n overflows", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, batch: 1 << 16, n: 1 << 15) }),
            ("m * n overflows", Q16_ERR_SIZE, { call(W, bias, phi, scr, dY, X, m: 1 << 16, n: 1 << 15) }),
            // overlaps: every output against every other output and every input
            ("W overlaps bias", Q16_ERR_OVERLAP, { call(W, W + 5, phi, scr, dY, X) }),
            ("bias overlaps W", Q16_ERR_OVERLAP, { call(W + 1, W, phi, scr, dY, X) }),
            ("bias overlaps dY", Q16_ERR_OVERLAP, { call(W, dY + 3, phi, scr, dY, X) }),
            ("bias overlaps X", Q16_ERR_OVERLAP, { call(W, X, phi, scr, dY, X) }),
            ("bias overlaps phi", Q16_ERR_OVERLAP, { call(W, phi + 7, phi, scr, dY, X) }),
            ("bias overlaps scratch", Q16_ERR_OVERLAP, { call(W, pool + 29, phi, scr, dY, X) }),
            ("phi overlaps scratch", Q16_ERR_OVERLAP, { call(W, bias, phi, i64(pool + 18), dY, X) }),
            ("scratch overlaps phi", Q16_ERR_OVERLAP, { call(W, bias, pool + 20, scr, dY, X) }),
            ("phi overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, pool + 30, scr, dY, X) }),
            ("phi overlaps X", Q16_ERR_OVERLAP, { call(W, bias, X + 5, scr, dY, X) }),
            ("W overlaps phi", Q16_ERR_OVERLAP, { call(W, nil, W + 2, scr, dY, X) }),
            ("W overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, W + 4, X) }),
            ("W overlaps X", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, dY, W + 2) }),
            ("W overlaps scratch", Q16_ERR_OVERLAP, { call(W, nil, phi, i64(W + 4), dY, X) }),
            ("scratch overlaps dY", Q16_ERR_OVERLAP, { call(W, bias, phi, scr, pool + 28, X) }),
            ("scratch overlaps X", Q16_ERR_OVERLAP, { call(W, bias, phi, i64(pool + 38), dY, X) }),
            // Ranges that end at (or cross) the top of the address space: end addresses wrap to 0, differences
            // do not. None of these pointers is ever dereferenced by a correct overlap check.
            ("W ends at 2^64, bias inside it", Q16_ERR_OVERLAP, { call(topAddress(24), topAddress(4), phi, scr, dY, X) }),
            ("bias ends at 2^64, W's last words inside", Q16_ERR_OVERLAP, {
                call(topAddress(28), topAddress(8), nil, scr, dY, X, kind: Q16_PHI_WEIGHT_ABS)
            }),
            ("dY ends at 2^64, bias inside it", Q16_ERR_OVERLAP, { call(W, topAddress(4), phi, scr, topAddress(16), X) }),
            ("bias crosses 2^64, X at its start", Q16_ERR_OVERLAP, { call(W, topAddress(4), phi, scr, dY, topAddress(4)) }),
            ("phi crosses 2^64, scratch inside it", Q16_ERR_OVERLAP, {
                call(W, bias, topAddress(16), i64(topAddress(8)), dY, X)
            }),
        ]
        for (name, want, run) in cases {
            log.expectEqual(run(), want, name)
            log.expectEqual(Array(UnsafeBufferPointer(start: pool, count: words)), before, "\(name): nothing written")
        }
        // Control: the same layout without overlaps runs (and changes W), as does WEIGHT_ABS with phi on top of
        // scratch (phi is ignored for WEIGHT_ABS, so it cannot overlap).
        log.expectEqual(call(W, bias, phi, scr, dY, X), Q16_OK, "no overlap")
        log.expectEqual(call(W, bias, pool + 24, scr, dY, X, kind: Q16_PHI_WEIGHT_ABS), Q16_OK, "WEIGHT_ABS ignores phi")
        log.finish()
    }

    // MARK: q16_gemm_nt caller scratch

    func testGemmNTBufferSize() {
        var rng = SplitMix64(seed: 0x6E77_0B0F)
        var log = CheckLog("gemm_nt buffer size")
        var packedShapes = 0
        for it in 0 ..< 600 {
            let n = it < 300 ? 1 + Int(rng.next() % 300) : 1 + Int(rng.next() % 4096)
            let k = it < 300 ? 1 + Int(rng.next() % 300) : 1 + Int(rng.next() % 4096)
            var running = 0 // max over row counts 1...m
            for m in 1 ... 80 {
                let size = q16_gemm_nt_buffer_size(Int32(m), Int32(n), Int32(k))
                log.expect(size >= running, "n=\(n) k=\(k): size(\(m)) = \(size) < size(\(m - 1)) = \(running)")
                log.expect(size <= 16384, "n=\(n) k=\(k) m=\(m): \(size) bytes > 16 KiB")
                log.expect(size % 4 == 0, "n=\(n) k=\(k) m=\(m): \(size) is not whole words")
                running = max(running, size)
                if size > 0 { packedShapes += 1 }
            }
            // Far larger row counts stay within 16 KiB too.
            for m in [81, 255, 1000, 65536, Int(Int32.max) / max(n, k)] {
                let size = q16_gemm_nt_buffer_size(Int32(m), Int32(n), Int32(k))
                log.expect(size >= running && size <= 16384, "n=\(n) k=\(k) m=\(m): \(size) bytes")
                running = max(running, size)
            }
        }
        for (m, n, k) in [(0, 1, 1), (1, 0, 1), (1, 1, 0), (-1, 5, 5), (5, -1, 5), (5, 5, Int32.min)] as [(Int32, Int32, Int32)] {
            log.expectEqual(q16_gemm_nt_buffer_size(m, n, k), 0, "invalid dims \(m) \(n) \(k)")
        }
        log.expect(packedShapes > 0, "some shapes should use the packed path")
        log.finish()
    }

    func testGemmNTScratchStaysInBounds() {
        // The kernel may write only the first q16_gemm_nt_buffer_size(m, n, k) bytes of the scratch:
        // 64 canary words before and after it must survive, and the results equal q16_ref_gemm_nt.
        var rng = SplitMix64(seed: 0xCA4A_0123)
        var log = CheckLog("gemm_nt scratch bounds")
        let guardWords = 64, canary: Int32 = 0x3A5C_C5A3
        var packedCalls = 0
        func run(_ m: Int, _ n: Int, _ k: Int, _ A: [Int32], _ B: [Int32], _ bias: [Int32]?, _ tag: String) {
            let words = q16_gemm_nt_buffer_size(Int32(m), Int32(n), Int32(k)) / 4
            var buf = [Int32](repeating: canary, count: guardWords + words + guardWords)
            var c = [Int32](repeating: 0x7777_7777, count: m * n), cRef = c, cNil = c
            var sat = satStart, satRef = satStart, satNil = satStart
            let (st, stNil, stRef) = withOptionalConst(bias) { bp in
                let st = buf.withUnsafeMutableBufferPointer { sp in
                    q16_gemm_nt(&c, sp.baseAddress! + guardWords, A, B, bp, Int32(m), Int32(n), Int32(k), &sat)
                }
                return (st, q16_gemm_nt(&cNil, nil, A, B, bp, Int32(m), Int32(n), Int32(k), &satNil),
                        q16_ref_gemm_nt(&cRef, A, B, bp, Int32(m), Int32(n), Int32(k), &satRef))
            }
            log.expectEqual(st, stRef, "\(tag): status")
            log.expectEqual(c, cRef, "\(tag): C with scratch")
            log.expectEqual(sat, satRef, "\(tag): sat with scratch")
            log.expectEqual(stNil, stRef, "\(tag): status without scratch")
            log.expectEqual(cNil, cRef, "\(tag): C without scratch")
            log.expectEqual(satNil, satRef, "\(tag): sat without scratch")
            let head = buf[0 ..< guardWords], tail = buf[(guardWords + words)...]
            log.expect(head.allSatisfy { $0 == canary }, "\(tag): scratch written before its start")
            log.expect(tail.allSatisfy { $0 == canary }, "\(tag): scratch written beyond \(words) words")
            if words > 0 && buf[guardWords ..< guardWords + words].contains(where: { $0 != canary }) { packedCalls += 1 }
        }
        for it in 0 ..< 160 {
            let m = 1 + Int(rng.next() % 80), n = 1 + Int(rng.next() % 300), k = 1 + Int(rng.next() % 300)
            let s: Spread = it % 8 == 7 ? .full : (it % 2 == 0 ? .unit : .wide)
            let A = values(m * k, s, &rng), B = values(n * k, s, &rng)
            let bias: [Int32]? = it % 3 == 0 ? nil : values(n, s, &rng)
            run(m, n, k, A, B, bias, "random m=\(m) n=\(n) k=\(k) \(s)")
        }
        // Every row count 1...80 for shapes of the packed path (small k, n >= k / 4): the buffer of
        // exactly size(r) bytes suffices for r rows.
        for (n, k) in [(16, 64), (40, 100), (9, 33), (64, 128)] {
            for m in 1 ... 80 {
                run(m, n, k, values(m * k, .unit, &rng), values(n * k, .unit, &rng), values(n, .unit, &rng),
                    "rows m=\(m) n=\(n) k=\(k)")
            }
        }
        log.expect(packedCalls > 0, "the packed path should use the scratch in some calls")
        log.finish()
    }
}
