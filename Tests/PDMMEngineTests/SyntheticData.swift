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

/// Trains a seeded model on seeded synthetic data through every stage of
/// `mode` (3 epochs each, batch 8); returns the trainer (its model is `t.model`).
func trainSynthetic(widths: [Int], count: Int, mode: TrainingMode, optimizer: OptimizerKind,
                    learningRate: Double, seed: UInt64) throws -> Trainer {
    let shape = try NetworkShape(widths: widths)
    let model = Model(shape: shape, seed: seed)
    let data = syntheticData(features: widths[0], classes: widths[widths.count - 1], count: count, seed: seed)
    let t = try Trainer(model: model, batch: 8, mode: mode, optimizer: optimizer,
                        options: TrainingOptions(learningRate: learningRate, seed: seed), budget: 1 << 20)
    for s in 0..<t.stageCount {
        t.beginStage(s)
        for e in 0..<3 { _ = try t.trainEpoch(data, epoch: e) }
    }
    t.endStage()
    return t
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
