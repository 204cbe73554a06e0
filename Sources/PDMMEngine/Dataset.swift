/// Samples in Q16.16 with integer class labels, held outside the arena (the
/// data is the run's input stream, like a file or flash on a board).
///
/// ```swift
/// let d = try Dataset(featureCount: 2, classes: 2, features: [0, 65536, 65536, 0], labels: [1, 0])
/// let (train, test) = d.split(trainPercent: 50, seed: 1)
/// ```
public final class Dataset {
    public let count: Int
    public let featureCount: Int
    public let classes: Int
    let features: UnsafeMutablePointer<Int32>
    let labels: UnsafeMutablePointer<Int32>
    /// False once `split(consuming:)` handed the buffers to the training split.
    var ownsBuffers = true
    /// Values clamped to the Q16.16 range when scaling was applied.
    public private(set) var saturatedValues: UInt64 = 0
    /// Per-sample "verified" (high-certainty) flags, if the data has such a
    /// column; kept through `subset`, `split` and `scaled`. PDMM's D_Ideal.
    public var verified: [Bool]?
    /// The names of a CSV header line (every column, the label's included, in
    /// file order) when `CSVParser` took line 1 of the file as a header; nil
    /// when every line was data. Kept through `subset`, `split` and `scaled`.
    public internal(set) var header: [String]?

    /// Copies Q16.16 features (count x featureCount, row-major) and labels;
    /// every label must lie in 0..<classes.
    public init(featureCount: Int, classes: Int, features: [Int32], labels: [Int32]) throws(EngineError) {
        if labels.isEmpty { throw .emptyData }
        if featureCount < 1 { throw .zeroWidth(index: 0, value: featureCount) }
        if classes < 1 { throw .invalidParameter(name: "classes", reason: "must be at least 1") }
        if features.count != labels.count * featureCount {
            throw .featureMismatch(expected: featureCount, got: features.count / max(labels.count, 1))
        }
        for i in 0..<labels.count where labels[i] < 0 || Int(labels[i]) >= classes {
            throw .labelOutOfRange(sample: i, label: Int(labels[i]), classes: classes)
        }
        self.count = labels.count
        self.featureCount = featureCount
        self.classes = classes
        self.features = .allocate(capacity: features.count)
        self.labels = .allocate(capacity: labels.count)
        for i in 0..<features.count { self.features[i] = features[i] }
        for i in 0..<labels.count { self.labels[i] = labels[i] }
    }

    private init(count: Int, featureCount: Int, classes: Int) {
        self.count = count
        self.featureCount = featureCount
        self.classes = classes
        features = .allocate(capacity: max(count * featureCount, 1))
        labels = .allocate(capacity: max(count, 1))
    }

    /// Takes ownership of `features` (count x featureCount, row-major) and `labels`
    /// (count, each in 0..<classes: the caller checked), allocated with `.allocate`.
    init(count: Int, featureCount: Int, classes: Int, adopting features: UnsafeMutablePointer<Int32>,
         labels: UnsafeMutablePointer<Int32>) {
        self.count = count
        self.featureCount = featureCount
        self.classes = classes
        self.features = features
        self.labels = labels
    }

    deinit {
        if ownsBuffers {
            features.deallocate()
            labels.deallocate()
        }
    }

    /// Feature i of sample s (bounds-checked: traps outside the data).
    public func feature(_ s: Int, _ i: Int) -> Int32 {
        precondition(s >= 0 && s < count && i >= 0 && i < featureCount, "Dataset.feature: index out of range")
        return features[s * featureCount + i]
    }
    /// Label of sample s (bounds-checked).
    public func label(_ s: Int) -> Int32 {
        precondition(s >= 0 && s < count, "Dataset.label: index out of range")
        return labels[s]
    }

    /// The samples at `indices`, in that order (every index must lie in 0..<count: checked).
    public func subset(_ indices: [Int]) -> Dataset {
        for s in indices { precondition(s >= 0 && s < count, "Dataset.subset: index out of range") }
        let d = Dataset(count: indices.count, featureCount: featureCount, classes: classes)
        for (j, s) in indices.enumerated() {
            (d.features + j * featureCount).update(from: features + s * featureCount, count: featureCount)
            d.labels[j] = labels[s]
        }
        if let v = verified { d.verified = indices.map { v[$0] } }
        d.header = header
        return d
    }

