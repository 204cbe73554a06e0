import CFixed

/// One trainable layer (dense or convolution) with the cheap operations that
/// follow it up to the next trainable layer (pooling, ReLU, flatten): the unit
/// the modes count (k counts layers), freeze and store.
///
/// Layer l reads s_{l-1} (the input tensor, `input`), its trainable operation
/// writes z_l (`pre`), then an optional pool and an optional ReLU give s_l
/// (`output`), which the next layer reads. Flatten only renames the shape
/// (channel-major data is already flat). ReLU is applied after the pool: for
/// max pooling the two commute (relu(max z) = max relu(z), exactly), and
/// `relu, avgpool` is refused, so the backward pass needs only s_l (the
/// next layer's stored input) and, for max pooling, the argmax index of each
/// output. This is the one place the sizes of a layer are answered (prepare);
/// `Layer+Invoke.swift` runs it.
///
/// ```swift
/// let shape = try NetworkShape(spec: NetworkSpec.parse("1x8x8: conv 4 3x3 same, relu, maxpool 2x2, flatten, dense 10"))
/// shape.layer(1).parameterCount   // 4*1*3*3 + 4 = 40
/// shape.layer(1).indexWords       // 4*4*4 = 64 argmax indices per sample
/// ```
public struct Layer: Equatable, Sendable {
    /// The trainable operation.
    public enum Kind: Equatable, Sendable {
        /// W [n_out x n_in] row-major, then b [n_out].
        case dense
        /// W [F x C x kh x kw], then b [F]; zero padding of padTop rows above and
        /// padLeft columns left (the rest implied by the output size).
        case conv(kh: Int, kw: Int, stride: Int, padTop: Int, padLeft: Int)
    }

    /// The pooling after the trainable operation (non-overlapping windows).
    public enum Pool: Equatable, Sendable {
        case none
        case max(ph: Int, pw: Int)
        case avg(ph: Int, pw: Int)
    }

    public let kind: Kind
    /// s_{l-1}, what the layer reads.
    public let input: TensorShape
    /// z_l, what the trainable operation writes.
    public let pre: TensorShape
    /// s_l, what the next layer reads.
    public let output: TensorShape
    public let pool: Pool
    public let relu: Bool
    /// A convolution's kernel scratch, asked once here (prepare), not per step:
    /// `q16_conv_forward_buffer_size` and `q16_conv_backward_data_buffer_size` in
    /// words, `q16_conv_weight_buffer_size` in bytes rounded up to 8 (0 for dense).
    let convForwardWords: Int
    let convBackwardDataWords: Int
    let convWeightBytes: Int

    init(kind: Kind, input: TensorShape, pre: TensorShape, output: TensorShape, pool: Pool, relu: Bool) {
        self.kind = kind
        self.input = input
        self.pre = pre
        self.output = output
        self.pool = pool
        self.relu = relu
        guard var p = Layer.convParams(kind, input, pre) else {
            (convForwardWords, convBackwardDataWords, convWeightBytes) = (0, 0, 0)
            return
        }
        convForwardWords = (q16_conv_forward_buffer_size(&p) + 3) / 4
        convBackwardDataWords = (q16_conv_backward_data_buffer_size(&p) + 3) / 4
        convWeightBytes = (q16_conv_weight_buffer_size(&p) + 7) / 8 * 8
    }

    // MARK: parameters

    /// Weight words: n_out n_in (dense) or F C kh kw (conv).
    public var weightCount: Int {
        switch kind {
        case .dense: return pre.count * input.count
        case .conv(let kh, let kw, _, _, _): return pre.channels * input.channels * kh * kw
        }
    }
    /// Bias words: one per output unit or filter.
    public var biasCount: Int { pre.channels }
    /// P_l: weights then biases.
    public var parameterCount: Int { weightCount + biasCount }
    /// Inputs of one output unit (the He initialisation's fan-in).
    public var fanIn: Int {
        switch kind {
        case .dense: return input.count
        case .conv(let kh, let kw, _, _, _): return input.channels * kh * kw
        }
    }
    /// Multiply-accumulates of one sample's forward pass (the same for the
    /// input gradient and for the weight gradient).
    public var macsPerSample: Int { weightCount * (isConv ? pre.height * pre.width : 1) }

    public var isConv: Bool { if case .conv = kind { return true } else { return false } }
    public var hasPool: Bool { pool != .none }

    // MARK: words per sample

    /// |s_l|: the layer's output, stored when the next layer trains.
    public var outputWords: Int { output.count }
    /// |z_l|: the trainable operation's output; a separate (working) tensor
    /// only when the layer pools, else it is s_l itself.
    public var preWords: Int { pre.count }
    /// Argmax indices of max pooling (one int32 per output), stored beside s_l
    /// when the gradient flows back through this layer; 0 otherwise.
    public var indexWords: Int { if case .max = pool { return output.count } else { return 0 } }
    /// The pre-pool buffer a pooling layer's forward needs (0 without a pool).
    public var poolTemporaryWords: Int { hasPool ? pre.count : 0 }

    // MARK: scratch (bytes or words of the kernels' ..._buffer_size)

