import CMallocCounter
import XCTest
@testable import PDMMEngine

/// Convolutional networks in every mode and optimizer: measured == planned to
/// the byte, stored activations against a separate formula, the bytes really
/// touched (canary), no heap in steady state, determinism.
final class CNNTests: XCTestCase {
    static let specs = [
        "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, conv 6 3x3 same, relu, flatten, dense 12, relu, dense 3",
        "3x1x24: conv 5 1x5 stride 2 valid, avgpool 1x2, relu, conv 4 1x3, maxpool 1x2, relu, flatten, dense 3",
        "2x6x6: conv 3 3x3 valid, maxpool 2x2, relu, flatten, dense 4",
        "1x7x7: conv 2 2x2 stride 2, relu, conv 3 3x3, relu, maxpool 2x2, conv 2 1x1, relu, flatten, dense 3",
    ]
    static let optimizers: [OptimizerKind] = [.sgd, .momentum(mu: 0.9),
                                              .riemannian(alpha: 2, rho: 0.9, phi: .gradSquared),
                                              .riemannian(alpha: 2, rho: 0.9, phi: .weightMagnitude)]

    func modes(_ L: Int) -> [TrainingMode] {
        var m: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in 1...L { m.append(.local(k: k)) }
        for k in 1..<L { m.append(.blockwise(k: k)) }
        return m
    }

    func shape(_ text: String) throws -> NetworkShape { try NetworkShape(spec: NetworkSpec.parse(text)) }

    /// Runs every stage of `mode` for two steps per stage on synthetic data.
    func runSteps(_ s: NetworkShape, batch: Int, mode: TrainingMode, optimizer: OptimizerKind,
                  memory: UnsafeMutableRawBufferPointer? = nil, seed: UInt64 = 1) throws -> Trainer {
        let model = Model(shape: s, seed: seed)
        let data = syntheticData(features: s.inputWidth, classes: s.classCount, count: 2 * batch + 1, seed: seed)
        let t: Trainer
        if let memory {
            t = try Trainer(model: model, batch: batch, mode: mode, optimizer: optimizer, options: TrainingOptions(seed: seed),
                            memory: memory)
        } else {
            t = try Trainer(model: model, batch: batch, mode: mode, optimizer: optimizer, options: TrainingOptions(seed: seed),
                            budget: 1 << 24)
        }
        for st in 0..<t.stageCount {
            t.beginStage(st)
            _ = try t.trainEpoch(data, epoch: st)
        }
        t.endStage()
        return t
    }

    /// Stored activations in bytes, counted from the spec's layer list alone
    /// (not from `Layer`): for each stage, the tensors a trained layer reads
    /// (the outputs of layers F...T-1, F >= 1) plus, for every output the
    /// gradient flows back through, one int32 argmax index per max-pooled value;
    /// an auxiliary head adds s_T, its indices and its channels' average when s_T
    /// is spatial. bp-checkpoint: the boundary outputs plus one segment's inner ones.
    func analyticStored(_ spec: NetworkSpec, _ B: Int, _ mode: TrainingMode) -> Int {
        // Per trainable layer: output words and whether max pooling follows it.
        var out: [Int] = [spec.input.count], maxPooled: [Bool] = [false], chans: [Int] = [0], flat: [Bool] = [true]
        for (i, l) in spec.layers.enumerated() {
            if l.isTrainable { out.append(0); maxPooled.append(false); chans.append(0); flat.append(true) }
            if case .maxpool = l { maxPooled[maxPooled.count - 1] = true }
            out[out.count - 1] = spec.shapes[i].count
            chans[chans.count - 1] = spec.shapes[i].channels
            flat[flat.count - 1] = spec.shapes[i].isFlat
        }
        let L = out.count - 1
        func kept(_ l: Int) -> Int { out[l] * (maxPooled[l] ? 2 : 1) }
        var best = 0
        for st in mode.stages(layers: L) {
            let F = st.frozenCount, T = st.lastTrained
            var w = 0
            if st.checkpointed {
                var s = 1
                while s * s < L { s += 1 }
                var inner = 0
                for j in stride(from: 0, to: L, by: s) {
                    if j > 0 { w += kept(j) }
                    var seg = 0
                    var l = j + 1
                    while l < min(j + s, L) { seg += kept(l); l += 1 }
                    inner = max(inner, seg)
                }
                w += inner
            } else {
                if F >= 1 { w += out[F] }
                var l = F + 1
                while l < T { w += kept(l); l += 1 }
                if st.hasAuxHead { w += kept(T) + (flat[T] ? 0 : chans[T]) }
            }
            best = max(best, 4 * B * w)
        }
        return best
    }

