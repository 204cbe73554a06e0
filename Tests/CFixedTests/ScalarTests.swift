// ScalarTests.swift -- conversions, scalar arithmetic, sqrt/exp/log and softmax
// of CFixed, compared with exact integer references (where the result is
// exactly computable) or with double-precision references (exp, log, softmax).
//
// Error bounds asserted are the implementation's, which are tighter than the
// header's contract (they imply it):
//   add/sub/neg/abs/mul/div/recip/sqrt/conversions: bit-exact against an
//     exact reference (correct rounding, ties away from zero, saturation);
//   exp, log: within 0.5 LSB + 1e-5 LSB of the double reference (i.e. the
//     correctly rounded value except when the exact value is within 1e-5 LSB
//     of a tie);
//   softmax p and xent grad: within 0.5 LSB + 1e-3 LSB; xent loss: 0.5 LSB + 1e-3.
// Loops count failures and keep the first one instead of asserting per
// element (XCTAssert per element is slow in debug builds).

import CFixed
import Foundation
import XCTest

// qMax, qMin (Q16_MAX, Q16_MIN): TestSupport.swift
private let lsb = 1.0 / 65536.0

/// Max-error / failure accumulator.
private struct Tally {
    let name: String
    var count = 0
    var fails = 0
    var first: String?
    var maxErr = 0.0
    var worst = ""

    init(_ name: String) { self.name = name }

    mutating func exact(_ got: Int64, _ want: Int64, _ what: @autoclosure () -> String) {
        count += 1
        let e = Double(abs(got - want))
        if e > maxErr { maxErr = e; worst = what() }
        if got != want {
            fails += 1
            if first == nil { first = "\(what()): got \(got), want \(want)" }
        }
    }

    mutating func near(_ err: Double, _ limit: Double, _ what: @autoclosure () -> String) {
        count += 1
        if err > maxErr { maxErr = err; worst = what() }
        if !(err <= limit) {
            fails += 1
            if first == nil { first = "\(what()): err \(err) > \(limit)" }
        }
    }

    mutating func check(_ ok: Bool, _ what: @autoclosure () -> String) {
        count += 1
        if !ok {
            fails += 1
            if first == nil { first = what() }
        }
    }

    func assertClean(file: StaticString = #filePath, line: UInt = #line) {
        let at = worst.isEmpty ? "every check exact" : "at \(worst)"
        print(String(format: "ScalarTests: %@: %d checks, max error %.7f LSB (%@)", name, count, maxErr, at))
        XCTAssertEqual(fails, 0, "\(name): \(fails) failures, first: \(first ?? "")", file: file, line: line)
    }
}

// MARK: - Exact references (independent of the C code)

/// round(n / d) to nearest, ties away from zero, d != 0, exact.
private func divRound(_ n: Int64, _ d: Int64) -> Int64 {
    let q = n / d, r = n % d  // truncating
    if 2 * r.magnitude >= d.magnitude { return q + ((n < 0) != (d < 0) ? -1 : 1) }
    return q
}

/// Clamp to q16 and report whether it clamped.
private func clampQ(_ v: Int64) -> (Int64, UInt64) {
    if v > Int64(qMax) { return (Int64(qMax), 1) }
    if v < Int64(qMin) { return (Int64(qMin), 1) }
    return (v, 0)
}

/// floor(sqrt(n)), exact.
private func isqrt(_ n: UInt64) -> UInt64 {
    var r = UInt64(Double(n).squareRoot())
    while r * r > n { r -= 1 }
    while (r + 1) * (r + 1) <= n { r += 1 }
    return r
}

/// Double -> Q16 reference: nearest (ties away), saturated.
private func refFromDouble(_ x: Double) -> (Int64, UInt64) {
    let y = (x * 65536).rounded(.toNearestOrAwayFromZero)
    if y > Double(qMax) { return (Int64(qMax), 1) }
    if y < Double(qMin) { return (Int64(qMin), 1) }
    return (Int64(y), 0)
}

/// Edge values: 0, +-1 LSB, the ends, and values around integer / half boundaries.
private let edges: [Int32] = {
    var v: [Int32] = [0, 1, -1, 2, -2, 3, -3, qMin, qMin + 1, qMin + 2, qMax, qMax - 1, qMax - 2,
                      0x8000, -0x8000, 0x7FFF, -0x7FFF, 0x8001, -0x8001,
                      0xFFFF, -0xFFFF, 0x10000, -0x10000, 0x10001, -0x10001, 0x18000, -0x18000,
                      0xB504, 0xB505, 0x16A09, 0x16A0A, 46341 << 8, 0x00B5_04F3,
                      0x7FFF_0000, -0x7FFF_0000, 0x7FFF_8000, -0x7FFF_8000, 0x4000_0000, -0x4000_0000,
                      0x0100_0000, -0x0100_0000, 0x00FF_FFFF, 0x0001_0000 * 181, 0x0001_0000 * 182]
    for s in 0..<31 {
        let p = Int32(1) << s
        v += [p, -p, p - 1, -(p - 1), p + 1, -(p + 1)]
    }
    return Array(Set(v)).sorted()
}()

final class ScalarTests: XCTestCase {

    // MARK: status strings