    /// Seeded split: a Fisher-Yates shuffle driven by the counter-based
    /// generator, then the first `trainPercent` % (rounded down) train, the rest test.
    public func split(trainPercent: Int, seed: UInt64) -> (train: Dataset, test: Dataset) {
        let idx = splitOrder(trainPercent: trainPercent, seed: seed)
        let nTrain = count * trainPercent / 100
        return (subset(Array(idx[0..<nTrain])), subset(Array(idx[nTrain..<count])))
    }

    /// `split` without a copy of the training part: the samples are permuted in
    /// place into the split's order, the test part is copied out, and the
    /// training split takes over `data`'s buffers (the heap then holds the data
    /// once plus the test part). `data` is set to nil; when another reference to
    /// it exists, this is the copying `split`.
    public static func split(consuming data: inout Dataset?, trainPercent: Int, seed: UInt64)
        -> (train: Dataset, test: Dataset) {
        guard isKnownUniquelyReferenced(&data), let d = data else {
            let r = data!.split(trainPercent: trainPercent, seed: seed)
            data = nil
            return r
        }
        let idx = d.splitOrder(trainPercent: trainPercent, seed: seed)
        let n = d.count, w = d.featureCount, nTrain = n * trainPercent / 100
        // new[j] = old[idx[j]], cycle by cycle, one row held aside.
        var done = [Bool](repeating: false, count: n)
        let row = UnsafeMutablePointer<Int32>.allocate(capacity: max(w, 1))
        var flags = d.verified
        for start in 0..<n where !done[start] {
            row.update(from: d.features + start * w, count: w)
            let label = d.labels[start]
            let flag = flags?[start]
            var k = start
            while true {
                done[k] = true
                let next = idx[k]
                if next == start {
                    (d.features + k * w).update(from: row, count: w)
                    d.labels[k] = label
                    if let f = flag { flags![k] = f }
                    break
                }
                (d.features + k * w).update(from: d.features + next * w, count: w)
                d.labels[k] = d.labels[next]
                if flags != nil { flags![k] = flags![next] }
                k = next
            }
        }
        row.deallocate()
        let test = Dataset(count: n - nTrain, featureCount: w, classes: d.classes)
        test.features.update(from: d.features + nTrain * w, count: (n - nTrain) * w)
        test.labels.update(from: d.labels + nTrain, count: n - nTrain)
        if let f = flags { test.verified = Array(f[nTrain..<n]) }
        test.header = d.header
        let train = Dataset(count: nTrain, featureCount: w, classes: d.classes, adopting: d.features, labels: d.labels)
        if let f = flags { train.verified = Array(f[0..<nTrain]) }
        train.header = d.header
        d.ownsBuffers = false
        data = nil
        return (train, test)
    }

    /// The split's sample order: train indices first, then test.
    func splitOrder(trainPercent: Int, seed: UInt64) -> [Int] {
        precondition(trainPercent >= 0 && trainPercent <= 100, "Dataset.split: trainPercent outside 0...100")
        var idx = Array(0..<count)
        if count > 1 {
            for i in stride(from: count - 1, to: 0, by: -1) {
                let r = Int(UInt64(Kernels.randomBits(seed ^ 0x5EED_5EED, UInt64(i))) % UInt64(i + 1))
                idx.swapAt(i, r)
            }
        }
        return idx
    }

    /// Mean and 1/std over this data set (population std; groups with std below
    /// 2^-8 keep scale 1), in integer Q16.16 arithmetic, per group of features:
    /// with `channels` = the feature count (the default) every feature is its
    /// own group; with the input's channel count C (images and series, features
    /// in channel-major order) each channel's H x W positions share one mean and
    /// scale (stored per feature, so the model and checkpoint keep one pair per
    /// feature either way).
    ///
    /// ```swift
    /// let perPixel = train.scalingStatistics()
    /// let perChannel = train.scalingStatistics(channels: 1)   // one mean and scale for all 64 pixels
    /// ```
    public func scalingStatistics(channels: Int? = nil) -> FeatureScaling {
        let groups = channels ?? featureCount
        precondition(groups >= 1 && featureCount % groups == 0, "scalingStatistics: channels must divide the feature count")
        let positions = featureCount / groups
        var mean = [Int32](repeating: 0, count: featureCount)
        var inv = [Int32](repeating: 1 << 16, count: featureCount)
        let n = Int64(count) * Int64(positions)
        for g in 0..<groups {
            let cols = (g * positions)..<((g + 1) * positions)
            var s: Int64 = 0
            for i in 0..<count { for j in cols { s += Int64(features[i * featureCount + j]) } }
            let m = Int32(clamping: Rounding.divNearest(s, n))
            var v: Int64 = 0
            for i in 0..<count {
                for j in cols {
                    let d = Int32(clamping: Int64(features[i * featureCount + j]) - Int64(m))
                    v += Int64(Kernels.mul(d, d))
                }
            }
            let variance = Int32(clamping: Rounding.divNearest(v, n))
            let sd = Kernels.sqrt(variance)
            for j in cols {
                mean[j] = m
                if sd >= 256 { inv[j] = Kernels.div(1 << 16, sd) }
            }
        }
        return FeatureScaling(mean: mean, inverseStd: inv)
    }

