// ConvTestSupport.swift -- what the convolution tests share (ConvKernelTests, ConvRiemannianTests): the
// shape in Swift Ints with its products straight from the definition and the exact weight sums, the
// seeded random shapes (2-D and 1-D, strides, same / valid / random padding), the three variants of a
// kernel and caller scratch followed by canary words.

import CFixed

// MARK: - Shapes

/// The convolution shape in Swift Ints, plus the batch.
struct ConvShape: CustomStringConvertible {
    var C = 1, H = 1, W = 1, F = 1, kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0, Ho = 1, Wo = 1
    var batch = 1

    var params: q16_conv_params {
        q16_conv_params(C: Int32(C), H: Int32(H), W: Int32(W), F: Int32(F), kh: Int32(kh), kw: Int32(kw),
                        stride_h: Int32(sh), stride_w: Int32(sw), pad_top: Int32(pt), pad_left: Int32(pl),
                        Ho: Int32(Ho), Wo: Int32(Wo))
    }

    var K: Int { C * kh * kw }
    var inWords: Int { batch * C * H * W }
    var outWords: Int { batch * F * Ho * Wo }
    var weightWords: Int { F * K }

    var description: String {
        "b\(batch) C\(C) \(H)x\(W) -> F\(F) k\(kh)x\(kw) s\(sh)x\(sw) pad(\(pt),\(pl)) out \(Ho)x\(Wo)"
    }

    func x(_ b: Int, _ c: Int, _ y: Int, _ xx: Int) -> Int { ((b * C + c) * H + y) * W + xx }
    func yIdx(_ b: Int, _ f: Int, _ i: Int, _ j: Int) -> Int { ((b * F + f) * Ho + i) * Wo + j }
    func w(_ f: Int, _ c: Int, _ u: Int, _ v: Int) -> Int { ((f * C + c) * kh + u) * kw + v }

    /// The filter f of output word o (o = yIdx(b, f, i, j)).
    func filter(ofOutput o: Int) -> Int { o / (Ho * Wo) % F }

    /// Every product of the forward pass, straight from the definition: for each output [b][f][i][j] and
    /// each tap [c][u][v] whose input row i*sh + u - pt and column j*sw + v - pl lie inside the input
    /// (the padding contributes nothing), `body(output index, weight index, input index)`.
    func forEachProduct(_ body: (_ out: Int, _ weight: Int, _ input: Int) -> Void) {
        for b in 0 ..< batch {
            for f in 0 ..< F {
                for i in 0 ..< Ho {
                    for j in 0 ..< Wo {
                        for c in 0 ..< C {
                            for u in 0 ..< kh {
                                let y = i * sh + u - pt
                                if y < 0 || y >= H { continue }
                                for v in 0 ..< kw {
                                    let xx = j * sw + v - pl
                                    if xx < 0 || xx >= W { continue }
                                    body(yIdx(b, f, i, j), w(f, c, u, v), x(b, c, y, xx))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The exact weight sums s[f][c][u][v] = sum dY[b][f][i][j] * X[b][c][y][x] (Q32.32) and bias sums
    /// sum dY[b][f][i][j] (Q16), in Int128.
    func weightSums(_ dY: [Int32], _ X: [Int32]) -> (w: [Int128], b: [Int128]) {
        var sw = [Int128](repeating: 0, count: weightWords)
        var sb = [Int128](repeating: 0, count: F)
        for o in 0 ..< outWords { sb[filter(ofOutput: o)] += Int128(dY[o]) }
        forEachProduct { o, w, x in sw[w] += Int128(dY[o]) * Int128(X[x]) }
        return (sw, sb)
    }
}

enum Padding: CaseIterable { case same, valid, random }

/// Output size and leading pad of one dimension; nil if "valid" does not fit.
private func dim(_ n: Int, _ k: Int, _ s: Int, _ pad: Padding, _ rng: inout SplitMix64) -> (out: Int, lead: Int)? {
    switch pad {
    case .same:
        let out = (n + s - 1) / s
        let total = max((out - 1) * s + k - n, 0)
        return (out, total / 2)
    case .valid:
        return n >= k ? ((n - k) / s + 1, 0) : nil
    case .random: // any leading and trailing pad in [0, k - 1]
        let lead = Int(rng.next() % UInt64(k)), trail = Int(rng.next() % UInt64(k))
        let span = n + lead + trail - k
        return span >= 0 ? (span / s + 1, lead) : nil
    }
}

/// A seeded random shape: 2-D or 1-D (H = kh = 1), strides 1...maxStride, padding `pad`, batch 1...maxBatch.
func randomShape(_ rng: inout SplitMix64, oneD: Bool, maxStride: Int, pad: Padding, maxBatch: Int = 4,
                 maxC: Int = 4, maxF: Int = 6, maxHW: Int = 10) -> ConvShape
{
    while true {
        var s = ConvShape()
        s.C = 1 + Int(rng.next() % UInt64(maxC))
        s.F = 1 + Int(rng.next() % UInt64(maxF))
        s.H = oneD ? 1 : 1 + Int(rng.next() % UInt64(maxHW))
        s.W = 1 + Int(rng.next() % UInt64(maxHW + 4))
        s.kh = oneD ? 1 : 1 + Int(rng.next() % 4)
        s.kw = 1 + Int(rng.next() % 5)
        s.sh = oneD ? 1 : 1 + Int(rng.next() % UInt64(maxStride))
        s.sw = 1 + Int(rng.next() % UInt64(maxStride))
        s.batch = 1 + Int(rng.next() % UInt64(maxBatch))
        guard let h = dim(s.H, s.kh, s.sh, pad, &rng), let w = dim(s.W, s.kw, s.sw, pad, &rng) else { continue }
        s.Ho = h.out; s.pt = h.lead; s.Wo = w.out; s.pl = w.lead
        return s
    }
}

// MARK: - Variants and scratch

/// How a conv kernel runs: its reference twin, the fast kernel with caller scratch, or with a NULL scratch.
enum Variant: CaseIterable { case reference, fast, fastNoScratch }

let canary32: Int32 = 0x3C5A_A5C3
let canary64: Int64 = 0x3C5A_A5C3_6B1E_E1B6
let guardWords = 32

/// Scratch of `bytes` (whole words of Int32) followed by canary words; returns whether the canaries survived.
func withScratch32<R>(_ bytes: Int, _ body: (UnsafeMutablePointer<Int32>) -> R) -> (R, intact: Bool) {
    let words = bytes / 4
    var buf = [Int32](repeating: canary32, count: words + guardWords)
    let r = buf.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return (r, buf[words...].allSatisfy { $0 == canary32 })
}

/// Scratch of `bytes` rounded up to whole Int64 words, filled with and followed by canary words;
/// returns whether the canaries after it survived.
func withScratch64<R>(_ bytes: Int, _ body: (UnsafeMutablePointer<Int64>) -> R) -> (R, intact: Bool) {
    let words = (bytes + 7) / 8
    var buf = [Int64](repeating: canary64, count: words + guardWords)
    let r = buf.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return (r, buf[words...].allSatisfy { $0 == canary64 })
}
