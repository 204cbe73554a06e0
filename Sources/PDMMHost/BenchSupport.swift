// BenchSupport.swift -- what `bench kernels` (BenchKernels.swift) and `bench conv` (BenchConv.swift)
// share: the timing loop, the deterministic inputs, the q16_gemm_nn reference rate, the float32
// GEMM baseline and the number format of the tables.

import CFixed
import Foundation

/// Runs `body` once to warm up, then in groups of calls (each group >= ~2 ms)
/// for at least `seconds` in all; returns the GMAC/s of the fastest group, so a
/// group that the OS preempted on a busy machine does not count against the kernel.
func benchGMACs(macs: Double, seconds: Double, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    func secs(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    let t0 = clock.now
    body()
    let once = max(secs(clock.now - t0), 1e-7)
    let perGroup = max(1, Int(0.002 / once))
    var best = Double.infinity
    let start = clock.now
    repeat {
        let g0 = clock.now
        for _ in 0 ..< perGroup { body() }
        best = min(best, secs(clock.now - g0) / Double(perGroup))
    } while secs(clock.now - start) < seconds
    return macs / best / 1e9
}

/// A GMAC/s (or ratio) cell of the benchmark tables: two decimals.
func benchCell(_ v: Double) -> String { String(format: "%.2f", v) }

/// A small deterministic generator for the benchmark inputs.
struct BenchLCG {
    var state: UInt64

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state
    }

    /// A uniform q16 value in [-1, 1].
    mutating func q16Unit() -> Int32 {
        Int32(truncatingIfNeeded: Int64((next() >> 33) % 131_073) - 65536)
    }
}

/// The inputs of the square n x n x n GEMM benchmarks: A and B with |x| <= 1.0, typical
/// weights/activations (the int64 fast path), from a generator seeded by n.
func benchSquareOperands(_ n: Int) -> (a: [Int32], b: [Int32]) {
    var rng = BenchLCG(state: 0x5EED_0000 &+ UInt64(n))
    let a: [Int32] = (0 ..< n * n).map { _ in rng.q16Unit() }
    let b: [Int32] = (0 ..< n * n).map { _ in rng.q16Unit() }
    return (a, b)
}

/// GMAC/s of q16_gemm_nn on the square operands of `benchSquareOperands(n)`, C written to `c`
/// (n * n values); calls that return a status other than Q16_OK are counted in `failed`.
func benchQ16GemmNN(_ n: Int, a: [Int32], b: [Int32], c: inout [Int32], seconds: Double, failed: inout Int) -> Double {
    let N = Int32(n)
    var sat: UInt64 = 0
    return benchGMACs(macs: Double(n) * Double(n) * Double(n), seconds: seconds) {
        if q16_gemm_nn(&c, a, b, N, N, N, &sat) != Q16_OK { failed += 1 }
    }
}

/// C[m x n] (+)= A[m x k] * B[k x n], Float, row-major: cache-blocked i-p-j loops.
/// The inner loop is a contiguous axpy over a row of C, which the optimizer vectorises.
@inline(__always)
func sgemmBlocked(_ C: UnsafeMutablePointer<Float>, _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                  m: Int, n: Int, k: Int, accumulate: Bool = false)
{
    let kc = 128, nc = 256
    if !accumulate { C.update(repeating: 0, count: m * n) }
    var j0 = 0
    while j0 < n {
        let j1 = min(j0 + nc, n)
        var p0 = 0
        while p0 < k {
            let p1 = min(p0 + kc, k)
            for i in 0 ..< m {
                let crow = C + i * n
                let arow = A + i * k
                for p in p0 ..< p1 {
                    let av = arow[p]
                    let brow = B + p * n
                    for j in j0 ..< j1 {
                        crow[j] += av * brow[j]
                    }
                }
            }
            p0 = p1
        }
        j0 = j1
    }
}
