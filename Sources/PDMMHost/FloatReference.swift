import PDMMEngine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The float32 reference: the same network, initial weights (the Q16.16
/// model's, converted exactly), batch order, learning rate and loss as the
/// Q16.16 `bp` run, trained with plain float32 SGD. It is what the
/// "within 1 percentage point" acceptance compares with.
///
/// Any `NetworkSpec` (dense, conv, maxpool, avgpool, relu, flatten) with the
/// engine's semantics: NCHW per sample; conv output (i, j) of filter f reads
/// input row i*stride + u - padTop, column j*stride + v - padLeft (zero
/// outside; `same` pads (Ho-1)*stride + kh - H in total, the smaller half on
/// top / left); pools are non-overlapping with trailing rows / columns
/// dropped, max pooling routes the gradient to the first maximum in row-major
/// window order; ReLU passes the gradient where its output is > 0. The loss is
/// softmax cross-entropy of the last dense layer, averaged over the batch:
/// W -= (lr / rows) * sum of the per-sample gradients (biases too).
///
/// ```swift
/// let spec = try NetworkSpec.parse("1x8x8: conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 10")
/// let ref = FloatReference(spec: spec, parameters: image)   // image: Q16.16 words, model order
/// ref.train(train, epochs: 5, batch: 32, learningRate: 0.05, seed: 1)
/// ref.accuracy(test)
/// ```
public final class FloatReference {
    /// The network trained.
    public let spec: NetworkSpec
    /// Words per sample of the input, then of each trainable (dense / conv)
    /// layer's output: a dense stack's widths (`Model.shape.widths`).
    public let widths: [Int]
    let net: ReferenceNetwork<Float>

    /// `spec` with `parameters`, the model image in Q16.16: for each dense or
    /// conv layer in order its weights (dense [nOut x nIn] row-major; conv
    /// [F x C x kh x kw]) then its biases. Each word becomes value / 65536 exactly.
    public init(spec: NetworkSpec, parameters: [Int32]) {
        self.spec = spec
        let layers = ReferenceLayer.compile(spec)
        widths = [spec.input.count] + layers.filter { $0.isTrainable }.map { $0.outCount }
        net = ReferenceNetwork<Float>(layers: layers, parameters: parameters.map { Float(Double($0) / 65536.0) })
    }

    /// The dense ReLU stack of `model.shape.widths` with the model's weights.
    public convenience init(model: Model) {
        let spec = model.shape.spec
        var image = [Int32](repeating: 0, count: model.parameterCount)
        for i in 0..<model.parameterCount { image[i] = model[i] }
        self.init(spec: spec, parameters: image)
    }

    /// Parameter words the model image of `spec` holds (weights and biases of every dense / conv layer).
    public static func parameterCount(_ spec: NetworkSpec) -> Int {
        ReferenceLayer.compile(spec).reduce(0) { $0 + $1.parameterCount }
    }

    /// The current weights, in model-image order.
    public var parameters: [Float] { net.parameterValues }

    /// Trains `epochs` epochs with batch `batch`, the engine's seeded batch order.
    public func train(_ data: Dataset, epochs: Int, batch: Int, learningRate: Float, seed: UInt64) {
        precondition(batch >= 1, "FloatReference.train: batch must be at least 1")
        let n = net.inputCount
        precondition(data.featureCount == n, "FloatReference.train: data has \(data.featureCount) features, the network reads \(n)")
        net.reserve(rows: min(batch, data.count))
        var labels = [Int](repeating: 0, count: min(batch, data.count))
        for e in 0..<epochs {
            var start = 0
            while start < data.count {
                let rows = min(batch, data.count - start)
                let x = net.acts[0]
                for r in 0..<rows {
                    let s = Shuffle.index(start + r, data.count, seed: seed, epoch: e)
                    for j in 0..<n { x[r * n + j] = Float(data.feature(s, j)) / 65536 }
                    labels[r] = Int(data.label(s))
                }
                net.forward(rows: rows)
                net.backward(labels: labels, rows: rows)
                let scale = learningRate / Float(rows)
                net.update(scale: scale)
                start += rows
            }
        }
    }

    /// Test accuracy in [0, 1].
    public func accuracy(_ data: Dataset) -> Double {
        let n = net.inputCount, c = net.classCount
        precondition(data.featureCount == n, "FloatReference.accuracy: data has \(data.featureCount) features, the network reads \(n)")
        let chunk = 64
        net.reserve(rows: min(chunk, data.count))
        var correct = 0
        var start = 0
        while start < data.count {
            let rows = min(chunk, data.count - start)
            let x = net.acts[0]
            for r in 0..<rows {
                for j in 0..<n { x[r * n + j] = Float(data.feature(start + r, j)) / 65536 }
            }
            net.forward(rows: rows)
            let z = net.acts[net.layers.count]
            for r in 0..<rows {
                var best = 0
                for j in 1..<max(c, 1) where z[r * c + j] > z[r * c + best] { best = j }
                if best == Int(data.label(start + r)) { correct += 1 }
            }
            start += rows
        }
        return Double(correct) / Double(data.count)
    }
}

// MARK: float64 evaluation (gradient checks)

extension FloatReference {
    /// The batch-mean softmax cross-entropy over `samples` of `data` at
    /// `parameters` (model-image order), computed in float64.
    static func float64Loss(spec: NetworkSpec, parameters: [Double], data: Dataset, samples: [Int]) -> Double {
        let net = ReferenceNetwork<Double>(layers: ReferenceLayer.compile(spec), parameters: parameters)
        return net.meanLoss(data, samples: samples)
    }

    /// The logits of sample `sample` of `data` at `parameters`, computed in float64.
    static func float64Logits(spec: NetworkSpec, parameters: [Double], data: Dataset, sample: Int) -> [Double] {
        let net = ReferenceNetwork<Double>(layers: ReferenceLayer.compile(spec), parameters: parameters)
        net.reserve(rows: 1)
        net.load(data, samples: [sample])
        net.forward(rows: 1)
        return Array(UnsafeBufferPointer(start: net.acts[net.layers.count], count: net.classCount))
    }

    /// The batch-mean gradient over `samples` at `parameters` (model-image order), computed in float64.
    static func float64Gradient(spec: NetworkSpec, parameters: [Double], data: Dataset, samples: [Int]) -> [Double] {
        let net = ReferenceNetwork<Double>(layers: ReferenceLayer.compile(spec), parameters: parameters)
        net.reserve(rows: samples.count)
        net.load(data, samples: samples)
        net.forward(rows: samples.count)
        net.backward(labels: samples.map { Int(data.label($0)) }, rows: samples.count)
        return Array(UnsafeBufferPointer(start: net.grads, count: net.parameterCount)).map { $0 / Double(samples.count) }
    }
}

// MARK: the network

/// The scalar the reference network computes in (Float for training, Double for checks).
protocol ReferenceScalar: BinaryFloatingPoint {
    static func exponential(_ x: Self) -> Self
    static func logarithm(_ x: Self) -> Self
}

extension Float: ReferenceScalar {
    static func exponential(_ x: Float) -> Float { expf(x) }
    static func logarithm(_ x: Float) -> Float { logf(x) }
}

extension Double: ReferenceScalar {
    static func exponential(_ x: Double) -> Double { exp(x) }
    static func logarithm(_ x: Double) -> Double { log(x) }
}

/// One layer of a spec with its shapes and parameter offset resolved.
struct ReferenceLayer {
    enum Kind { case dense, conv, maxpool, avgpool, relu, flatten }
    let kind: Kind
    /// Input C x H x W and output C x H x W.
    let c: Int, h: Int, w: Int
    let oc: Int, oh: Int, ow: Int
    /// conv: kernel kh x kw, stride, top / left padding; pools: window kh x kw.
    var kh = 1, kw = 1, stride = 1, padTop = 0, padLeft = 0
    /// First parameter word (weights, then biases) in the model image.
    var offset = 0

    var inCount: Int { c * h * w }
    var outCount: Int { oc * oh * ow }
    var isTrainable: Bool { kind == .dense || kind == .conv }
    /// Weight words (biases follow: `oc` of them).
    var weightCount: Int {
        switch kind {
        case .dense: return oc * inCount
        case .conv: return oc * c * kh * kw
        default: return 0
        }
    }
    var parameterCount: Int { isTrainable ? weightCount + oc : 0 }

    static func compile(_ spec: NetworkSpec) -> [ReferenceLayer] {
        var out: [ReferenceLayer] = []
        var offset = 0
        for (i, ls) in spec.layers.enumerated() {
            let x = spec.inputShape(of: i), y = spec.shapes[i]
            func make(_ k: Kind) -> ReferenceLayer {
                ReferenceLayer(kind: k, c: x.channels, h: x.height, w: x.width,
                               oc: y.channels, oh: y.height, ow: y.width)
            }
            var l: ReferenceLayer
            switch ls {
            case .dense:
                l = make(.dense)
            case .conv(_, let kh, let kw, let s, let p):
                l = make(.conv)
                l.kh = kh
                l.kw = kw
                l.stride = s
                if p == .same {
                    l.padTop = max((y.height - 1) * s + kh - x.height, 0) / 2
                    l.padLeft = max((y.width - 1) * s + kw - x.width, 0) / 2
                }
            case .maxpool(let ph, let pw), .avgpool(let ph, let pw):
                if case .maxpool = ls { l = make(.maxpool) } else { l = make(.avgpool) }
                l.kh = ph
                l.kw = pw
            case .relu:
                l = make(.relu)
            case .flatten:
                l = make(.flatten)
            }
            l.offset = offset
            offset += l.parameterCount
            out.append(l)
        }
        return out
    }

    /// The outputs o in lo..<hi (of `outSize`) whose input o*stride + tap - pad lies in 0..<inSize.
    static func window(tap: Int, pad: Int, stride: Int, inSize: Int, outSize: Int) -> (Int, Int) {
        let a = pad - tap  // o*stride >= a
        let lo = a <= 0 ? 0 : (a + stride - 1) / stride
        let b = inSize - 1 + pad - tap  // o*stride <= b
        let hi = b < 0 ? 0 : min(outSize, b / stride + 1)
        return (lo, max(lo, hi))
    }
}

/// The network's parameters, gradients and per-layer tensors for up to
/// `capacity` samples, in flat buffers (sample-major, each sample C x H x W).
final class ReferenceNetwork<T: ReferenceScalar> {
    let layers: [ReferenceLayer]
    let parameterCount: Int
    let inputCount: Int
    let classCount: Int
    let params: UnsafeMutablePointer<T>
    let grads: UnsafeMutablePointer<T>
    /// One sample's im2col matrix of a conv layer and its gradient (the largest layer's size).
    let col: UnsafeMutablePointer<T>
    let dcol: UnsafeMutablePointer<T>
    /// acts[0] is the input, acts[i + 1] layer i's output; deltas likewise (d loss / d tensor).
    private(set) var acts: [UnsafeMutablePointer<T>] = []
    private(set) var deltas: [UnsafeMutablePointer<T>] = []
    /// Per max-pooling layer: the argmax (index in the input plane) of each output.
    private(set) var argmax: [UnsafeMutablePointer<Int32>?] = []
    private(set) var capacity = 0
    /// needsInputGradient[i]: some trainable layer lies before layer i.
    let needsInputGradient: [Bool]

    init(layers: [ReferenceLayer], parameters: [T]) {
        self.layers = layers
        parameterCount = layers.reduce(0) { $0 + $1.parameterCount }
        precondition(parameters.count == parameterCount,
                     "FloatReference: the network has \(parameterCount) parameter words, got \(parameters.count)")
        inputCount = layers[0].inCount
        classCount = layers[layers.count - 1].outCount
        params = .allocate(capacity: max(parameterCount, 1))
        grads = .allocate(capacity: max(parameterCount, 1))
        for i in 0..<parameterCount { params[i] = parameters[i] }
        grads.initialize(repeating: 0, count: max(parameterCount, 1))
        let colWords = layers.reduce(1) { $1.kind == .conv ? max($0, $1.c * $1.kh * $1.kw * $1.oh * $1.ow) : $0 }
        col = .allocate(capacity: colWords)
        dcol = .allocate(capacity: colWords)
        var needs: [Bool] = []
        var seen = false
        for l in layers {
            needs.append(seen)
            if l.isTrainable { seen = true }
        }
        needsInputGradient = needs
    }

    deinit {
        release()
        params.deallocate()
        grads.deallocate()
        col.deallocate()
        dcol.deallocate()
    }

    private func release() {
        for p in acts { p.deallocate() }
        for p in deltas { p.deallocate() }
        for p in argmax { p?.deallocate() }
        acts = []
        deltas = []
        argmax = []
    }

    var parameterValues: [T] { Array(UnsafeBufferPointer(start: params, count: parameterCount)) }

    /// Makes room for `rows` samples.
    func reserve(rows: Int) {
        if rows <= capacity { return }
        release()
        capacity = rows
        acts.append(.allocate(capacity: rows * inputCount))
        deltas.append(.allocate(capacity: rows * inputCount))
        for l in layers {
            acts.append(.allocate(capacity: rows * l.outCount))
            deltas.append(.allocate(capacity: rows * l.outCount))
            argmax.append(l.kind == .maxpool ? .allocate(capacity: rows * l.outCount) : nil)
        }
    }

    /// Copies `samples` of `data` into the input (as value / 65536).
    func load(_ data: Dataset, samples: [Int]) {
        let n = inputCount
        for (r, s) in samples.enumerated() {
            for j in 0..<n { acts[0][r * n + j] = T(data.feature(s, j)) / 65536 }
        }
    }

    /// The batch-mean cross-entropy of `samples`.
    func meanLoss(_ data: Dataset, samples: [Int]) -> T {
        reserve(rows: samples.count)
        load(data, samples: samples)
        forward(rows: samples.count)
        let c = classCount, z = acts[layers.count]
        var total: T = 0
        for (r, s) in samples.enumerated() {
            var m = -T.infinity
            for j in 0..<c { m = max(m, z[r * c + j]) }
            var sum: T = 0
            for j in 0..<c { sum += T.exponential(z[r * c + j] - m) }
            total += T.logarithm(sum) + m - z[r * c + Int(data.label(s))]
        }
        return total / T(samples.count)
    }

    // MARK: forward

    func forward(rows: Int) {
        for (i, l) in layers.enumerated() {
            let x = acts[i], y = acts[i + 1]
            switch l.kind {
            case .dense: denseForward(l, x, y, rows)
            case .conv: convForward(l, x, y, rows)
            case .maxpool: maxpoolForward(l, x, y, argmax[i]!, rows)
            case .avgpool: avgpoolForward(l, x, y, rows)
            case .relu:
                for k in 0..<rows * l.outCount { y[k] = max(x[k], 0) }
            case .flatten:
                y.update(from: x, count: rows * l.outCount)
            }
        }
    }

    func denseForward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ rows: Int) {
        let nIn = l.inCount, nOut = l.outCount
        let wp = params + l.offset, bp = wp + nOut * nIn
        for r in 0..<rows {
            let xr = x + r * nIn
            for i in 0..<nOut {
                let wr = wp + i * nIn
                var s = bp[i]
                for j in 0..<nIn { s += xr[j] * wr[j] }
                y[r * nOut + i] = s
            }
        }
    }

    /// col[k * P + o] (P = Ho x Wo, k = (c kh + u) kw + v, o = i Wo + j): the input value
    /// that output o of every filter reads through tap k, 0 in the padding.
    func im2col(_ l: ReferenceLayer, _ xs: UnsafeMutablePointer<T>) {
        let H = l.h, W = l.w, Ho = l.oh, Wo = l.ow, P = Ho * Wo, s = l.stride
        for c in 0..<l.c {
            let xp = xs + c * H * W
            for u in 0..<l.kh {
                let (i0, i1) = ReferenceLayer.window(tap: u, pad: l.padTop, stride: s, inSize: H, outSize: Ho)
                for v in 0..<l.kw {
                    let (j0, j1) = ReferenceLayer.window(tap: v, pad: l.padLeft, stride: s, inSize: W, outSize: Wo)
                    let row = col + ((c * l.kh + u) * l.kw + v) * P
                    row.update(repeating: 0, count: P)
                    if j0 >= j1 { continue }
                    let d = v - l.padLeft
                    for i in i0..<i1 {
                        let xrow = xp + (i * s + u - l.padTop) * W, crow = row + i * Wo
                        if s == 1 {
                            for j in j0..<j1 { crow[j] = xrow[j &+ d] }
                        } else {
                            for j in j0..<j1 { crow[j] = xrow[j &* s &+ d] }
                        }
                    }
                }
            }
        }
    }

    /// dxs += the columns of `dcol` (im2col's layout) added back to the inputs they were read from.
    func col2im(_ l: ReferenceLayer, _ dxs: UnsafeMutablePointer<T>) {
        let H = l.h, W = l.w, Ho = l.oh, Wo = l.ow, P = Ho * Wo, s = l.stride
        for c in 0..<l.c {
            let dxp = dxs + c * H * W
            for u in 0..<l.kh {
                let (i0, i1) = ReferenceLayer.window(tap: u, pad: l.padTop, stride: s, inSize: H, outSize: Ho)
                for v in 0..<l.kw {
                    let (j0, j1) = ReferenceLayer.window(tap: v, pad: l.padLeft, stride: s, inSize: W, outSize: Wo)
                    if j0 >= j1 { continue }
                    let row = dcol + ((c * l.kh + u) * l.kw + v) * P
                    let d = v - l.padLeft
                    for i in i0..<i1 {
                        let dxrow = dxp + (i * s + u - l.padTop) * W, crow = row + i * Wo
                        if s == 1 {
                            for j in j0..<j1 { dxrow[j &+ d] += crow[j] }
                        } else {
                            for j in j0..<j1 { dxrow[j &* s &+ d] += crow[j] }
                        }
                    }
                }
            }
        }
    }

    /// sum of a[o] b[o], o < n (four partial sums).
    @inline(__always)
    func dot(_ a: UnsafeMutablePointer<T>, _ b: UnsafeMutablePointer<T>, _ n: Int) -> T {
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
        var o = 0
        while o &+ 4 <= n {
            s0 += a[o] * b[o]
            s1 += a[o &+ 1] * b[o &+ 1]
            s2 += a[o &+ 2] * b[o &+ 2]
            s3 += a[o &+ 3] * b[o &+ 3]
            o &+= 4
        }
        while o < n {
            s0 += a[o] * b[o]
            o &+= 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// Per sample: im2col, then each filter's output plane = bias + sum over taps k of w[f, k] col[k].
    func convForward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ rows: Int) {
        let F = l.oc, P = l.oh * l.ow, K = l.c * l.kh * l.kw
        let wts = params + l.offset, bias = wts + F * K
        for r in 0..<rows {
            im2col(l, x + r * l.inCount)
            for f in 0..<F {
                let yp = y + (r * F + f) * P, wf = wts + f * K
                yp.update(repeating: bias[f], count: P)
                for k in 0..<K {
                    let wv = wf[k], cr = col + k * P
                    for o in 0..<P { yp[o] += wv * cr[o] }
                }
            }
        }
    }

    func maxpoolForward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
                        _ idx: UnsafeMutablePointer<Int32>, _ rows: Int) {
        let H = l.h, W = l.w, Ho = l.oh, Wo = l.ow, ph = l.kh, pw = l.kw
        for plane in 0..<rows * l.c {
            let xp = x + plane * H * W, yp = y + plane * Ho * Wo, ip = idx + plane * Ho * Wo
            for i in 0..<Ho {
                for j in 0..<Wo {
                    var bestAt = i * ph * W + j * pw
                    var best = xp[bestAt]
                    for u in 0..<ph {
                        for v in 0..<pw {
                            let at = (i * ph + u) * W + j * pw + v
                            if xp[at] > best {  // strict: the first maximum wins ties
                                best = xp[at]
                                bestAt = at
                            }
                        }
                    }
                    yp[i * Wo + j] = best
                    ip[i * Wo + j] = Int32(bestAt)
                }
            }
        }
    }

    func avgpoolForward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ rows: Int) {
        let H = l.h, W = l.w, Ho = l.oh, Wo = l.ow, ph = l.kh, pw = l.kw
        let n = T(ph * pw)
        for plane in 0..<rows * l.c {
            let xp = x + plane * H * W, yp = y + plane * Ho * Wo
            for i in 0..<Ho {
                for j in 0..<Wo {
                    var s: T = 0
                    for u in 0..<ph {
                        for v in 0..<pw { s += xp[(i * ph + u) * W + j * pw + v] }
                    }
                    yp[i * Wo + j] = s / n
                }
            }
        }
    }

    // MARK: backward

    /// grads = the sum over the batch of d loss / d parameters, for the
    /// softmax cross-entropy of the logits (the last layer's output) against `labels`.
    func backward(labels: [Int], rows: Int) {
        let L = layers.count, c = classCount
        // softmax - onehot (per sample; the batch mean is the update's lr / rows)
        let z = acts[L], delta = deltas[L]
        for r in 0..<rows {
            var m = -T.infinity
            for j in 0..<c { m = max(m, z[r * c + j]) }
            var s: T = 0
            for j in 0..<c {
                delta[r * c + j] = T.exponential(z[r * c + j] - m)
                s += delta[r * c + j]
            }
            for j in 0..<c { delta[r * c + j] /= s }
            delta[r * c + labels[r]] -= 1
        }
        grads.update(repeating: 0, count: parameterCount)
        for i in stride(from: L - 1, through: 0, by: -1) {
            let l = layers[i]
            let needDX = needsInputGradient[i]
            if !needDX && !l.isTrainable { continue }
            let x = acts[i], y = acts[i + 1], dx = deltas[i], dy = deltas[i + 1]
            switch l.kind {
            case .dense: denseBackward(l, x, dx, dy, rows, needDX)
            case .conv: convBackward(l, x, dx, dy, rows, needDX)
            case .maxpool:
                let H = l.h, W = l.w, no = l.oh * l.ow
                dx.update(repeating: 0, count: rows * l.inCount)
                let idx = argmax[i]!
                for plane in 0..<rows * l.c {
                    let dxp = dx + plane * H * W, dyp = dy + plane * no, ip = idx + plane * no
                    for o in 0..<no { dxp[Int(ip[o])] = dyp[o] }
                }
            case .avgpool:
                let H = l.h, W = l.w, Ho = l.oh, Wo = l.ow, ph = l.kh, pw = l.kw
                let n = T(ph * pw)
                dx.update(repeating: 0, count: rows * l.inCount)
                for plane in 0..<rows * l.c {
                    let dxp = dx + plane * H * W, dyp = dy + plane * Ho * Wo
                    for i in 0..<Ho {
                        for j in 0..<Wo {
                            let g = dyp[i * Wo + j] / n
                            for u in 0..<ph {
                                for v in 0..<pw { dxp[(i * ph + u) * W + j * pw + v] = g }
                            }
                        }
                    }
                }
            case .relu:
                for k in 0..<rows * l.outCount { dx[k] = y[k] > 0 ? dy[k] : 0 }
            case .flatten:
                dx.update(from: dy, count: rows * l.outCount)
            }
        }
    }

    func denseBackward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ dx: UnsafeMutablePointer<T>,
                       _ dy: UnsafeMutablePointer<T>, _ rows: Int, _ needDX: Bool) {
        let nIn = l.inCount, nOut = l.outCount
        let wp = params + l.offset, gw = grads + l.offset, gb = gw + nOut * nIn
        // Every sum runs over i (dx) or r (gradients) in ascending order from 0,
        // as the dense-only reference did: its results are reproduced bit for bit.
        for r in 0..<rows {
            let xr = x + r * nIn, dyr = dy + r * nOut
            if needDX {
                let dxr = dx + r * nIn
                dxr.update(repeating: 0, count: nIn)
                for i in 0..<nOut {
                    let d = dyr[i], wr = wp + i * nIn
                    for j in 0..<nIn { dxr[j] += d * wr[j] }
                }
            }
            for i in 0..<nOut {
                let d = dyr[i], gr = gw + i * nIn
                for j in 0..<nIn { gr[j] += d * xr[j] }
                gb[i] += d
            }
        }
    }

    /// Per sample: dW[f, k] += dY[f] . col[k], db[f] += sum dY[f], and (when needed)
    /// dcol[k] = sum over f of w[f, k] dY[f], added back to dX by col2im.
    func convBackward(_ l: ReferenceLayer, _ x: UnsafeMutablePointer<T>, _ dx: UnsafeMutablePointer<T>,
                      _ dy: UnsafeMutablePointer<T>, _ rows: Int, _ needDX: Bool) {
        let F = l.oc, P = l.oh * l.ow, K = l.c * l.kh * l.kw
        let wts = params + l.offset, gw = grads + l.offset, gb = gw + F * K
        if needDX { dx.update(repeating: 0, count: rows * l.inCount) }
        for r in 0..<rows {
            im2col(l, x + r * l.inCount)
            if needDX { dcol.update(repeating: 0, count: K * P) }
            for f in 0..<F {
                let gp = dy + (r * F + f) * P, wf = wts + f * K, gwf = gw + f * K
                var sb: T = 0
                for o in 0..<P { sb += gp[o] }
                gb[f] += sb
                for k in 0..<K {
                    gwf[k] += dot(gp, col + k * P, P)
                    if needDX {
                        let wv = wf[k], dr = dcol + k * P
                        for o in 0..<P { dr[o] += wv * gp[o] }
                    }
                }
            }
            if needDX { col2im(l, dx + r * l.inCount) }
        }
    }

    /// params -= scale * grads.
    func update(scale: T) {
        for k in 0..<parameterCount { params[k] -= scale * grads[k] }
    }
}
