import CFixed
import XCTest

/// The largest batch a dense update accepts in practice (2^20 rows) with every value at
/// Q16_MIN: the sums that overflowed int64 before (the Riemannian bias step's x 65536 from
/// 2^16 rows on) now clamp once and are counted. Run by `.ci/run` under UBSan in trap
/// mode too, where any signed overflow kills the process. Expected values by hand.
final class LargestInputTests: XCTestCase {
    static let rows = 1 << 20
    let dY = [Int32](repeating: Int32.min, count: LargestInputTests.rows)
    let X = [Int32](repeating: Int32.min, count: LargestInputTests.rows)

    /// W, b = 0; lr = 2^-32; sum dY X = 2^20 x 2^62 = 2^82 (clamped to 2^62), sum dY = -2^51
    /// (clamped to -2^46, then x 2^16 = -2^62): u = +-2^62 / 2^48 = +-2^14, E = 1.
    func testRiemannianAtTheLargestBatchClampsOnceAndCounts() {
        var w: Int32 = 0, b: Int32 = 0, sat: UInt64 = 0
        var scratch = [Int64](repeating: 0, count: 1)
        let st = q16_update_outer_riemannian_sr(&w, &b, nil, &scratch, dY, X, 1, 0, 0, 0, Q16_PHI_WEIGHT_ABS,
                                                Int32(Self.rows), 1, 1, 7, 0, &sat)
        XCTAssertEqual(st, Q16_OK)
        XCTAssertEqual(w, -16384)
        XCTAssertEqual(b, 16384)
        XCTAssertEqual(sat, 2, "one clamped weight sum, one clamped bias sum")
    }

    /// The metric at its extremes (phi, alpha, rho, rates all maximal): no overflow, and
    /// every result a valid word (the values are the exact-model tests' business).
    func testRiemannianGradSquaredAtEveryExtreme() {
        var w: Int32 = Int32.max, b: Int32 = Int32.min, sat: UInt64 = 0
        var phi: [Int32] = [Int32.max, Int32.max]
        var scratch = [Int64](repeating: 0, count: 1)
        let st = q16_update_outer_riemannian_sr(&w, &b, &phi, &scratch, dY, X, UInt32.max, UInt32.max, Int32.max,
                                                UInt32.max, Q16_PHI_GRAD_SQUARED, Int32(Self.rows), 1, 1, 7,
                                                UInt64.max - 3, &sat)
        XCTAssertEqual(st, Q16_OK)
        XCTAssertGreaterThanOrEqual(sat, 2, "both gradient sums are clamped")
        XCTAssertGreaterThanOrEqual(phi[0], 0)
        XCTAssertLessThanOrEqual(w, Int32.max)  // the step is positive: w can only move down
        XCTAssertLessThan(w, Int32.max)
    }

    /// The fused SGD step keeps 2^82 exact (128-bit path): d = 2^82 x 2^-32 / 2^16 = 2^34, so
    /// W saturates (counted); the bias step is -2^51 x 2^-32 = -2^19 exactly.
    func testOuterSRAtTheLargestBatch() {
        var w: Int32 = 0, b: Int32 = 0, sat: UInt64 = 0
        var scratch = [Int64](repeating: 0, count: 1)
        XCTAssertEqual(q16_update_outer_sr(&w, &b, &scratch, dY, X, 1, Int32(Self.rows), 1, 1, 7, 0, &sat), Q16_OK)
        XCTAssertEqual(w, Int32.min)
        XCTAssertEqual(b, 524_288)
        XCTAssertEqual(sat, 1)
    }

    func testColsumOfTheLargestColumns() {
        var out: [Int32] = [0, 0]
        var sat: UInt64 = 0
        var two = [Int32](repeating: Int32.min, count: 2 * Self.rows)  // column 0 all MIN, column 1 alternating
        for r in 0..<Self.rows where r % 2 == 1 { two[2 * r + 1] = Int32.max }
        XCTAssertEqual(q16_colsum(&out, two, Int32(Self.rows), 2, &sat), Q16_OK)
        XCTAssertEqual(out, [Int32.min, -524_288])  // -2^51 saturates; 2^19 pairs of (MIN + MAX) = -2^19
        XCTAssertEqual(sat, 1)
    }

    /// The buffer size at the largest dimensions an int allows: bounded, no overflow.
    func testGemmNTBufferSizeAtTheLargestDimensions() {
        for k: Int32 in [1, 127, 128, 129, 4096, Int32.max] {
            XCTAssertLessThanOrEqual(q16_gemm_nt_buffer_size(Int32.max, Int32.max, k), 16384, "k \(k)")
        }
        XCTAssertEqual(q16_gemm_nt_buffer_size(Int32.max, Int32.max, 128), 16384)
        XCTAssertEqual(q16_gemm_nt_buffer_size(Int32.max, 1, 128), 0, "n too small against k: the dot path")
    }

