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
/// call) and keeps the fastest group of calls (benchGMACs, BenchSupport.swift).
/// Returns a Markdown table.
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
        let (a, b) = benchSquareOperands(n)
        let af = a.map { Float($0) / 65536 }
        let bf = b.map { Float($0) / 65536 }
        var c = [Int32](repeating: 0, count: count)
        var cf = [Float](repeating: 0, count: count)
        var sat: UInt64 = 0
        var failed = 0  // calls that returned a status other than Q16_OK (reported, never expected)
        let N = Int32(n)
        let macs = Double(n) * Double(n) * Double(n)

        let nn = benchQ16GemmNN(n, a: a, b: b, c: &c, seconds: seconds, failed: &failed)
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
        let f = benchCell
        lines.append("| \(n) | \(f(nn)) | \(f(nt)) | \(f(tn)) | \(f(f32)) | \(f(nn / f32))x | \(f(nt / f32))x | \(f(tn / f32))x |")
    }
    lines.append("")
    lines.append("q16: exact int64 accumulation, one round-to-nearest + saturation per output (bit-identical to the "
        + "reference). f32: plain blocked i-p-j Swift loop over Float (auto-vectorised for the build's target CPU, "
        + "no FMA, no register tiling, not BLAS). (checksum \(sink & 0xFFFF))")
    return lines.joined(separator: "\n")
}