    func testStatusStrings() {
        let all: [q16_status] = [Q16_OK, Q16_ERR_NULL, Q16_ERR_SIZE, Q16_ERR_OVERLAP, Q16_ERR_NAN,
                                 Q16_ERR_DOMAIN, Q16_ERR_DIV_ZERO, Q16_ERR_LABEL]
        var seen = Set<String>()
        for s in all {
            let str = String(cString: q16_status_string(s))
            XCTAssertFalse(str.isEmpty)
            XCTAssertFalse(str == "unknown status", "\(s)")
            seen.insert(str)
        }
        XCTAssertEqual(seen.count, all.count, "strings must be distinct")
        XCTAssertEqual(String(cString: q16_status_string(Q16_OK)), "ok")
        XCTAssertEqual(String(cString: q16_status_string(Q16_ERR_NULL)), "null pointer")
        XCTAssertEqual(String(cString: q16_status_string(q16_status(rawValue: 12345))), "unknown status")
        XCTAssertEqual(Q16_OK.rawValue, 0)
        XCTAssertEqual(Q16_ERR_LABEL.rawValue, -7)
    }

    // MARK: conversions

    func testIntConversions() {
        var rng = SplitMix64(seed: 0xC0_0001)
        var tFrom = Tally("q16_from_int"), tRound = Tally("q16_to_int_round"), tFloor = Tally("q16_to_int_floor")
        var inputs: [Int32] = edges + [32767, -32767, 32768, -32768, 32769, -32769, 65535, -65535]
        for _ in 0..<1_000_000 { inputs.append(rng.nextI32()) }
        for _ in 0..<200_000 { inputs.append(rng.nextI32(in: -40000...40000)) }
        for i in inputs {
            var sat: UInt64 = 0
            let got = q16_from_int(i, &sat)
            let (want, ws) = clampQ(Int64(i) * 65536)
            tFrom.exact(Int64(got), want, "from_int(\(i))")
            tFrom.check(sat == ws, "from_int(\(i)) sat \(sat)")
            // q16 -> int: exact references with Int64 arithmetic.
            tRound.exact(Int64(q16_to_int_round(i)), divRound(Int64(i), 65536), "to_int_round(\(i))")
            let fl = Int64(i) >= 0 ? Int64(i) / 65536 : -((-Int64(i) + 65535) / 65536)
            tFloor.exact(Int64(q16_to_int_floor(i)), fl, "to_int_floor(\(i))")
        }
        XCTAssertEqual(q16_from_int(-32768, nil), qMin)  // exact, not clamped
        var s: UInt64 = 5
        XCTAssertEqual(q16_from_int(-32768, &s), qMin); XCTAssertEqual(s, 5)
        XCTAssertEqual(q16_from_int(32768, &s), qMax); XCTAssertEqual(s, 6)
        XCTAssertEqual(q16_from_int(.min, &s), qMin); XCTAssertEqual(s, 7)
        XCTAssertEqual(q16_to_int_round(0x8000), 1)
        XCTAssertEqual(q16_to_int_round(-0x8000), -1)
        XCTAssertEqual(q16_to_int_round(0x7FFF), 0)
        XCTAssertEqual(q16_to_int_round(qMax), 32768)
        XCTAssertEqual(q16_to_int_round(qMin), -32768)
        XCTAssertEqual(q16_to_int_floor(-1), -1)
        XCTAssertEqual(q16_to_int_floor(qMin), -32768)
        XCTAssertEqual(q16_to_int_floor(qMax), 32767)
        tFrom.assertClean(); tRound.assertClean(); tFloor.assertClean()
    }

    func testFloatConversions() {
        var rng = SplitMix64(seed: 0xC0_0002)
        var tD = Tally("q16_to_double"), tF = Tally("q16_to_float")
        var xs = edges
        for _ in 0..<1_000_000 { xs.append(rng.nextI32()) }
        for x in xs {
            let d = q16_to_double(x)
            tD.check(d == Double(x) / 65536 && d * 65536 == Double(x), "to_double(\(x)) = \(d)")
            let f = q16_to_float(x)
            let want = Float(Double(x) / 65536)  // one IEEE rounding, ties to even
            tF.check(f.bitPattern == want.bitPattern, "to_float(\(x)) = \(f), want \(want)")
        }
        // 2^24 + 1 and 2^24 + 3 in LSB units: ties, to even.
        XCTAssertEqual(q16_to_float(0x0100_0001), Float(0x0100_0000) / 65536)
        XCTAssertEqual(q16_to_float(0x0100_0003), Float(0x0100_0004) / 65536)
        tD.assertClean(); tF.assertClean()
    }

