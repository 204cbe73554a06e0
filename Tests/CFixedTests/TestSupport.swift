// TestSupport.swift -- helpers shared by the C-level kernel tests (ConvKernelTests, UpdateKernelTests,
// and the q16 range constants for every CFixed test): the check log, the exact Int128 models of
// rounding and clamping written from q16.h, the seeded value spreads and a few pointer helpers.

import CFixed
import XCTest

let qMax = Int32.max // Q16_MAX
let qMin = Int32.min // Q16_MIN
let satStart: UInt64 = 1000 // every call adds to a non-zero count

// MARK: - Check log

/// Counts checks and failures, keeps the first failure message, prints the count at the end
/// ("<suite>: <name>: N checks, F failed").
struct CheckLog {
    let suite: String
    let name: String
    private(set) var total = 0
    private(set) var failed = 0
    private var firstFailure: String?

    init(suite: String, name: String) {
        self.suite = suite
        self.name = name
    }

    mutating func expect(_ ok: Bool, _ why: @autoclosure () -> String) {
        total += 1
        guard !ok else { return }
        fail(why())
    }

    mutating func expectEqual<T: Equatable>(_ got: T, _ want: T, _ why: @autoclosure () -> String) {
        total += 1
        guard got != want else { return }
        fail("\(why()): got \(got), want \(want)")
    }

    /// The first failure is also printed at once: a later check that crashes (a kernel that skipped
    /// an overlap check dereferencing a bogus address) still leaves the first wrong result in the log.
    private mutating func fail(_ message: String) {
        failed += 1
        guard firstFailure == nil else { return }
        firstFailure = message
        print("\(suite): \(name): first failure: \(message)")
        fflush(nil) // every C stream (stdout is not concurrency-safe to name in Swift 6)
    }

    func finish(file: StaticString = #filePath, line: UInt = #line) {
        print("\(suite): \(name): \(total) checks, \(failed) failed")
        XCTAssertGreaterThan(total, 0, "\(name): no checks ran", file: file, line: line)
        XCTAssertEqual(failed, 0, "\(name): \(failed)/\(total) failed; first: \(firstFailure ?? "-")",
                       file: file, line: line)
    }
}

// MARK: - Exact arithmetic models (Int128)

/// SR(t / 2^s): floor(t / 2^s) plus 1 when the top 32 bits of the s-bit fraction,
/// floor(frac * 2^32 / 2^s), exceed rnd. s in 0...90 (s = 0: no fraction, exact).
func srExact(_ t: Int128, _ s: Int, _ rnd: UInt32) -> Int128 {
    let fl = t >> s // arithmetic shift: floor
    let frac = t - (fl << s) // 0 ..< 2^s
    let top = (frac << 32) >> s // 0 ..< 2^32
    return fl + (UInt32(top) > rnd ? 1 : 0)
}

/// Clamp to q16, adding 1 to `sat` when clamped.
func clampCount(_ v: Int128, _ sat: inout UInt64) -> Int32 {
    if v > Int128(qMax) { sat += 1; return qMax }
    if v < Int128(qMin) { sat += 1; return qMin }
    return Int32(v)
}

/// round(n / d) to nearest, ties away from zero, for d > 0.
func divNearest(_ n: Int128, _ d: Int128) -> Int128 {
    let mag = n < 0 ? -n : n
    var q = mag / d
    if 2 * (mag % d) >= d { q += 1 }
    return n < 0 ? -q : q
}

// MARK: - Value generators

let edgeValues: [Int32] = [qMin, qMin + 1, -65536, -2, -1, 0, 1, 2, 65536, qMax - 1, qMax]

enum Spread: CaseIterable {
    case unit // |x| <= 1.0: typical activations and gradients
    case wide // |x| <= 2^23 LSB (128.0)
    case full // the whole q16 range: 128-bit paths and saturation
    case edges // only the extremes and the neighbours of 0
    case mixed // random magnitudes 2^0...2^31, a quarter of them extremes
}

func value(_ s: Spread, _ rng: inout SplitMix64) -> Int32 {
    switch s {
    case .unit: return rng.nextI32(in: -65536 ... 65536)
    case .wide: return rng.nextI32(in: -(1 << 23) ... (1 << 23))
    case .full: return rng.nextI32()
    case .edges: return edgeValues[Int(rng.next() % UInt64(edgeValues.count))]
    case .mixed:
        if rng.next() % 4 == 0 { return edgeValues[Int(rng.next() % UInt64(edgeValues.count))] }
        let bits = Int(rng.next() % 32)
        return Int32(truncatingIfNeeded: Int64(bitPattern: rng.next()) >> (63 - bits))
    }
}

func values(_ count: Int, _ s: Spread, _ rng: inout SplitMix64) -> [Int32] {
    (0 ..< count).map { _ in value(s, &rng) }
}

/// A Q0.32 rate: random, or one of the extremes.
func rate(_ rng: inout SplitMix64) -> UInt32 {
    switch rng.next() % 6 {
    case 0: return UInt32.max
    case 1: return 1
    case 2: return 1 << 31
    default: return rng.nextU32()
    }
}

// MARK: - Pointers

/// Address near the top of the address space (never dereferenced: only overlap checks see it).
func topAddress(_ bytesBelowTop: UInt) -> UnsafeMutablePointer<Int32> {
    UnsafeMutablePointer<Int32>(bitPattern: UInt.max - bytesBelowTop + 1)!
}

/// Runs `body` with the base address of `a`, or nil when `a` is nil.
func withOptionalBase<R>(_ a: inout [Int32]?, _ body: (UnsafeMutablePointer<Int32>?) -> R) -> R {
    guard a != nil else { return body(nil) }
    return a!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}

/// Runs `body` with the base address of `a`, or nil when `a` is nil.
func withOptionalConst<R>(_ a: [Int32]?, _ body: (UnsafePointer<Int32>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
}