    /// A copy with (x - mean) * inverseStd applied; clamped values are counted
    /// in `saturatedValues`.
    public func scaled(by f: FeatureScaling) -> Dataset {
        let d = Dataset(count: count, featureCount: featureCount, classes: classes)
        scale(by: f, into: d)
        return d
    }

    /// `scaled(by:)` in place, for a data set no one else sees yet (`Run.split`).
    func scaleInPlace(by f: FeatureScaling) {
        scale(by: f, into: self)
    }

    private func scale(by f: FeatureScaling, into d: Dataset) {
        precondition(f.mean.count == featureCount, "scaling width mismatch")
        var sat: UInt64 = 0
        for i in 0..<count {
            for j in 0..<featureCount {
                let x = Int64(features[i * featureCount + j]) - Int64(f.mean[j])
                let prod = x * Int64(f.inverseStd[j])
                let r = Rounding.shiftNearest(prod, 16)
                if r > Int64(Int32.max) || r < Int64(Int32.min) { sat += 1 }
                d.features[i * featureCount + j] = Int32(clamping: r)
            }
            d.labels[i] = labels[i]
        }
        d.saturatedValues = sat
        d.verified = verified
        d.header = header
    }
}

/// Feature scaling that is part of the model: statistics of the training split.
public struct FeatureScaling: Equatable {
    public var mean: [Int32]
    public var inverseStd: [Int32]
    public init(mean: [Int32], inverseStd: [Int32]) {
        self.mean = mean
        self.inverseStd = inverseStd
    }
}

/// Integer rounding helpers (round to nearest, ties away from zero), no UB.
enum Rounding {
    static func divNearest(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b, r = a % b
        if 2 * (r < 0 ? -r : r) >= b { return a < 0 ? q - 1 : q + 1 }
        return q
    }
    static func shiftNearest(_ a: Int64, _ s: Int64) -> Int64 {
        divNearest(a, Int64(1) << s)
    }
}

/// A seeded bijection of 0..<n that costs no memory: a few rounds of an
/// odd-multiplier/xorshift mix on the next power of two, cycle-walked into
/// range. Epoch e's batch order is `index(i, n, seed, e)` for i in 0..<n.
public enum Shuffle {
    public static func index(_ i: Int, _ n: Int, seed: UInt64, epoch: Int) -> Int {
        if n <= 1 { return 0 }
        var bits: UInt64 = 1
        while (UInt64(1) << bits) < UInt64(n) { bits += 1 }
        let mask = (UInt64(1) << bits) - 1
        let half = max(bits / 2, 1)
        var x = UInt64(i)
        repeat {
            for r in 0..<3 {
                let key = UInt64(Kernels.randomBits(seed, UInt64(epoch) &* 8 &+ UInt64(r)))
                x = (x &* ((key << 1) | 1)) & mask
                x = (x &+ (key >> 7)) & mask
                x ^= x >> half
            }
        } while x >= UInt64(n)
        return Int(x)
    }
}

extension Dataset {
    /// Builds a data set from small unsigned integer features (e.g. pixels)
    /// and labels, as compiled-in arrays hold them: feature value v becomes
    /// the Q16.16 word v << 16.
    public convenience init(bytes features: UnsafePointer<UInt8>, labels: UnsafePointer<UInt8>,
                            count: Int, featureCount: Int, classes: Int) throws(EngineError) {
        var f = [Int32](repeating: 0, count: count * featureCount)
        for i in 0..<(count * featureCount) { f[i] = Int32(features[i]) << 16 }
        var l = [Int32](repeating: 0, count: count)
        for i in 0..<count { l[i] = Int32(labels[i]) }
        try self.init(featureCount: featureCount, classes: classes, features: f, labels: l)
    }
}