    /// The same extremes through the convolution kernels: a 1-D series of 2^20 steps,
    /// one channel, one 1x1 filter, batch 1, every value Q16_MIN. The weight sum is
    /// 2^20 x 2^62 = 2^82 (past int64: the 128-bit path), the bias sum -2^51. Fast and
    /// reference kernels agree bit for bit (values, statuses, saturation counts) and the
    /// results are the hand-computed ones. Under UBSan in `.ci/run`.
    func testConvKernelsAtTheLargestSums() {
        let n = Self.rows
        var p = q16_conv_params(C: 1, H: 1, W: Int32(n), F: 1, kh: 1, kw: 1, stride_h: 1, stride_w: 1,
                                pad_top: 0, pad_left: 0, Ho: 1, Wo: Int32(n))
        XCTAssertEqual(q16_conv_check(&p), Q16_OK)
        let wScratch = (q16_conv_weight_buffer_size(&p) + 7) / 8
        var scratch64 = [Int64](repeating: 0, count: max(wScratch,
            (max(q16_conv_forward_buffer_size(&p), q16_conv_backward_data_buffer_size(&p)) + 7) / 8))
        // Riemannian step (alpha 0, |w| metric, lr 2^-32): as the dense kernel above.
        for fast in [true, false] {
            var w: Int32 = 0, b: Int32 = 0, sat: UInt64 = 0
            let st = fast
                ? q16_conv_backward_weights_riemannian_sr(&w, &b, nil, &scratch64, dY, X, 1, 0, 0, 0, Q16_PHI_WEIGHT_ABS,
                                                          1, &p, 7, 0, &sat)
                : q16_ref_conv_backward_weights_riemannian_sr(&w, &b, nil, dY, X, 1, 0, 0, 0, Q16_PHI_WEIGHT_ABS,
                                                              1, &p, 7, 0, &sat)
            XCTAssertEqual(st, Q16_OK)
            XCTAssertEqual([w, b], [-16384, 16384], "riemannian fast=\(fast)")
            XCTAssertEqual(sat, 2, "riemannian fast=\(fast): one clamped weight sum, one clamped bias sum")
        }
        // Fused SGD step, lr 2^-32: w -= 2^82 / 2^48 = 2^34 (saturates to Q16_MIN, counted),
        // b -= -2^51 / 2^32 = -2^19 (exact sums: no clamp).
        for fast in [true, false] {
            var w: Int32 = 0, b: Int32 = 0, sat: UInt64 = 0
            let st = fast ? q16_conv_backward_weights_sr(&w, &b, &scratch64, dY, X, 1, 1, &p, 7, 0, &sat)
                          : q16_ref_conv_backward_weights_sr(&w, &b, dY, X, 1, 1, &p, 7, 0, &sat)
            XCTAssertEqual(st, Q16_OK)
            XCTAssertEqual([w, b], [Int32.min, 1 << 19], "sr fast=\(fast)")
            XCTAssertEqual(sat, 1, "sr fast=\(fast)")
        }
        // Weight gradient: dW = 2^82 / 2^16 saturates to Q16_MAX, dB = -2^51 to Q16_MIN.
        for fast in [true, false] {
            var dw: Int32 = 0, db: Int32 = 0, sat: UInt64 = 0
            let st = fast ? q16_conv_weight_grad(&dw, &db, &scratch64, dY, X, 1, &p, &sat)
                          : q16_ref_conv_weight_grad(&dw, &db, dY, X, 1, &p, &sat)
            XCTAssertEqual(st, Q16_OK)
            XCTAssertEqual([dw, db], [Int32.max, Int32.min], "weight grad fast=\(fast)")
            XCTAssertEqual(sat, 2, "weight grad fast=\(fast)")
        }
        // Forward and input gradient: every output (-2^15)^2 = 2^30 (+ bias -2^15) saturates.
        var w: [Int32] = [Int32.min], b: [Int32] = [Int32.min]
        var outs: [[Int32]] = [], sats: [UInt64] = []
        for fast in [true, false] {
            var y = [Int32](repeating: 0, count: n), dx = [Int32](repeating: 0, count: n)
            var s1: UInt64 = 0, s2: UInt64 = 0
            let st1 = scratch64.withUnsafeMutableBytes { raw -> q16_status in
                let sp = fast ? raw.baseAddress!.assumingMemoryBound(to: Int32.self) : nil
                return q16_conv_forward(&y, sp, X, &w, &b, 1, &p, &s1)
            }
            let st2 = scratch64.withUnsafeMutableBytes { raw -> q16_status in
                let sp = fast ? raw.baseAddress!.assumingMemoryBound(to: Int32.self) : nil
                return q16_conv_backward_data(&dx, sp, dY, &w, 1, &p, &s2)
            }
            XCTAssertEqual([st1, st2], [Q16_OK, Q16_OK])
            XCTAssertTrue(y.allSatisfy { $0 == Int32.max } && dx.allSatisfy { $0 == Int32.max }, "fast=\(fast)")
            outs.append(y + dx)
            sats.append(s1 + s2)
        }
        XCTAssertEqual(sats, [UInt64(2 * n), UInt64(2 * n)])
        XCTAssertEqual(outs[0], outs[1])
    }
}
