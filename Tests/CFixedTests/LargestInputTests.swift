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
}