    func testMeasuredEqualsPlannedForCNNsInEveryModeAndOptimizer() throws {
        var runs = 0
        for text in Self.specs {
            let s = try shape(text)
            for batch in [1, 5] {
                for mode in modes(s.layerCount) {
                    for opt in Self.optimizers {
                        let t = try runSteps(s, batch: batch, mode: mode, optimizer: opt)
                        let what = "\(text) B=\(batch) \(mode.name) \(opt.name)"
                        for c in MemoryCategory.allCases {
                            XCTAssertEqual(t.arena.peak[c], t.plan.bytes[c], "\(what) \(c.name)")
                        }
                        XCTAssertEqual(t.plan.bytes.activationsStored, analyticStored(s.spec, batch, mode), what)
                        XCTAssertLessThanOrEqual(t.arena.peakLive, t.plan.peakWritable, what)
                        XCTAssertGreaterThan(t.macs.update, 0, what)
                        runs += 1
                    }
                }
            }
        }
        XCTAssertEqual(runs, 2 * 4 * (9 + 7 + 5 + 9))
    }

    /// The stored-activation arithmetic of the README's CNN row, by hand:
    /// 1x8x8: conv 4 3x3 same, relu, maxpool 2x2 (4x4x4 = 64 values + 64 indices),
    /// conv 6 3x3 same, relu (6x4x4 = 96), flatten, dense 12, relu (12), dense 3.
    func testCNNPlanByHand() throws {
        let s = try shape(Self.specs[0])
        XCTAssertEqual(s.widths, [64, 64, 96, 12, 3])
        XCTAssertEqual(s.layer(1).parameterCount, 4 * 9 + 4)
        XCTAssertEqual(s.layer(2).parameterCount, 6 * 4 * 9 + 6)
        XCTAssertEqual(s.layer(1).indexWords, 64)
        let bp = try MemoryPlan(shape: s, batch: 8, mode: .bp, optimizer: .sgd)
        XCTAssertEqual(bp.bytes.activationsStored, 4 * 8 * ((64 + 64) + 96 + 12))
        XCTAssertEqual(bp.bytes.input, 4 * 8 * 65)
        // Two delta buffers of the largest pre-pool tensor (conv 1: 4x8x8 = 256) and the loss row.
        XCTAssertEqual(bp.bytes.activationsWorking, 4 * 8 * (2 * 256 + 1))
        XCTAssertEqual(bp.bytes.weightsTrainable, 4 * (40 + 222 + (96 * 12 + 12) + (12 * 3 + 3)))
        let local1 = try MemoryPlan(shape: s, batch: 8, mode: .local(k: 1), optimizer: .sgd)
        XCTAssertEqual(local1.bytes.activationsStored, 4 * 8 * 12)
        // Frozen forward: ping-pong pair of max(64, 96, 12) and conv 1's pre-pool buffer (256).
        XCTAssertEqual(local1.bytes.activationsWorking, 4 * 8 * (2 * 96 + 256))
        // Blockwise(1), stage 1: head on conv 1's 4x4x4 output = global average pool to 4 channels.
        let bw = try MemoryPlan(shape: s, batch: 8, mode: .blockwise(k: 1), optimizer: .sgd)
        XCTAssertEqual(bw.stageBytes[0].activationsStored, 4 * 8 * (64 + 64 + 4))
        XCTAssertEqual(bw.stageBytes[0].weightsTrainable, 4 * (40 + 4 * 3 + 3))
    }

    func testNetworksTheEngineCannotTrainAreRefusedByName() throws {
        let cases: [(String, String)] = [
            ("1x8x8: maxpool 2x2, conv 2 3x3, flatten, dense 3", "layer 1 (maxpool 2x2): the network must start with a conv or dense layer"),
            ("1x8x8: conv 2 3x3, relu, avgpool 2x2, flatten, dense 3", "layer 3 (avgpool 2x2): relu before avgpool is not supported"),
            ("1x8x8: conv 2 3x3, maxpool 2x2, maxpool 2x2, flatten, dense 3", "layer 3 (maxpool 2x2): a second pooling layer"),
            ("1x8x8: conv 2 3x3, relu, relu, flatten, dense 3", "layer 3 (relu): a second relu"),
        ]
        for (text, message) in cases {
            let spec = try NetworkSpec.parse(text)
            XCTAssertThrowsError(try NetworkShape(spec: spec), text) { e in
                let m = (e as? EngineError)?.message ?? ""
                XCTAssertTrue(m.contains(message), "\(text): \(m)")
            }
        }
        XCTAssertThrowsError(try NetworkShape(spec: NetworkSpec.parse("1x64x64: conv 16 3x3, flatten, dense 1000"))) { e in
            XCTAssertTrue(((e as? EngineError)?.message ?? "").contains("too large"), "\(e)")
        }
    }

