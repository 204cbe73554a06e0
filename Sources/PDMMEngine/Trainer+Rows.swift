import CFixed

/// Calls over caller rows (the C library's `pdmm_train_batch`, `pdmm_predict`,
/// `pdmm_evaluate`): row-major Q16.16 (or float) features, no `Dataset`, no heap.
extension Trainer {
    /// Trains one batch of `rows` (1...batch) samples given as float features,
    /// each converted to Q16.16 into the arena's input (round to nearest, ties
    /// away, saturating; counted in `saturations`). Throws (and trains nothing) for
    /// rows outside 1...batch, a NaN feature, a label outside 0..<classes, or no
    /// stage begun.
    public func step(floatFeatures f: UnsafePointer<Float>, labels l: UnsafePointer<Int32>,
                     rows: Int) throws(EngineError) -> PassStats {
        try requireStage("step")
        try checkRows(rows, max: batch, labels: l)
        let w = n[0]
        var sat: UInt64 = 0
        for i in 0..<rows * w where q16_from_float(input.base + i, f[i], &sat) != Q16_OK {
            throw .invalidParameter(name: "features", reason: "value \(i) is NaN")
        }
        saturations &+= sat
        labels.update(from: l, count: rows)
        return step(rows: rows)
    }

    /// The current stage's output for `rows` samples (any count, in batches):
    /// each row's arg-max class into `classes` and its softmax probabilities
    /// (Q16.16, rows x classes) into `probabilities` (either may be nil).
    /// Forward passes only; the weights do not change.
    public func predict(features: UnsafePointer<Int32>, rows: Int, classes: UnsafeMutablePointer<Int32>?,
                        probabilities: UnsafeMutablePointer<Int32>?) throws(EngineError) {
        try requireStage("predict")
        if rows < 1 { throw .emptyData }
        defer { predictOutput = nil }
        var start = 0
        while start < rows {
            let r = min(batch, rows - start)
            input.base.update(from: features + start * n[0], count: r * n[0])
            labels.update(repeating: 0, count: r)
            predictOutput = (classes.map { $0 + start }, probabilities.map { $0 + start * n[L] })
            _ = pass(rows: r, train: false)
            start += r
        }
    }

    /// Loss and correct predictions of the current stage's output over `rows`
    /// labelled samples (any count, in batches); the weights do not change.
    public func evaluate(features: UnsafePointer<Int32>, labels l: UnsafePointer<Int32>,
                         rows: Int) throws(EngineError) -> PassStats {
        try requireStage("evaluate")
        try checkRows(rows, max: Int.max, labels: l)
        var stats = PassStats()
        var start = 0
        while start < rows {
            let r = min(batch, rows - start)
            input.base.update(from: features + start * n[0], count: r * n[0])
            labels.update(from: l + start, count: r)
            stats.add(pass(rows: r, train: false))
            start += r
        }
        return stats
    }

    /// Throws for a row count outside 1...max or a label outside 0..<classes.
    func checkRows(_ rows: Int, max: Int, labels l: UnsafePointer<Int32>) throws(EngineError) {
        if rows < 1 { throw .emptyData }
        if rows > max {
            throw .invalidParameter(name: "rows", reason: "\(rows) rows: a batch holds 1...\(max) samples")
        }
        for r in 0..<rows where l[r] < 0 || Int(l[r]) >= n[L] {
            throw .labelOutOfRange(sample: r, label: Int(l[r]), classes: n[L])
        }
    }

    /// Each row's arg-max logit (the first of ties, as `countCorrect`).
    func writeClasses(_ logits: Tensor, rows: Int, _ out: UnsafeMutablePointer<Int32>?) {
        guard let out else { return }
        let c = n[L]
        for r in 0..<rows {
            var best = 0
            for j in 1..<c where logits[r * c + j] > logits[r * c + best] { best = j }
            out[r] = Int32(best)
        }
    }

    /// The softmax probabilities from the loss gradient p - onehot(label) that the
    /// cross-entropy kernel left in `grad` (`predict` sets every label to 0).
    func writeProbabilities(_ grad: Tensor, rows: Int, _ out: UnsafeMutablePointer<Int32>?) {
        guard let out else { return }
        let c = n[L]
        for r in 0..<rows {
            for j in 0..<c {
                var p = grad[r * c + j]
                if Int32(j) == labels[r] { p &+= 1 << 16 }
                out[r * c + j] = p
            }
        }
    }
}
