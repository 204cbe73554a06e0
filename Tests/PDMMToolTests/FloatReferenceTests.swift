import Foundation
import PDMMEngine
@testable import PDMMHost
import XCTest

/// The float32 reference over a `NetworkSpec`: its gradients against finite
/// differences, its forward pass against the layer definitions written out
/// directly, the dense path against the dense-only reference it replaced, and a
/// small CNN learning the built-in digits.
final class FloatReferenceTests: XCTestCase {
    /// SplitMix64: deterministic test values.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        /// Uniform in [-a, a], as a Q16.16 word.
        mutating func q16(_ a: Double) -> Int32 {
            let u = Double(next() >> 11) / Double(1 << 53)
            return Int32(((2 * u - 1) * a * 65536).rounded())
        }
    }

    /// He-uniform weights (a = sqrt(6 / fan-in)) and small biases, Q16.16, in model-image order.
    func initialParameters(_ spec: NetworkSpec, seed: UInt64, bias: Double = 0) -> [Int32] {
        var rng = Rng(state: seed)
        var p: [Int32] = []
        for (i, layer) in spec.layers.enumerated() {
            let x = spec.inputShape(of: i)
            switch layer {
            case .dense(let u):
                let a = (6.0 / Double(x.count)).squareRoot()
                for _ in 0..<u * x.count { p.append(rng.q16(a)) }
                for _ in 0..<u { p.append(rng.q16(bias)) }
            case .conv(let f, let kh, let kw, _, _):
                let a = (6.0 / Double(x.channels * kh * kw)).squareRoot()
                for _ in 0..<f * x.channels * kh * kw { p.append(rng.q16(a)) }
                for _ in 0..<f { p.append(rng.q16(bias)) }
            default:
                break
            }
        }
        XCTAssertEqual(p.count, FloatReference.parameterCount(spec))
        return p
    }

    func randomData(_ spec: NetworkSpec, count: Int, seed: UInt64) throws -> Dataset {
        var rng = Rng(state: seed)
        let n = spec.input.count, classes = spec.classCount
        let features = (0..<count * n).map { _ in rng.q16(1) }
        let labels = (0..<count).map { _ in Int32(rng.next() % UInt64(classes)) }
        return try Dataset(featureCount: n, classes: classes, features: features, labels: labels)
    }

    /// Conv (same and valid, stride 1 and 2, even kernels: asymmetric padding), max and
    /// average pooling with dropped remainders, relu, flatten, dense, 1-D data.
    let smallNetworks = [
        "2x12x11: conv 4 3x3 same, relu, maxpool 2x2, conv 3 3x3 stride 2 valid, relu, avgpool 2x1, flatten, dense 6, relu, dense 3",
        "3x1x17: conv 4 1x5 stride 2 same, relu, avgpool 1x3, conv 2 1x2 same, flatten, dense 3",
        "2x12x12: conv 3 3x3 stride 2 same, maxpool 2x2, relu, conv 2 2x2 stride 2 same, flatten, dense 4",
    ]

    // MARK: gradients

    /// The reference's one-step update, (w0 - w1) / lr = the batch-mean gradient,
    /// against a central finite difference of the batch-mean loss in float64
    /// (eps 1e-5), for every weight and bias: within 1e-6 + 1e-4 |g|. The float64
    /// backward pass is held to 1e-9 + 1e-7 |g|.
    func testOneStepUpdateMatchesFiniteDifferences() throws {
        for (n, text) in smallNetworks.enumerated() {
            let spec = try NetworkSpec.parse(text)
            let image = initialParameters(spec, seed: UInt64(11 + n), bias: 0.2)
            let data = try randomData(spec, count: 5, seed: UInt64(100 + n))
            let samples = Array(0..<data.count)
            let p0 = image.map { Double($0) / 65536 }

            let lr: Float = 0.5
            let ref = FloatReference(spec: spec, parameters: image)
            XCTAssertEqual(ref.parameters.map(Double.init), p0, text)
            ref.train(data, epochs: 1, batch: data.count, learningRate: lr, seed: 1)  // one step
            let p1 = ref.parameters
            let g64 = FloatReference.float64Gradient(spec: spec, parameters: p0, data: data, samples: samples)

            let eps = 1e-5
            var worst32 = 0.0, worst64 = 0.0, largest = 0.0
            for k in 0..<p0.count {
                var p = p0
                p[k] = p0[k] + eps
                let up = FloatReference.float64Loss(spec: spec, parameters: p, data: data, samples: samples)
                p[k] = p0[k] - eps
                let down = FloatReference.float64Loss(spec: spec, parameters: p, data: data, samples: samples)
                let fd = (up - down) / (2 * eps)
                let g32 = (p0[k] - Double(p1[k])) / Double(lr)
                largest = max(largest, abs(fd))
                worst32 = max(worst32, abs(g32 - fd) / (1e-6 + 1e-4 * abs(fd)))
                worst64 = max(worst64, abs(g64[k] - fd) / (1e-9 + 1e-7 * abs(fd)))
                XCTAssertEqual(g32, fd, accuracy: 1e-6 + 1e-4 * abs(fd), "\(text): parameter \(k) (float32 step)")
                XCTAssertEqual(g64[k], fd, accuracy: 1e-9 + 1e-7 * abs(fd), "\(text): parameter \(k) (float64 backward)")
            }
            XCTAssertGreaterThan(largest, 0.01, "\(text): the check needs non-trivial gradients")
            print(String(format: "gradient check %@: %d parameters, largest |g| %.3g, worst error / tolerance float32 %.3f float64 %.3f",
                         text, p0.count, largest, worst32, worst64))
        }
    }

    // MARK: forward semantics

    /// The layers written out directly from their definitions, in float64.
    func directLogits(_ spec: NetworkSpec, _ params: [Double], _ input: [Double]) -> [Double] {
        var a = input
        var x = spec.input
        var off = 0
        for (li, layer) in spec.layers.enumerated() {
            let y = spec.shapes[li]
            var out = [Double](repeating: 0, count: y.count)
            switch layer {
            case .dense(let u):
                let n = x.count
                for o in 0..<u {
                    var s = params[off + u * n + o]
                    for j in 0..<n { s += params[off + o * n + j] * a[j] }
                    out[o] = s
                }
                off += u * n + u
            case .conv(let f, let kh, let kw, let s, let padding):
                let (C, H, W, Ho, Wo) = (x.channels, x.height, x.width, y.height, y.width)
                XCTAssertEqual(Ho, padding == .same ? (H + s - 1) / s : (H - kh) / s + 1)
                XCTAssertEqual(Wo, padding == .same ? (W + s - 1) / s : (W - kw) / s + 1)
                let pt = padding == .same ? max((Ho - 1) * s + kh - H, 0) / 2 : 0
                let pl = padding == .same ? max((Wo - 1) * s + kw - W, 0) / 2 : 0
                for g in 0..<f {
                    for i in 0..<Ho {
                        for j in 0..<Wo {
                            var acc = params[off + f * C * kh * kw + g]
                            for c in 0..<C {
                                for u in 0..<kh {
                                    for v in 0..<kw {
                                        let ii = i * s + u - pt, jj = j * s + v - pl
                                        if ii < 0 || ii >= H || jj < 0 || jj >= W { continue }
                                        acc += params[off + ((g * C + c) * kh + u) * kw + v] * a[(c * H + ii) * W + jj]
                                    }
                                }
                            }
                            out[(g * Ho + i) * Wo + j] = acc
                        }
                    }
                }
                off += f * C * kh * kw + f
            case .maxpool(let ph, let pw), .avgpool(let ph, let pw):
                let isMax: Bool
                if case .maxpool = layer { isMax = true } else { isMax = false }
                for c in 0..<x.channels {
                    for i in 0..<x.height / ph {
                        for j in 0..<x.width / pw {
                            var window: [Double] = []
                            for u in 0..<ph {
                                for v in 0..<pw { window.append(a[(c * x.height + i * ph + u) * x.width + j * pw + v]) }
                            }
                            out[(c * y.height + i) * y.width + j] =
                                isMax ? window.max()! : window.reduce(0, +) / Double(ph * pw)
                        }
                    }
                }
            case .relu:
                out = a.map { max($0, 0) }
            case .flatten:
                out = a
            }
            a = out
            x = y
        }
        return a
    }

    func testForwardMatchesTheLayerDefinitions() throws {
        for (n, text) in smallNetworks.enumerated() {
            let spec = try NetworkSpec.parse(text)
            let p = initialParameters(spec, seed: UInt64(21 + n), bias: 0.3).map { Double($0) / 65536 }
            let data = try randomData(spec, count: 3, seed: UInt64(200 + n))
            for s in 0..<data.count {
                let input = (0..<data.featureCount).map { Double(data.feature(s, $0)) / 65536 }
                let want = directLogits(spec, p, input)
                let got = FloatReference.float64Logits(spec: spec, parameters: p, data: data, sample: s)
                XCTAssertEqual(got.count, want.count)
                for k in 0..<want.count { XCTAssertEqual(got[k], want[k], accuracy: 1e-12 * max(1, abs(want[k])), text) }
            }
        }
    }

    // MARK: dense path

    /// `init(model:)` and `init(spec:parameters:)` train a dense stack to the same
    /// weights bit for bit, and so does the dense-only reference this one replaced.
    func testDenseSpecEqualsModelInitAndTheDenseOnlyReference() throws {
        let (train, test, _) = Run.split(BuiltinData.digits(), seed: 1)
        let widths = [64, 32, 16, 10]
        let model = Model(shape: try NetworkShape(widths: widths), seed: 3)
        let image = (0..<model.parameterCount).map { model[$0] }
        let a = FloatReference(model: model)
        let b = FloatReference(spec: try NetworkSpec.denseStack(widths: widths), parameters: image)
        let legacy = DenseOnlyReference(model: model)
        XCTAssertEqual(a.widths, widths)
        XCTAssertEqual(b.widths, widths)
        a.train(train, epochs: 1, batch: 32, learningRate: 0.05, seed: 1)
        b.train(train, epochs: 1, batch: 32, learningRate: 0.05, seed: 1)
        legacy.train(train, epochs: 1, batch: 32, learningRate: 0.05, seed: 1)
        let pa = a.parameters.map(\.bitPattern), pb = b.parameters.map(\.bitPattern)
        XCTAssertEqual(pa, pb)
        XCTAssertEqual(pa, legacy.w.flatMap { $0 }.map(\.bitPattern))
        XCTAssertNotEqual(pa, image.map { Float(Double($0) / 65536).bitPattern }, "training moved the weights")
        XCTAssertEqual(a.accuracy(test), legacy.accuracy(test))
        XCTAssertEqual(a.accuracy(test), b.accuracy(test))
    }

    // MARK: digits CNN

    /// 1x8x8 digits, conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 10:
    /// 10 epochs, batch 32, lr 0.05 (measured: 0.969 test accuracy).
    func testDigitsCNNLearns() throws {
        let (train, test, _) = Run.split(BuiltinData.digits(), seed: 1)
        let spec = try NetworkSpec.parse("1x8x8: conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 10")
        let ref = FloatReference(spec: spec, parameters: initialParameters(spec, seed: 1))
        XCTAssertEqual(ref.widths, [64, 512, 10])
        let epochs = 10
        let start = Date()
        ref.train(train, epochs: epochs, batch: 32, learningRate: 0.05, seed: 1)
        let seconds = Date().timeIntervalSince(start)
        let acc = ref.accuracy(test)
        print(String(format: "digits CNN float32 reference: test accuracy %.4f after %d epochs, %.3f s per epoch",
                     acc, epochs, seconds / Double(epochs)))
        XCTAssertGreaterThanOrEqual(acc, 0.95)
    }

    /// Epoch time of a two-conv CNN on 1x28x28 MNIST; runs when PDMM_MNIST_CSV names
    /// a CSV (784 pixel columns, label last or as loaded by `CSVLoader`).
    func testMNISTCNNEpochTime() throws {
        guard let path = ProcessInfo.processInfo.environment["PDMM_MNIST_CSV"] else {
            throw XCTSkip("set PDMM_MNIST_CSV to an MNIST CSV to time the reference on it")
        }
        let all = try CSVLoader.load(path: path)
        let (train, test, _) = Run.split(all.subset(Array(0..<min(5000, all.count))), seed: 1)
        let spec = try NetworkSpec.parse(
            "1x28x28: conv 8 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, maxpool 2x2, flatten, dense 10")
        let ref = FloatReference(spec: spec, parameters: initialParameters(spec, seed: 1))
        let epochs = 3
        let start = Date()
        ref.train(train, epochs: epochs, batch: 32, learningRate: 0.02, seed: 1)
        let seconds = Date().timeIntervalSince(start)
        let acc = ref.accuracy(test)
        print(String(format: "mnist CNN float32 reference: %d train samples, %.2f s per epoch, test accuracy %.4f after %d epochs",
                     train.count, seconds / Double(epochs), acc, epochs))
        XCTAssertGreaterThan(acc, 0.8)
    }
}

/// The dense-only float32 reference as it was before `NetworkSpec` (kept verbatim
/// as the oracle for the dense path's bit-exactness).
private final class DenseOnlyReference {
    let widths: [Int]
    var w: [[Float]]
    init(model: Model) {
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

    func train(_ data: Dataset, epochs: Int, batch: Int, learningRate: Float, seed: UInt64) {
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
        for r in 0..<rows {
            for i in 0..<nOut {
                var s = w[l - 1][nOut * nIn + i]
                for j in 0..<nIn { s += x[r * nIn + j] * w[l - 1][i * nIn + j] }
                y[r * nOut + i] = relu ? max(s, 0) : s
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

    func accuracy(_ data: Dataset) -> Double {
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