    /// Fills caller memory with a canary, trains, and counts the bytes that
    /// changed: within each category's planned region only, nothing in the
    /// guard bytes around the arena, and frozen layers (read in place from the
    /// model image) unchanged. Two canaries: a byte counts as touched if either run changed it.
    func testCanaryTouchedBytesWithinPlanAndNothingOutside() throws {
        let guardBytes = 4096
        for text in [Self.specs[0], Self.specs[1]] {
            let s = try shape(text)
            for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 2), .blockwise(k: 2)] {
                for opt in [OptimizerKind.sgd, .momentum(mu: 0.5)] {
                    let plan = try MemoryPlan(shape: s, batch: 6, mode: mode, optimizer: opt)
                    let size = plan.peakWritable
                    var touched = [Bool](repeating: false, count: size)
                    var ranges: [(MemoryCategory, Int, Int)] = []
                    for canary: UInt8 in [0xA5, 0x5A] {
                        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: size + 2 * guardBytes, alignment: 16)
                        defer { raw.deallocate() }
                        raw.initializeMemory(as: UInt8.self, repeating: canary)
                        let arenaMemory = UnsafeMutableRawBufferPointer(rebasing: raw[guardBytes..<(guardBytes + size)])
                        let initial = Model(shape: s, seed: 3)
                        let t = try runSteps(s, batch: 6, mode: mode, optimizer: opt, memory: arenaMemory, seed: 3)
                        let what = "\(text) \(mode.name) \(opt.name)"
                        XCTAssertEqual(t.plan, plan, what)
                        for i in 0..<guardBytes {
                            if raw[i] != canary || raw[guardBytes + size + i] != canary {
                                XCTFail("\(what): a guard byte outside the arena was written"); break
                            }
                        }
                        for i in 0..<size where arenaMemory[i] != canary { touched[i] = true }
                        ranges = MemoryCategory.allCases.filter { $0.isWritable }.map { ($0, t.arena.start[$0], t.arena.limit[$0]) }
                        if case .local(let k) = mode {
                            // Layers 1...L-k are read in place and never written; the trained ones move.
                            let frozenWords = s.parameterCount(layers: 1...(s.layerCount - k))
                            for i in 0..<frozenWords where t.model[i] != initial[i] {
                                XCTFail("\(what): frozen word \(i) changed"); break
                            }
                            XCTAssertNotEqual(initial.weightsHash, t.model.weightsHash, what)
                        }
                    }
                    var total = 0
                    for (c, start, limit) in ranges {
                        var n = 0
                        for i in start..<(start + limit) where touched[i] { n += 1 }
                        total += n
                        let what = "\(text) \(mode.name) \(opt.name) \(c.name)"
                        XCTAssertLessThanOrEqual(n, plan.bytes[c], what)
                        // Exactly the planned bytes of the categories filled whole by a full batch.
                        if [MemoryCategory.input, .activationsStored, .weightsTrainable, .optimizer, .gradients].contains(c) {
                            XCTAssertEqual(n, plan.bytes[c], what)
                        } else {
                            XCTAssertGreaterThanOrEqual(n * 4, plan.bytes[c] * 3, "\(what): under 3/4 of the plan touched")
                        }
                    }
                    var inRegions = 0
                    for (_, _, limit) in ranges { inRegions += limit }
                    XCTAssertEqual(inRegions, size)
                    XCTAssertLessThanOrEqual(total, size)
                }
            }
        }
    }

    func testCNNStepsAllocateNothingInSteadyState() throws {
        try requireMallocCounter()
        let s = try shape(Self.specs[0])
        for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 2), .blockwise(k: 2)] {
            for opt in Self.optimizers {
                let model = Model(shape: s, seed: 1)
                let data = syntheticData(features: 64, classes: 3, count: 80, seed: 2)
                let t = try Trainer(model: model, batch: 8, mode: mode, optimizer: opt,
                                    options: TrainingOptions(), budget: 1 << 22)
                t.beginStage(0)
                _ = try t.trainEpoch(data, epoch: 0)
                let before = malloc_counter_calls()
                for e in 1...5 { _ = try t.trainEpoch(data, epoch: e) }
                _ = try t.evaluate(data)
                XCTAssertEqual(malloc_counter_calls() - before, 0, "\(mode.name) \(opt.name): heap allocations in 50 steps")
            }
        }
    }

    func testCNNDeterminismAndCheckpointingChangesMemoryNotResults() throws {
        for text in Self.specs {
            let s = try shape(text)
            let bp = try runSteps(s, batch: 4, mode: .bp, optimizer: .sgd, seed: 9).model.weightsHash
            XCTAssertEqual(bp, try runSteps(s, batch: 4, mode: .bp, optimizer: .sgd, seed: 9).model.weightsHash, text)
            XCTAssertNotEqual(bp, try runSteps(s, batch: 4, mode: .bp, optimizer: .sgd, seed: 10).model.weightsHash, text)
            XCTAssertEqual(bp, try runSteps(s, batch: 4, mode: .bpCheckpoint, optimizer: .sgd, seed: 9).model.weightsHash, text)
            // local(L) trains every layer like bp (nothing frozen): the same weights.
            XCTAssertEqual(bp, try runSteps(s, batch: 4, mode: .local(k: s.layerCount), optimizer: .sgd, seed: 9).model.weightsHash, text)
        }
    }

    /// The PDMM pipeline on a CNN: every phase measured == planned, deterministic,
    /// and the separation/decision passes (the predictor) allocate nothing.
    func testPDMMPipelineOnACNN() throws {
        let s = try shape(Self.specs[0])
        func run() throws -> PDMMPipeline {
            var c = PDMMConfig()
            c.batch = 8
            c.idealEpochs = 2
            c.defectEpochs = 2
            c.ivcPeriod = 2
            c.k = 2
            c.selectionEpochs = 2
            c.threshold = .fraction(0.1)  // random labels: E by share (a measured threshold may leave it empty)
            let data = syntheticData(features: 64, classes: 3, count: 120, seed: 5)
            let p = try PDMMPipeline(shape: s, config: c, train: data)
            try p.learnIdeal()
            try p.separate()
            try p.learnDefects()
            _ = try p.decide(p.rest)
            return p
        }
        let p = try run()
        XCTAssertEqual(p.phases.count, 6)  // confident selection, ideal, separation, defect, IVC, decision
        for ph in p.phases { XCTAssertEqual(ph.measured, ph.planned, ph.name) }
        XCTAssertGreaterThan(p.ivcCount, 0)
        XCTAssertEqual(p.errorAware.weightsHash, try run().errorAware.weightsHash)

        try requireMallocCounter()
        let a = Model(shape: s, seed: 1), b = Model(shape: s, seed: 2)
        let data = syntheticData(features: 64, classes: 3, count: 50, seed: 4)
        let pr = try Predictor(shape: s, batch: 8, dual: true, perSampleCount: data.count, budget: 1 << 22)
        _ = try pr.dualDecision(stable: a, errorAware: b, lambdaMax: 0.5, data)
        try assertPredictorPassesAllocateNothing(pr, a, b, data, rounds: 5)
    }

    /// `--net`, `--input-shape` and `--layers` through the one rule the tool and
    /// the board share, with the messages of what does not fit the data.
    func testNetworkOptions() throws {
        let net = "conv 4 3x3, relu, maxpool 2x2, flatten, dense 10"
        let a = try NetworkOptions.shape(net: net, inputShape: "1x8x8", layers: nil, defaultWidths: [], features: 64, classes: 10)
        XCTAssertEqual(a.spec.description, "1x8x8: " + "conv 4 3x3 same, relu, maxpool 2x2, flatten, dense 10")
        XCTAssertEqual(NetworkOptions.scalingChannels(a), 1)
        let d = try NetworkOptions.shape(net: nil, inputShape: nil, layers: nil, defaultWidths: [5, 7, 2], features: 64, classes: 10)
        XCTAssertEqual(d.widths, [64, 7, 10])
        XCTAssertNil(NetworkOptions.scalingChannels(d))
        let f = try NetworkOptions.shape(net: nil, inputShape: "4x4x4", layers: [64, 16, 10], defaultWidths: [], features: 64, classes: 10)
        XCTAssertEqual(f.spec.description, "4x4x4: flatten, dense 16, relu, dense 10")
        XCTAssertEqual(NetworkOptions.scalingChannels(f), 4)
        let cases: [(String?, String?, [Int]?, String)] = [
            (net, "2x8x8", nil, "network: --input-shape 2x8x8 holds 128 values but the data has 64 features"),
            ("1x8x8: " + net, "64", nil, "network: --input-shape 64 disagrees with the network's input 1x8x8"),
            ("1x9x9: " + net, nil, nil, "network: the network's input 1x9x9 holds 81 values but the data has 64 features"),
            (nil, "1x8x8", [60, 10], "network: --layers starts with 60 but --input-shape 1x8x8 holds 64 values"),
            (net, "1x8", nil, "network: input shape '1x8': column 1: expected the input shape CxHxW (1-D data: Cx1xW) or a feature count, found '1x8'"),
        ]
        for (n, i, l, m) in cases {
            XCTAssertThrowsError(try NetworkOptions.shape(net: n, inputShape: i, layers: l, defaultWidths: [], features: 64, classes: 10)) { e in
                XCTAssertEqual((e as? EngineError)?.message, m)
            }
        }
    }
}
