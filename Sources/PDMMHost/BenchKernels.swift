// BenchKernels.swift -- single-thread throughput of the CFixed Q16.16 GEMMs
// next to a float32 GEMM written in Swift, measured in the same process.
//
// What is compared, honestly:
//  - q16_gemm_nn / q16_gemm_nt / q16_gemm_tn from CFixed: exact int64
//    accumulation (the int64 fast path: the inputs are NN-sized, |x| <= 1),
//    one rounding and saturation per output; on x86-64 Linux the C code is
//    compiled for AVX-512F / AVX2 / baseline and the loader picks one.
//  - f32: a plain blocked i-p-j triple loop over Float in Swift (cache
//    blocks of 128 x 256, inner loop a contiguous axpy that the optimizer
//    vectorises; no FMA contraction, no register tiling, no BLAS), built for
//    the package's default target CPU (baseline x86-64 = SSE2 unless the
//    build passes -target-cpu). It is a "what a straightforward Swift loop
//    gets" baseline, not a tuned SGEMM.
// MAC = one multiply-add; GMAC/s = m*n*k / seconds / 1e9.

import CFixed
import Foundation

/// Times q16_gemm_{nn,nt,tn} and a Swift float32 GEMM for square sizes n x n x n;
/// each measurement repeats the call for at least `seconds` (after one warm-up
/// call) and keeps the fastest group of calls. Returns a Markdown table.
func runKernelBench(sizes: [Int], seconds: Double) -> String {
    var lines: [String] = []
    lines.append("Single thread, square C[n x n] = A[n x n] * B[n x n]; GMAC/s (higher is better), "
        + "best group of calls over \(seconds) s per cell.")
    lines.append("")
    lines.append("| n | q16 nn | q16 nt | q16 tn | f32 (Swift loop) | nn / f32 | nt / f32 | tn / f32 |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    var sink: Int64 = 0
    for n in sizes where n > 0 {
        let count = n * n
        var rng = BenchLCG(state: 0x5EED_0000 &+ UInt64(n))
        // |x| <= 1.0: typical weights/activations (the int64 fast path).
        let a: [Int32] = (0 ..< count).map { _ in rng.q16Unit() }
        let b: [Int32] = (0 ..< count).map { _ in rng.q16Unit() }
        let af = a.map { Float($0) / 65536 }
        let bf = b.map { Float($0) / 65536 }
        var c = [Int32](repeating: 0, count: count)
        var cf = [Float](repeating: 0, count: count)
        var sat: UInt64 = 0
        var failed = 0  // calls that returned a status other than Q16_OK (reported, never expected)
        let N = Int32(n)
        let macs = Double(n) * Double(n) * Double(n)

        let nn = benchGMACs(macs: macs, seconds: seconds) {
            if q16_gemm_nn(&c, a, b, N, N, N, &sat) != Q16_OK { failed += 1 }
        }
        sink &+= Int64(c[count / 2])
        var ntScratch = [Int32](repeating: 0, count: max(q16_gemm_nt_buffer_size(N, N, N) / 4, 1))
        let nt = benchGMACs(macs: macs, seconds: seconds) {
            if q16_gemm_nt(&c, &ntScratch, a, b, nil, N, N, N, &sat) != Q16_OK { failed += 1 }
        }
        sink &+= Int64(c[count / 2])
        let tn = benchGMACs(macs: macs, seconds: seconds) {
            if q16_gemm_tn(&c, a, b, N, N, N, &sat) != Q16_OK { failed += 1 }
        }
        if failed > 0 { lines.append("(n = \(n): \(failed) kernel calls returned an error status)") }
        sink &+= Int64(c[count / 2])
        let f32 = benchGMACs(macs: macs, seconds: seconds) {
            cf.withUnsafeMutableBufferPointer { cp in
                af.withUnsafeBufferPointer { ap in
                    bf.withUnsafeBufferPointer { bp in
                        sgemmBlocked(cp.baseAddress!, ap.baseAddress!, bp.baseAddress!, m: n, n: n, k: n)
                    }
                }
            }
        }
        sink &+= Int64(cf[count / 2])
        func f(_ x: Double) -> String { String(format: "%.2f", x) }
        lines.append("| \(n) | \(f(nn)) | \(f(nt)) | \(f(tn)) | \(f(f32)) | \(f(nn / f32))x | \(f(nt / f32))x | \(f(tn / f32))x |")
    }
    lines.append("")
    lines.append("q16: exact int64 accumulation, one round-to-nearest + saturation per output (bit-identical to the "
        + "reference). f32: plain blocked i-p-j Swift loop over Float (auto-vectorised for the build's target CPU, "
        + "no FMA, no register tiling, not BLAS). (checksum \(sink & 0xFFFF))")
    return lines.joined(separator: "\n")
}

/// Runs `body` once to warm up, then in groups of calls (each group >= ~2 ms)
/// for at least `seconds` in all; returns the GMAC/s of the fastest group, so a
/// group that the OS preempted on a busy machine does not count against the kernel.
private func benchGMACs(macs: Double, seconds: Double, _ body: () -> Void) -> Double {
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

/// C[m x n] = A[m x k] * B[k x n], Float, row-major: cache-blocked i-p-j loops.
/// The inner loop is a contiguous axpy over a row of C, which the optimizer vectorises.
private func sgemmBlocked(_ C: UnsafeMutablePointer<Float>, _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          m: Int, n: Int, k: Int)
{
    let kc = 128, nc = 256
    C.update(repeating: 0, count: m * n)
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

/// A small deterministic generator for the benchmark inputs.
private struct BenchLCG {
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
