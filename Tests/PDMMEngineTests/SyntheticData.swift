import PDMMEngine

/// Seeded synthetic data of a given shape (Q16.16 features in [-2, 2)).
func syntheticData(features: Int, classes: Int, count: Int, seed: UInt64) -> Dataset {
    var rng = SplitMix(seed)
    var f = [Int32](repeating: 0, count: features * count)
    var l = [Int32](repeating: 0, count: count)
    for i in 0..<f.count { f[i] = Int32(truncatingIfNeeded: rng.next() >> 46) - (1 << 17) }
    for i in 0..<count { l[i] = Int32(rng.next() % UInt64(classes)) }
    return try! Dataset(featureCount: features, classes: classes, features: f, labels: l)
}

struct SplitMix {
    var s: UInt64
    init(_ seed: UInt64) { s = seed }
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