    /// Scratch words of the forward at `batch` rows: the dense forward's packed
    /// block if `packed` (`q16_gemm_nt_buffer_size`), the convolution's
    /// im2col buffer always (`q16_conv_forward_buffer_size`; batch-independent).
    public func forwardScratchWords(batch: Int, packed: Bool) -> Int {
        switch kind {
        case .dense:
            return packed ? Kernels.denseForwardScratchWords(rows: batch, nIn: input.count, nOut: pre.count) : 0
        case .conv: return convForwardWords
        }
    }

    /// Scratch words of the input gradient (`q16_conv_backward_data_buffer_size`; 0 for dense).
    public var backwardDataScratchWords: Int {
        convBackwardDataWords
    }

    /// Scratch bytes of the weight update: `fused` (SGD, Riemannian, IVC) sums the
    /// gradient exactly into an int64 row (dense: 8 n_in,
    /// `q16_update_outer_sr_buffer_size`); a convolution's weight-gradient
    /// kernels take `q16_conv_weight_buffer_size` whether fused or not.
    public func updateScratchBytes(fused: Bool) -> Int {
        switch kind {
        case .dense: return fused ? 8 * input.count : 0
        case .conv: return convWeightBytes
        }
    }

    /// The convolution's kernel parameters (conv layers only).
    var convParams: q16_conv_params {
        guard let p = Layer.convParams(kind, input, pre) else { preconditionFailure("convParams of a dense layer") }
        return p
    }

    static func convParams(_ kind: Kind, _ input: TensorShape, _ pre: TensorShape) -> q16_conv_params? {
        guard case .conv(let kh, let kw, let s, let pt, let pl) = kind else { return nil }
        return q16_conv_params(C: Int32(input.channels), H: Int32(input.height), W: Int32(input.width),
                               F: Int32(pre.channels), kh: Int32(kh), kw: Int32(kw),
                               stride_h: Int32(s), stride_w: Int32(s), pad_top: Int32(pt), pad_left: Int32(pl),
                               Ho: Int32(pre.height), Wo: Int32(pre.width))
    }

    /// The text form of the layer and its operations ("conv 8 3x3 same, maxpool 2x2, relu").
    public var description: String {
        var s: String
        switch kind {
        case .dense: s = "dense \(pre.count)"
        case .conv(let kh, let kw, let st, _, _):
            s = "conv \(pre.channels) \(kh)x\(kw)" + (st == 1 ? "" : " stride \(st)")
        }
        switch pool {
        case .none: break
        case .max(let ph, let pw): s += ", maxpool \(ph)x\(pw)"
        case .avg(let ph, let pw): s += ", avgpool \(ph)x\(pw)"
        }
        if relu { s += ", relu" }
        return s
    }
}

extension Layer {
    /// Groups a checked spec into layers: each trainable layer with the
    /// operations after it. Refuses what the backward pass cannot do from the
    /// stored tensors alone, naming the layer: an operation before the first
    /// trainable layer (other than flatten), two pools or two ReLUs after one
    /// trainable layer, ReLU before average pooling, and a last layer with
    /// operations after it.
    static func layers(of spec: NetworkSpec) throws(EngineError) -> [Layer] {
        var out: [Layer] = []
        var i = 0
        let ls = spec.layers
        func fail(_ j: Int, _ m: String) -> EngineError {
            .invalidNetwork("layer \(j + 1) (\(ls[j].description)): \(m)")
        }
        while i < ls.count && ls[i] == .flatten { i += 1 }
        if i < ls.count && !ls[i].isTrainable {
            throw fail(i, "the network must start with a conv or dense layer (only flatten may come before it)")
        }
        while i < ls.count {
            let input = spec.inputShape(of: i)
            let pre = spec.shapes[i]
            var kind = Kind.dense
            if case .conv(_, let kh, let kw, let s, let p) = ls[i] {
                var pt = 0, pl = 0
                if p == .same {
                    pt = max((pre.height - 1) * s + kh - input.height, 0) / 2
                    pl = max((pre.width - 1) * s + kw - input.width, 0) / 2
                }
                kind = .conv(kh: kh, kw: kw, stride: s, padTop: pt, padLeft: pl)
            }
            var pool = Pool.none
            var relu = false
            var j = i + 1
            while j < ls.count && !ls[j].isTrainable {
                switch ls[j] {
                case .relu:
                    if relu { throw fail(j, "a second relu after one trainable layer") }
                    relu = true
                case .maxpool(let ph, let pw), .avgpool(let ph, let pw):
                    if pool != .none { throw fail(j, "a second pooling layer after one trainable layer is not supported") }
                    if case .avgpool = ls[j] {
                        if relu {
                            throw fail(j, "relu before avgpool is not supported (its backward pass would need the pre-pool activations): write avgpool, relu")
                        }
                        pool = .avg(ph: ph, pw: pw)
                    } else {
                        pool = .max(ph: ph, pw: pw)
                    }
                default: break  // flatten: a new name for the same channel-major data
                }
                j += 1
            }
            let layer = Layer(kind: kind, input: input, pre: pre, output: spec.shapes[j - 1], pool: pool, relu: relu)
            if layer.isConv {
                var p = layer.convParams
                if q16_conv_check(&p) != Q16_OK { throw fail(i, "the convolution's shape is outside what the kernels accept") }
            }
            out.append(layer)
            i = j
        }
        let last = out[out.count - 1]
        if last.hasPool || last.relu || last.isConv {
            throw .invalidNetwork("the last trainable layer must be dense with nothing after it (its outputs are the class scores)")
        }
        return out
    }
}