    func testFromDoubleAndFloat() {
        var rng = SplitMix64(seed: 0xC0_0003)
        var tD = Tally("q16_from_double"), tF = Tally("q16_from_float")
        var xs: [Double] = [0, -0.0, lsb, -lsb, lsb / 2, -lsb / 2, lsb / 2 * 3, -lsb / 2 * 3,
                            lsb / 2 * (1 - 0x1p-52), -lsb / 2 * (1 - 0x1p-52),
                            32767.9999847412109375, 32767.99998474121 + lsb / 2, 32768 - lsb / 2,
                            (32768 - lsb / 2).nextDown, (32768 - lsb / 2).nextUp, 32768, 1e300,
                            -32768, -32768 - lsb / 2, (-32768 - lsb / 2).nextUp, (-32768 - lsb / 2).nextDown,
                            -1e300, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0.5, -0.5, 1.5, -2.5]
        for e in edges {  // exactly representable values and the ties next to them
            let v = Double(e) * lsb
            xs += [v, v + lsb / 2, v - lsb / 2, (v + lsb / 2).nextDown, (v + lsb / 2).nextUp]
        }
        for i in 0..<1_000_000 {
            switch i % 4 {
            case 0: xs.append((rng.nextUnit() * 2 - 1) * 40000)
            case 1: xs.append((rng.nextUnit() * 2 - 1) * 4)
            case 2:  // exact ties k + 1/2 LSB
                xs.append((Double(rng.nextI32(in: -0x7FFF_FFFF...0x7FFF_FFFE)) + 0.5) * lsb)
            default: xs.append(Double(bitPattern: rng.next()))  // any double, NaN included
            }
        }
        for x in xs {
            var out: Int32 = 77, sat: UInt64 = 0
            let st = q16_from_double(&out, x, &sat)
            if x.isNaN {
                tD.check(st == Q16_ERR_NAN && out == 0 && sat == 0, "from_double(NaN)")
                continue
            }
            let (want, ws) = refFromDouble(x)
            tD.exact(Int64(out), want, "from_double(\(x))")
            tD.check(st == Q16_OK && sat == ws, "from_double(\(x)) status \(st) sat \(sat)")
            let f = Float(x)
            var outF: Int32 = 77, satF: UInt64 = 0
            let stF = q16_from_float(&outF, f, &satF)
            if f.isNaN { continue }
            let (wantF, wsF) = refFromDouble(Double(f))
            tF.exact(Int64(outF), wantF, "from_float(\(f))")
            tF.check(stF == Q16_OK && satF == wsF, "from_float(\(f)) status \(stF) sat \(satF)")
        }
        // Errors: NaN (double and float), NULL out.
        var out: Int32 = 5, sat: UInt64 = 0
        XCTAssertEqual(q16_from_double(&out, .nan, &sat), Q16_ERR_NAN); XCTAssertEqual(out, 0); XCTAssertEqual(sat, 0)
        out = 5
        XCTAssertEqual(q16_from_double(&out, -.nan, nil), Q16_ERR_NAN); XCTAssertEqual(out, 0)
        out = 5
        XCTAssertEqual(q16_from_float(&out, .nan, &sat), Q16_ERR_NAN); XCTAssertEqual(out, 0)
        XCTAssertEqual(q16_from_double(nil, 1.0, &sat), Q16_ERR_NULL)
        XCTAssertEqual(q16_from_float(nil, 1.0, &sat), Q16_ERR_NULL)
        // Saturation counted, including infinities.
        XCTAssertEqual(q16_from_double(&out, .infinity, &sat), Q16_OK); XCTAssertEqual(out, qMax)
        XCTAssertEqual(q16_from_double(&out, -.infinity, &sat), Q16_OK); XCTAssertEqual(out, qMin)
        XCTAssertEqual(q16_from_double(&out, 32768 - lsb / 2, &sat), Q16_OK); XCTAssertEqual(out, qMax)
        XCTAssertEqual(sat, 3)
        XCTAssertEqual(q16_from_double(&out, (32768 - lsb / 2).nextDown, &sat), Q16_OK)
        XCTAssertEqual(out, qMax); XCTAssertEqual(sat, 3)  // rounds to Q16_MAX exactly: not clamped
        XCTAssertEqual(q16_from_double(&out, -32768 - lsb / 2, &sat), Q16_OK)
        XCTAssertEqual(out, qMin); XCTAssertEqual(sat, 4)  // tie away from zero -> below Q16_MIN
        XCTAssertEqual(q16_from_double(&out, (-32768 - lsb / 2).nextUp, &sat), Q16_OK)
        XCTAssertEqual(out, qMin); XCTAssertEqual(sat, 4)
        XCTAssertEqual(q16_from_double(&out, -1.5 * lsb, nil), Q16_OK); XCTAssertEqual(out, -2)
        XCTAssertEqual(q16_from_double(&out, 0.5 * lsb, nil), Q16_OK); XCTAssertEqual(out, 1)
        tD.assertClean(); tF.assertClean()
    }

    // MARK: add / sub / neg / abs

