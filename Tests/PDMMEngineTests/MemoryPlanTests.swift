import XCTest
@testable import PDMMEngine

/// Measured (the arena's high-water marks while real steps run) must equal
/// the plan byte for byte, and the stored activations must equal the memory
/// model's analytic minimum, computed here independently of `MemoryPlan`.
final class MemoryPlanTests: XCTestCase {
    static let shapes: [[Int]] = [
        [64, 128, 128, 128, 10],                        // L = 4
        [20, 48, 40, 32, 24, 24, 32, 40, 7],            // L = 8, uneven widths
        [16] + [Int](repeating: 24, count: 15) + [5],   // L = 16
    ]

    func modes(_ L: Int) -> [TrainingMode] {
        [.bp, .bpCheckpoint, .local(k: 1), .local(k: 2), .local(k: L), .blockwise(k: 1),
         .blockwise(k: 3), .blockwise(k: L)]
    }

    /// S(i..j) = B (n_i + ... + n_j), in bytes.
    func S(_ n: [Int], _ B: Int, _ i: Int, _ j: Int) -> Int {
        i > j ? 0 : 4 * B * n[i...j].reduce(0, +)
    }

    /// The memory model's stored-activation formula for each mode.
    func analyticStored(_ n: [Int], _ B: Int, _ mode: TrainingMode) -> Int {
        let L = n.count - 1
        switch mode {
        case .bp: return S(n, B, 1, L - 1)
        case .local(let k): return S(n, B, max(L - k, 1), L - 1)
        case .bpCheckpoint:
            var s = 1
            while s * s < L { s += 1 }
            let boundaries = stride(from: s, through: L - 1, by: s).reduce(0) { $0 + 4 * B * n[$1] }
            var seg = 0
            for first in stride(from: 1, through: L, by: s) {
                seg = max(seg, S(n, B, first, min(first + s - 1, L) - 1))
            }
            return boundaries + seg
        case .blockwise(let k):
            var worst = 0
            for first in stride(from: 1, through: L, by: k) {
                let last = min(first + k - 1, L)
                let head = last < L ? 4 * B * n[last] : 0
                worst = max(worst, S(n, B, max(first - 1, 1), last - 1) + head)
            }
            return worst
        }
    }

    func runSteps(_ widths: [Int], batch: Int, mode: TrainingMode, optimizer: OptimizerKind) throws -> Trainer {
        let shape = try NetworkShape(widths: widths)
        let model = Model(shape: shape, seed: 3)
        let data = syntheticData(features: widths[0], classes: widths.last!, count: batch * 2 + 1, seed: 9)
        let plan = try MemoryPlan(shape: shape, batch: batch, mode: mode, optimizer: optimizer)
        let t = try Trainer(model: model, batch: batch, mode: mode, optimizer: optimizer,
                            options: TrainingOptions(learningRate: 0.01, seed: 5), budget: plan.peakWritable)
        for s in 0..<t.stageCount {
            t.beginStage(s)
            _ = try t.trainEpoch(data, epoch: 0)
        }
        t.endStage()
        return t
    }

    func testMeasuredEqualsPlannedForEveryModeShapeAndBatch() throws {
        for widths in Self.shapes {
            for batch in [1, 32] {
                for mode in modes(widths.count - 1) {
                    for opt in [OptimizerKind.sgd, .momentum(mu: 0.9)] {
                        let t = try runSteps(widths, batch: batch, mode: mode, optimizer: opt)
                        let what = "\(widths) B=\(batch) \(mode.name) \(opt.name)"
                        for c in MemoryCategory.allCases {
                            XCTAssertEqual(t.arena.peak[c], t.plan.bytes[c], "\(what) \(c.name)")
                        }
                        XCTAssertEqual(t.arena.peak.activationsStored, analyticStored(widths, batch, mode), what)
                        XCTAssertLessThanOrEqual(t.arena.peakLive, t.plan.peakWritable, what)
                        XCTAssertGreaterThan(t.macs.forward, 0, what)
                    }
                }
            }
        }
    }

    func testPlanFormulasByHand() throws {
        // 64-128-128-128-10, B = 32: every category of bp, local(1) and bp-checkpoint.
        let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
        let bp = try MemoryPlan(shape: shape, batch: 32, mode: .bp, optimizer: .sgd)
        XCTAssertEqual(bp.bytes.weightsTrainable, 4 * (8320 + 16512 + 16512 + 1290))
        XCTAssertEqual(bp.bytes.weightsFrozen, 0)
        XCTAssertEqual(bp.bytes.gradients, 0)
        XCTAssertEqual(bp.bytes.optimizer, 0)
        XCTAssertEqual(bp.bytes.input, 4 * 32 * 65)
        XCTAssertEqual(bp.bytes.activationsStored, 4 * 32 * 384)
        XCTAssertEqual(bp.bytes.activationsWorking, 4 * 32 * (2 * 128 + 1))
        // max(the fused update's int64 row of 128, the forward's packed block of 32 rows x 128 inputs)
        XCTAssertEqual(bp.bytes.scratch, max(8 * 128, 4 * 32 * 128))
        let local1 = try MemoryPlan(shape: shape, batch: 32, mode: .local(k: 1), optimizer: .sgd)
        XCTAssertEqual(local1.bytes.weightsTrainable, 4 * 1290)
        XCTAssertEqual(local1.bytes.weightsFrozen, 4 * (8320 + 16512 + 16512))
        XCTAssertEqual(local1.bytes.activationsStored, 4 * 32 * 128)
        XCTAssertEqual(local1.bytes.activationsWorking, 4 * 32 * 2 * 128)   // ping-pong pair dominates
        XCTAssertEqual(local1.readOnly, 4 * (8320 + 16512 + 16512))
        let ck = try MemoryPlan(shape: shape, batch: 32, mode: .bpCheckpoint, optimizer: .momentum(mu: 0.5))
        XCTAssertEqual(ck.bytes.activationsStored, 4 * 32 * (128 + 128))  // a_2 + one inner of a segment
        XCTAssertEqual(ck.bytes.gradients, 4 * 16512)
        XCTAssertEqual(ck.bytes.optimizer, bp.bytes.weightsTrainable)
        XCTAssertEqual(ck.bytes.scratch, 4 * 32 * 128)  // momentum: no fused row, only the forward's block
    }

    func testStoredActivationsShrinkByExactlyLOverKWithEqualWidths() throws {
        // With equal widths and the input counted, bp stores L tensors and local(k) stores k.
        let L = 8, k = 2, B = 4, w = 32
        let shape = try NetworkShape(widths: [Int](repeating: w, count: L + 1))
        let bp = try MemoryPlan(shape: shape, batch: B, mode: .bp, optimizer: .sgd)
        let lk = try MemoryPlan(shape: shape, batch: B, mode: .local(k: k), optimizer: .sgd)
        let withInput = { (p: MemoryPlan) in p.bytes.activationsStored + 4 * B * w }
        XCTAssertEqual(withInput(bp), L * 4 * B * w)
        XCTAssertEqual(lk.bytes.activationsStored, k * 4 * B * w)
        XCTAssertEqual(withInput(bp) / lk.bytes.activationsStored, L / k)
    }
}
