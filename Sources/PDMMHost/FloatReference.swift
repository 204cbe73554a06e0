import PDMMEngine

/// The float32 reference: the same network, initial weights (the Q16.16
/// model's, converted exactly), batch order, learning rate and loss as the
/// Q16.16 `bp` run, trained with plain float32 SGD. It is what the
/// "within 1 percentage point" acceptance compares with.
public final class FloatReference {
    public let widths: [Int]
    var w: [[Float]]  // w[l-1]: n_l x n_{l-1} weights then n_l biases
    public init(model: Model) {
        widths = model.shape.widths
        w = []
        var off = 0
        for l in 1..<widths.count {
            let p = widths[l - 1] * widths[l] + widths[l]
            var layer = [Float](repeating: 0, count: p)
            for i in 0..<p { layer[i] = Float(Double(model[off + i]) / 65536.0) }
            w.append(layer)
            off += p
        }
    }

    /// Trains `epochs` epochs with batch `batch`, the engine's seeded batch order.
    public func train(_ data: Dataset, epochs: Int, batch: Int, learningRate: Float, seed: UInt64) {
        let L = widths.count - 1
        for e in 0..<epochs {
            var start = 0
            while start < data.count {
                let rows = min(batch, data.count - start)
                var acts: [[Float]] = [[Float]](repeating: [], count: L + 1)
                var labels = [Int](repeating: 0, count: rows)
                var x = [Float](repeating: 0, count: rows * widths[0])
                for r in 0..<rows {
                    let s = Shuffle.index(start + r, data.count, seed: seed, epoch: e)
                    for j in 0..<widths[0] { x[r * widths[0] + j] = Float(data.feature(s, j)) / 65536 }
                    labels[r] = Int(data.label(s))
                }
                acts[0] = x
                for l in 1...L { acts[l] = forward(l, acts[l - 1], rows: rows, relu: l < L) }
                // softmax - onehot, averaged over the batch
                var delta = softmax(acts[L], rows: rows)
                let c = widths[L]
                for r in 0..<rows { delta[r * c + labels[r]] -= 1 }
                let scale = learningRate / Float(rows)
                for l in stride(from: L, through: 1, by: -1) {
                    let nIn = widths[l - 1], nOut = widths[l]
                    var below = [Float](repeating: 0, count: l > 1 ? rows * nIn : 0)
                    if l > 1 {
                        for r in 0..<rows {
                            for j in 0..<nIn where acts[l - 1][r * nIn + j] > 0 {
                                var s: Float = 0
                                for i in 0..<nOut { s += delta[r * nOut + i] * w[l - 1][i * nIn + j] }
                                below[r * nIn + j] = s
                            }
                        }
                    }
                    for i in 0..<nOut {
                        var gb: Float = 0
                        for r in 0..<rows { gb += delta[r * nOut + i] }
                        for j in 0..<nIn {
                            var g: Float = 0
                            for r in 0..<rows { g += delta[r * nOut + i] * acts[l - 1][r * nIn + j] }
                            w[l - 1][i * nIn + j] -= scale * g
                        }
                        w[l - 1][nOut * nIn + i] -= scale * gb
                    }
                    delta = below
                }
                start += rows
            }
        }
    }

    func forward(_ l: Int, _ x: [Float], rows: Int, relu: Bool) -> [Float] {
        let nIn = widths[l - 1], nOut = widths[l]
        var y = [Float](repeating: 0, count: rows * nOut)
        w[l - 1].withUnsafeBufferPointer { wp in
            x.withUnsafeBufferPointer { xp in
                for r in 0..<rows {
                    for i in 0..<nOut {
                        var s = wp[nOut * nIn + i]
                        for j in 0..<nIn { s += xp[r * nIn + j] * wp[i * nIn + j] }
                        y[r * nOut + i] = relu ? max(s, 0) : s
                    }
                }
            }
        }
        return y
    }

    func softmax(_ z: [Float], rows: Int) -> [Float] {
        let c = widths[widths.count - 1]
        var p = z
        for r in 0..<rows {
            var m = -Float.infinity
            for j in 0..<c { m = max(m, z[r * c + j]) }
            var s: Float = 0
            for j in 0..<c { p[r * c + j] = expf(z[r * c + j] - m); s += p[r * c + j] }
            for j in 0..<c { p[r * c + j] /= s }
        }
        return p
    }

    /// Test accuracy in [0, 1].
    public func accuracy(_ data: Dataset) -> Double {
        let L = widths.count - 1, c = widths[L]
        var correct = 0
        for s in 0..<data.count {
            var a = [Float](repeating: 0, count: widths[0])
            for j in 0..<widths[0] { a[j] = Float(data.feature(s, j)) / 65536 }
            for l in 1...L { a = forward(l, a, rows: 1, relu: l < L) }
            var best = 0
            for j in 1..<c where a[j] > a[best] { best = j }
            if best == Int(data.label(s)) { correct += 1 }
        }
        return Double(correct) / Double(data.count)
    }
}

#if canImport(Glibc)
import Glibc
#endif