    func testAddSubNegAbs() {
        var rng = SplitMix64(seed: 0xA0_0001)
        var tA = Tally("q16_add"), tS = Tally("q16_sub"), tN = Tally("q16_neg"), tB = Tally("q16_abs")
        var pairs: [(Int32, Int32)] = []
        for a in edges { for b in edges { pairs.append((a, b)) } }
        for i in 0..<1_000_000 {
            let a = rng.nextI32()
            // Half the pairs straddle the saturation boundary.
            let b = i % 2 == 0 ? rng.nextI32() : Int32(truncatingIfNeeded: Int64(qMax) - Int64(a) + Int64(rng.nextI32(in: -3...3)))
            pairs.append((a, b))
        }
        for (a, b) in pairs {
            var s: UInt64 = 0
            var r = q16_add(a, b, &s)
            var (w, ws) = clampQ(Int64(a) + Int64(b))
            tA.exact(Int64(r), w, "add(\(a),\(b))"); tA.check(s == ws, "add(\(a),\(b)) sat \(s)")
            s = 0
            r = q16_sub(a, b, &s)
            (w, ws) = clampQ(Int64(a) - Int64(b))
            tS.exact(Int64(r), w, "sub(\(a),\(b))"); tS.check(s == ws, "sub(\(a),\(b)) sat \(s)")
            s = 0
            r = q16_neg(a, &s)
            (w, ws) = clampQ(-Int64(a))
            tN.exact(Int64(r), w, "neg(\(a))"); tN.check(s == ws, "neg(\(a)) sat \(s)")
            s = 0
            r = q16_abs(a, &s)
            (w, ws) = clampQ(abs(Int64(a)))
            tB.exact(Int64(r), w, "abs(\(a))"); tB.check(s == ws, "abs(\(a)) sat \(s)")
        }
        var s: UInt64 = 0
        XCTAssertEqual(q16_neg(qMin, &s), qMax); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_abs(qMin, &s), qMax); XCTAssertEqual(s, 2)
        XCTAssertEqual(q16_add(qMax, 1, &s), qMax); XCTAssertEqual(s, 3)
        XCTAssertEqual(q16_sub(qMin, 1, &s), qMin); XCTAssertEqual(s, 4)
        XCTAssertEqual(q16_add(qMax, 1, nil), qMax)
        XCTAssertEqual(q16_neg(qMax, &s), qMin + 1); XCTAssertEqual(s, 4)
        tA.assertClean(); tS.assertClean(); tN.assertClean(); tB.assertClean()
    }

    // MARK: mul

    func testMul() {
        var rng = SplitMix64(seed: 0xA0_0002)
        var t = Tally("q16_mul")
        var pairs: [(Int32, Int32)] = []
        for a in edges { for b in edges { pairs.append((a, b)) } }
        for i in 0..<1_000_000 {
            let a: Int32
            switch i % 4 {
            case 0: a = rng.nextI32()
            case 1: a = rng.nextI32(in: -0x40000...0x40000)
            case 2: a = rng.nextI32(in: -0x200...0x200)
            default: a = rng.nextI32(in: -0x0200_0000...0x0200_0000)
            }
            var b: Int32
            switch i % 3 {
            case 0: b = rng.nextI32()
            case 1: b = rng.nextI32(in: -0x40000...0x40000)
            default:  // product near the saturation boundary +-2^47
                let target = (rng.next() & 1 == 0 ? 1 : -1) * (Int64(1) << 47)
                let den = a == 0 ? 1 : Int64(a)
                b = Int32(clamping: target / den + Int64(rng.nextI32(in: -2...2)))
            }
            if i % 5 == 0 { b = b & ~0x7FFF | 0x8000 }  // many exact ties (a odd)
            pairs.append((a, b))
        }
        for (a, b) in pairs {
            var s: UInt64 = 0
            let r = q16_mul(a, b, &s)
            let (w, ws) = clampQ(divRound(Int64(a) * Int64(b), 65536))
            t.exact(Int64(r), w, "mul(\(a),\(b))")
            t.check(s == ws, "mul(\(a),\(b)) sat \(s)")
        }
        XCTAssertEqual(q16_mul(1, 0x8000, nil), 1)     // 0.5 LSB -> 1 (away)
        XCTAssertEqual(q16_mul(-1, 0x8000, nil), -1)   // -0.5 LSB -> -1 (away)
        XCTAssertEqual(q16_mul(1, 0x7FFF, nil), 0)
        XCTAssertEqual(q16_mul(3, 0x8000, nil), 2)     // 1.5 -> 2
        XCTAssertEqual(q16_mul(-3, 0x8000, nil), -2)
        var s: UInt64 = 0
        XCTAssertEqual(q16_mul(qMin, qMin, &s), qMax); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_mul(qMin, Q16_ONE, &s), qMin); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_mul(qMax, -Q16_ONE, &s), -qMax); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_mul(qMin, -Q16_ONE, &s), qMax); XCTAssertEqual(s, 2)
        t.assertClean()
    }

    // MARK: div / recip

    func testDivRecip() {
        var rng = SplitMix64(seed: 0xA0_0003)
        var t = Tally("q16_div"), tr = Tally("q16_recip")
        var pairs: [(Int32, Int32)] = []
        for a in edges { for b in edges { pairs.append((a, b)) } }
        for i in 0..<1_000_000 {
            let a: Int32 = i % 3 == 0 ? rng.nextI32() : rng.nextI32(in: -0x80000...0x80000)
            var b: Int32
            switch i % 4 {
            case 0: b = rng.nextI32()
            case 1: b = rng.nextI32(in: -0x20000...0x20000)
            case 2: b = rng.nextI32(in: -16...16)
            default:  // quotient near the saturation boundary
                let num = Int64(a) * 65536
                b = Int32(clamping: num / Int64(qMax) + Int64(rng.nextI32(in: -2...2)))
            }
            pairs.append((a, b))
        }
        for (a, b) in pairs {
            var out: Int32 = 12345, s: UInt64 = 0
            let st = q16_div(&out, a, b, &s)
            if b == 0 {
                let want: Int32 = a > 0 ? qMax : (a < 0 ? qMin : 0)
                t.check(st == Q16_ERR_DIV_ZERO && out == want && s == (a == 0 ? 0 : 1), "div(\(a),0)")
                continue
            }
            let (w, ws) = clampQ(divRound(Int64(a) * 65536, Int64(b)))
            t.exact(Int64(out), w, "div(\(a),\(b))")
            t.check(st == Q16_OK && s == ws, "div(\(a),\(b)) status \(st) sat \(s)")
        }
        var recips: [Int32] = edges
        for _ in 0..<1_000_000 { recips.append(rng.nextI32()) }
        for i in Int32(-70000)...70000 { recips.append(i) }
        for a in recips {
            var out: Int32 = 12345, s: UInt64 = 0
            let st = q16_recip(&out, a, &s)
            if a == 0 {
                tr.check(st == Q16_ERR_DIV_ZERO && out == qMax && s == 1, "recip(0)")
                continue
            }
            let (w, ws) = clampQ(divRound(Int64(1) << 32, Int64(a)))
            tr.exact(Int64(out), w, "recip(\(a))")
            tr.check(st == Q16_OK && s == ws, "recip(\(a)) status \(st) sat \(s)")
        }
        var out: Int32 = 9, s: UInt64 = 0
        XCTAssertEqual(q16_div(&out, 5, 0, &s), Q16_ERR_DIV_ZERO); XCTAssertEqual(out, qMax); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_div(&out, -5, 0, &s), Q16_ERR_DIV_ZERO); XCTAssertEqual(out, qMin); XCTAssertEqual(s, 2)
        out = 9
        XCTAssertEqual(q16_div(&out, 0, 0, &s), Q16_ERR_DIV_ZERO); XCTAssertEqual(out, 0); XCTAssertEqual(s, 2)
        XCTAssertEqual(q16_div(&out, qMin, 0, nil), Q16_ERR_DIV_ZERO); XCTAssertEqual(out, qMin)
        XCTAssertEqual(q16_recip(&out, 0, &s), Q16_ERR_DIV_ZERO); XCTAssertEqual(out, qMax); XCTAssertEqual(s, 3)
        XCTAssertEqual(q16_div(nil, 1, 1, &s), Q16_ERR_NULL)
        XCTAssertEqual(q16_recip(nil, 1, &s), Q16_ERR_NULL)
        XCTAssertEqual(q16_div(&out, qMin, -Q16_ONE, &s), Q16_OK); XCTAssertEqual(out, qMax); XCTAssertEqual(s, 4)
        XCTAssertEqual(q16_div(&out, 1, 2 * Q16_ONE, &s), Q16_OK); XCTAssertEqual(out, 1)   // 0.5 LSB tie -> 1
        XCTAssertEqual(q16_div(&out, -1, 2 * Q16_ONE, &s), Q16_OK); XCTAssertEqual(out, -1) // -> -1
        XCTAssertEqual(q16_recip(&out, 1, &s), Q16_OK); XCTAssertEqual(out, qMax); XCTAssertEqual(s, 5)
        XCTAssertEqual(q16_recip(&out, 3 * Q16_ONE, &s), Q16_OK); XCTAssertEqual(out, 21845)
        t.assertClean(); tr.assertClean()
    }

    // MARK: sqrt

    func testSqrt() {
        var rng = SplitMix64(seed: 0xB0_0001)
        var t = Tally("q16_sqrt")
        var xs: [Int32] = edges.filter { $0 >= 0 }
        for i in Int32(0)...300_000 { xs.append(i) }
        for _ in 0..<1_000_000 { xs.append(Int32(rng.nextU32() >> 1)) }
        // Around perfect squares and the rounding midpoints r^2 + r.
        for _ in 0..<100_000 {
            let r = UInt64(rng.nextI32(in: 1...11_863_283))
            for n in [r * r, r * r + r, r * r + r + 1] where n >= 1 {
                for d: Int64 in -1...1 {
                    let N = Int64(n) + d
                    if N >= 0 && N % 65536 == 0 && N / 65536 <= Int64(qMax) { xs.append(Int32(N / 65536)) }
                }
            }
        }
        xs.append(qMax)
        for x in xs {
            var out: Int32 = -5
            let st = q16_sqrt(&out, x)
            let n = UInt64(x) << 16
            let r = isqrt(n)
            let want = n - r * r > r ? r + 1 : r
            t.exact(Int64(out), Int64(want), "sqrt(\(x))")
            t.check(st == Q16_OK, "sqrt(\(x)) status \(st)")
        }
        var out: Int32 = 5
        XCTAssertEqual(q16_sqrt(&out, -1), Q16_ERR_DOMAIN); XCTAssertEqual(out, 0)
        out = 5
        XCTAssertEqual(q16_sqrt(&out, qMin), Q16_ERR_DOMAIN); XCTAssertEqual(out, 0)
        XCTAssertEqual(q16_sqrt(nil, 1), Q16_ERR_NULL)
        XCTAssertEqual(q16_sqrt(&out, 0), Q16_OK); XCTAssertEqual(out, 0)
        XCTAssertEqual(q16_sqrt(&out, 1), Q16_OK); XCTAssertEqual(out, 256)        // sqrt(2^-16) = 2^-8
        XCTAssertEqual(q16_sqrt(&out, 4 * Q16_ONE), Q16_OK); XCTAssertEqual(out, 2 * Q16_ONE)
        XCTAssertEqual(q16_sqrt(&out, qMax), Q16_OK); XCTAssertEqual(out, 11_863_283)  // sqrt(32768) * 2^16
        t.assertClean()
    }

    // MARK: exp

    /// Error of q16_exp(x) against the double reference, in LSB (saturation checked separately).
    private func checkExp(_ x: Int32, _ t: inout Tally, _ tHeader: inout Tally) {
        var s: UInt64 = 0
        let r = q16_exp(x, &s)
        let ref = Foundation.exp(Double(x) * lsb) * 65536  // in LSB
        if ref >= Double(qMax) + 0.5 {
            t.check(r == qMax && s == 1, "exp(\(x)) = \(r) sat \(s): must saturate")
            return
        }
        t.check(s == 0, "exp(\(x)) sat \(s)")
        if ref < 0.5 { t.check(r == 0, "exp(\(x)) = \(r), want exactly 0 (ref \(ref) LSB)") }
        let err = abs(Double(r) - ref)
        t.near(err, 0.5 + 1e-5, "exp(\(x))")
        tHeader.near(err, max(1.0, ref * 0x1p-15), "exp(\(x)) header bound")
    }

    func testExp() {
        var t = Tally("q16_exp"), th = Tally("q16_exp header bound")
        // Every input where exp is neither 0 nor saturated, and beyond: [-13, 11].
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for x in Int32(-13 * 65536)...Int32(11 * 65536) {
            checkExp(x, &t, &th)
            hash = (hash ^ UInt64(UInt32(bitPattern: q16_exp(x, nil)))) &* 0x100_0000_01B3
        }
        // Golden FNV-1a of all outputs over [-13, 11]: the integer-only code must give
        // these bits on every architecture.
        XCTAssertEqual(hash, ScalarTests.expGoldenHash, "exp outputs changed (hash \(String(hash, radix: 16)))")
        var rng = SplitMix64(seed: 0xE0_0001)
        for _ in 0..<1_000_000 { checkExp(rng.nextI32(), &t, &th) }
        for x in edges { checkExp(x, &t, &th) }
        // Underflow point: exp(x) < 2^-17 <=> x < -17 ln 2 = -11.78350...
        let under = Int32((-17 * Foundation.log(2.0) * 65536).rounded(.up))  // first x with exp >= 2^-17
        XCTAssertEqual(q16_exp(under - 1, nil), 0)
        XCTAssertEqual(q16_exp(under, nil), 1)
        // Saturation point: exp(x) >= 32768 - 2^-17 saturates.
        let top = Int32((Foundation.log(32768 - lsb / 2) * 65536).rounded(.up))
        var s: UInt64 = 0
        // top - 1: the largest input that does not saturate (outputs are ~2^15 LSB apart here).
        let below = Foundation.exp(Double(top - 1) * lsb) * 65536
        XCTAssertLessThan(below, Double(qMax) + 0.5)
        XCTAssertEqual(q16_exp(top - 1, &s), Int32(below.rounded())); XCTAssertEqual(s, 0)
        XCTAssertEqual(q16_exp(top, &s), qMax); XCTAssertEqual(s, 1)
        XCTAssertEqual(q16_exp(qMax, &s), qMax); XCTAssertEqual(s, 2)
        XCTAssertEqual(q16_exp(qMax, nil), qMax)
        XCTAssertEqual(q16_exp(qMin, &s), 0); XCTAssertEqual(s, 2)
        XCTAssertEqual(q16_exp(0, &s), Q16_ONE)
        XCTAssertEqual(q16_exp(1, &s), Q16_ONE + 1)
        XCTAssertEqual(q16_exp(-1, &s), Q16_ONE - 1)
        XCTAssertEqual(q16_exp(Q16_ONE, &s), 178_145)  // e * 2^16 = 178145.2
        XCTAssertEqual(s, 2)
        t.assertClean(); th.assertClean()
    }

    // MARK: log

    private func checkLog(_ x: Int32, _ t: inout Tally) {
        var out: Int32 = 0
        let st = q16_log(&out, x)
        let ref = Foundation.log(Double(x) * lsb) * 65536
        t.near(abs(Double(out) - ref), 0.5 + 1e-5, "log(\(x))")
        t.check(st == Q16_OK, "log(\(x)) status \(st)")
    }

    func testLog() {
        var t = Tally("q16_log")
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        // Every input in [1, 2^20] (2^-16 ... 16).
        for x in Int32(1)...(1 << 20) {
            checkLog(x, &t)
            var o: Int32 = 0
            _ = q16_log(&o, x)
            hash = (hash ^ UInt64(UInt32(bitPattern: o))) &* 0x100_0000_01B3
        }
        XCTAssertEqual(hash, ScalarTests.logGoldenHash, "log outputs changed (hash \(String(hash, radix: 16)))")
        // A stride sweep over the whole positive range: 10.2 million inputs.
        var x: Int64 = 1 << 20
        while x <= Int64(qMax) { checkLog(Int32(x), &t); x += 209 }
        // Around every power of two and around sqrt(2) * 2^k (the reduction's switch point).
        for k in 0..<31 {
            let p = Int64(1) << k
            let q = Int64((Double(p) * 2.0.squareRoot()).rounded())
            for c in [p, q] {
                for d in Int64(-300)...300 where c + d >= 1 && c + d <= Int64(qMax) { checkLog(Int32(c + d), &t) }
            }
        }
        var rng = SplitMix64(seed: 0x10_0001)
        for _ in 0..<1_000_000 { checkLog(Int32(rng.nextU32() >> 1) | 1, &t) }
        for _ in 0..<1_000_000 { checkLog(Int32((rng.nextU32() >> 1) >> (rng.nextU32() % 31)) | 1, &t) }
        checkLog(qMax, &t)
        // Errors: x <= 0 -> Q16_ERR_DOMAIN, *out = Q16_MIN.
        var out: Int32 = 5
        XCTAssertEqual(q16_log(&out, 0), Q16_ERR_DOMAIN); XCTAssertEqual(out, qMin)
        out = 5
        XCTAssertEqual(q16_log(&out, -Q16_ONE), Q16_ERR_DOMAIN); XCTAssertEqual(out, qMin)
        out = 5
        XCTAssertEqual(q16_log(&out, qMin), Q16_ERR_DOMAIN); XCTAssertEqual(out, qMin)
        XCTAssertEqual(q16_log(nil, 1), Q16_ERR_NULL)
        XCTAssertEqual(q16_log(&out, Q16_ONE), Q16_OK); XCTAssertEqual(out, 0)
        XCTAssertEqual(q16_log(&out, 1), Q16_OK); XCTAssertEqual(out, -726_817)  // -16 ln2 * 2^16 = -726817.4
        XCTAssertEqual(q16_log(&out, qMax), Q16_OK); XCTAssertEqual(out, 681_391)  // ln(32768) * 2^16 = 681390.9
        t.assertClean()
    }

    static let expGoldenHash: UInt64 = 0x5EE8_7925_224A_B75E
    static let logGoldenHash: UInt64 = 0x95BB_5335_D72F_9C23

    // MARK: softmax

    /// Double reference: probabilities (in LSB) and logsumexp - max (in real units).
    private func refSoftmax(_ z: ArraySlice<Int32>) -> (p: [Double], lse: Double) {
        let m = z.max()!
        let e = z.map { Foundation.exp(Double(Int64($0) - Int64(m)) * lsb) }
        let s = e.reduce(0, +)
        return (e.map { $0 / s * 65536 }, Foundation.log(s))
    }

    /// Random logits of varied shapes and spreads.
    private func randomLogits(_ rng: inout SplitMix64, rows: Int, cols: Int) -> [Int32] {
        let spread: [Int32] = [1, 0x100, 0x1_0000, 0x4_0000, 0x10_0000, 0x100_0000, qMax]
        var z = [Int32](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let w = spread[Int(rng.next() % UInt64(spread.count))]
            let c = rng.nextI32(in: -0x1000_0000...0x1000_0000)
            for j in 0..<cols {
                z[r * cols + j] = Int32(clamping: Int64(c) + Int64(rng.nextI32(in: -w...w)))
                if rng.next() % 17 == 0 { z[r * cols + j] = z[r * cols + max(0, j - 1)] }  // exact ties
            }
        }
        return z
    }

    func testSoftmax() {
        var rng = SplitMix64(seed: 0x50_0001)
        var tP = Tally("q16_softmax p"), tSum = Tally("q16_softmax row sum")
        var elements = 0
        let shapes: [(Int, Int)] = [(1, 1), (1, 2), (3, 10), (64, 10), (16, 100), (2, 1000), (1, 5000)]
        while elements < 1_000_000 {
            for (rows, cols) in shapes {
                let z = randomLogits(&rng, rows: rows, cols: cols)
                var p = [Int32](repeating: -9, count: rows * cols)
                var sat: UInt64 = 0
                XCTAssertEqual(q16_softmax(&p, z, Int32(rows), Int32(cols), &sat), Q16_OK)
                XCTAssertEqual(sat, 0)
                // In place gives the same bits.
                var zz = z
                XCTAssertEqual(zz.withUnsafeMutableBufferPointer { q16_softmax($0.baseAddress, $0.baseAddress, Int32(rows), Int32(cols), nil) }, Q16_OK)
                tP.check(zz == p, "softmax in place differs (\(rows)x\(cols))")
                for r in 0..<rows {
                    let ref = refSoftmax(z[(r * cols)..<((r + 1) * cols)])
                    var sum: Int64 = 0
                    for j in 0..<cols {
                        let v = p[r * cols + j]
                        sum += Int64(v)
                        tP.near(abs(Double(v) - ref.p[j]), 0.5 + 1e-3, "p[\(r),\(j)] of \(rows)x\(cols)")
                    }
                    tSum.near(Double(abs(sum - 65536)), Double(cols) / 2, "row sum \(r) of \(rows)x\(cols)")
                }
                elements += rows * cols
            }
        }
        // Wide row where most terms are below half an LSB: exps that were rounded
        // to Q16 before summing would lose ~2000 LSB of the sum here.
        let cols = 20000
        var z = [Int32](repeating: -Int32((11.5 * 65536).rounded()), count: cols)  // exp = 1.0e-5 ~ 0.66 LSB
        z[7] = 0
        for j in stride(from: 1, to: cols, by: 2) { z[j] = -Int32((12.0 * 65536).rounded()) } // 0.40 LSB
        var p = [Int32](repeating: 0, count: cols)
        XCTAssertEqual(q16_softmax(&p, z, 1, Int32(cols), nil), Q16_OK)
        let ref = refSoftmax(z[...])
        var worst = 0.0
        for j in 0..<cols { worst = max(worst, abs(Double(p[j]) - ref.p[j])) }
        tP.near(worst, 0.5 + 1e-3, "wide row")
        XCTAssertEqual(p[7], Int32((ref.p[7]).rounded()))
        // One row with everything equal: exactly 1/cols each (rounded).
        var eq = [Int32](repeating: 12345, count: 3)
        XCTAssertEqual(q16_softmax(&eq, eq, 1, 3, nil), Q16_OK)
        XCTAssertEqual(eq, [21845, 21845, 21845])
        // Extremes in one row: Q16_MIN and Q16_MAX (difference 2^32 LSB).
        var ext: [Int32] = [qMin, qMax, qMax, 0]
        XCTAssertEqual(q16_softmax(&ext, ext, 1, 4, nil), Q16_OK)
        XCTAssertEqual(ext, [0, 32768, 32768, 0])
        tP.assertClean(); tSum.assertClean()
    }

    func testSoftmaxXent() {
        var rng = SplitMix64(seed: 0x50_0002)
        var tG = Tally("q16_softmax_xent grad"), tL = Tally("q16_softmax_xent loss")
        var elements = 0
        let shapes: [(Int, Int)] = [(1, 1), (2, 2), (32, 10), (8, 100), (1, 3000)]
        while elements < 1_000_000 {
            for (rows, cols) in shapes {
                let z = randomLogits(&rng, rows: rows, cols: cols)
                let labels = (0..<rows).map { _ in rng.nextI32(in: 0...Int32(cols - 1)) }
                var g = [Int32](repeating: -9, count: rows * cols)
                var loss = [Int32](repeating: -9, count: rows)
                var sat: UInt64 = 0
                XCTAssertEqual(q16_softmax_xent(&g, &loss, z, labels, Int32(rows), Int32(cols), &sat), Q16_OK)
                var wantSat: UInt64 = 0
                for r in 0..<rows {
                    let y = Int(labels[r])
                    let row = z[(r * cols)..<((r + 1) * cols)]
                    let ref = refSoftmax(row)
                    for j in 0..<cols {
                        let want = ref.p[j] - (j == y ? 65536 : 0)
                        tG.near(abs(Double(g[r * cols + j]) - want), 0.5 + 1e-3, "grad[\(r),\(j)] of \(rows)x\(cols)")
                    }
                    let gap = Double(Int64(row.max()!) - Int64(z[r * cols + y]))
                    let refLoss = ref.lse * 65536 + gap
                    if refLoss >= Double(qMax) + 0.5 {
                        wantSat += 1
                        tL.check(loss[r] == qMax, "loss[\(r)] = \(loss[r]) must saturate")
                    } else {
                        tL.near(abs(Double(loss[r]) - refLoss), 0.5 + 1e-3, "loss[\(r)] of \(rows)x\(cols)")
                    }
                }
                tL.check(sat == wantSat, "sat \(sat), want \(wantSat)")
                // grad == z in place, and NULL grad / NULL loss, give the same bits.
                var zz = z
                var loss2 = [Int32](repeating: 0, count: rows)
                XCTAssertEqual(zz.withUnsafeMutableBufferPointer {
                    q16_softmax_xent($0.baseAddress, &loss2, $0.baseAddress, labels, Int32(rows), Int32(cols), nil)
                }, Q16_OK)
                tG.check(zz == g && loss2 == loss, "xent in place differs")
                var loss3 = [Int32](repeating: 0, count: rows)
                XCTAssertEqual(q16_softmax_xent(nil, &loss3, z, labels, Int32(rows), Int32(cols), nil), Q16_OK)
                var g3 = [Int32](repeating: 0, count: rows * cols)
                XCTAssertEqual(q16_softmax_xent(&g3, nil, z, labels, Int32(rows), Int32(cols), nil), Q16_OK)
                tG.check(loss3 == loss && g3 == g, "xent with NULL outputs differs")
                elements += rows * cols
            }
        }
        // Loss saturation: the label's logit 2^32 LSB below the max.
        var g = [Int32](repeating: 0, count: 2), loss: [Int32] = [0]
        var sat: UInt64 = 0
        XCTAssertEqual(q16_softmax_xent(&g, &loss, [qMin, qMax], [0], 1, 2, &sat), Q16_OK)
        XCTAssertEqual(loss, [qMax]); XCTAssertEqual(sat, 1); XCTAssertEqual(g, [-65536, 65536])
        XCTAssertEqual(q16_softmax_xent(&g, &loss, [qMin, qMax], [1], 1, 2, &sat), Q16_OK)
        XCTAssertEqual(loss, [0]); XCTAssertEqual(sat, 1); XCTAssertEqual(g, [0, 0])
        // Uniform row: loss = ln(cols) exactly rounded.
        XCTAssertEqual(q16_softmax_xent(&g, &loss, [5, 5], [1], 1, 2, nil), Q16_OK)
        XCTAssertEqual(loss, [45426]); XCTAssertEqual(g, [32768, -32768])  // ln 2 * 2^16 = 45426.1
        tG.assertClean(); tL.assertClean()
    }

    func testSoftmaxErrors() {
        let z: [Int32] = [1, 2, 3, 4, 5, 6]
        var p = [Int32](repeating: 77, count: 6)
        var loss: [Int32] = [77, 77]
        // NULL pointers.
        XCTAssertEqual(q16_softmax(nil, z, 2, 3, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_softmax(&p, nil, 2, 3, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_softmax_xent(&p, &loss, nil, [0, 0], 2, 3, nil), Q16_ERR_NULL)
        XCTAssertEqual(q16_softmax_xent(&p, &loss, z, nil, 2, 3, nil), Q16_ERR_NULL)
        // Sizes: zero / negative rows or cols, rows * cols overflowing int.
        for (r, c): (Int32, Int32) in [(0, 3), (2, 0), (-1, 3), (2, -3), (0, 0), (65536, 65536), (Int32.max, 2), (2, Int32.max)] {
            XCTAssertEqual(q16_softmax(&p, z, r, c, nil), Q16_ERR_SIZE, "\(r)x\(c)")
            XCTAssertEqual(q16_softmax_xent(&p, &loss, z, [0, 0], r, c, nil), Q16_ERR_SIZE, "\(r)x\(c)")
        }
        XCTAssertEqual(p, [Int32](repeating: 77, count: 6))
        // Labels out of range: error, nothing written (even for the valid rows before it).
        for labels: [Int32] in [[0, 3], [-1, 0], [3, 0], [0, Int32.max], [Int32.min, 1]] {
            var sat: UInt64 = 0
            XCTAssertEqual(q16_softmax_xent(&p, &loss, z, labels, 2, 3, &sat), Q16_ERR_LABEL, "\(labels)")
            XCTAssertEqual(p, [Int32](repeating: 77, count: 6))
            XCTAssertEqual(loss, [77, 77])
            XCTAssertEqual(sat, 0)
        }
        XCTAssertEqual(q16_softmax_xent(nil, nil, z, [2, 0], 2, 3, nil), Q16_OK)
        XCTAssertEqual(q16_softmax_xent(&p, &loss, z, [2, 0], 2, 3, nil), Q16_OK)
        XCTAssertNotEqual(loss, [77, 77])
    }
}
