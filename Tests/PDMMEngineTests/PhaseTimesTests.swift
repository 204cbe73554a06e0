import XCTest
@testable import PDMMEngine

/// The trainer's per-phase times (what `pdmm bench train` reports) with a clock that
/// advances by exactly 1 per reading: every timed region then counts 1 per call, so
/// the counts are the number of kernel calls per phase, known from the network.
final class PhaseTimesTests: XCTestCase {
    func testEachPhaseCountsItsLayerCalls() throws {
        let data = syntheticData(features: 8, classes: 3, count: 64, seed: 5)
        let widths = [8, 16, 12, 3]  // L = 3
        let t = try Trainer(model: Model(shape: try NetworkShape(widths: widths), seed: 1), batch: 16, mode: .bp,
                            optimizer: .sgd, options: TrainingOptions(), budget: 1 << 20)
        t.beginStage(0)
        _ = try t.trainBatch(data, epoch: 0, start: 0)
        XCTAssertEqual(t.phaseTimes, PhaseTimes(), "no clock: nothing is measured")
        var now: UInt64 = 0
        t.clock = { now += 1; return now }
        let steps = 3
        for s in 0..<steps { _ = try t.trainBatch(data, epoch: 0, start: 16 * s) }
        let p = t.phaseTimes
        XCTAssertEqual(p.forward, UInt64(3 * steps), "one forward call per layer")
        XCTAssertEqual(p.backwardData, UInt64(2 * 2 * steps), "layers 3 and 2: transposed GEMM + ReLU mask")
        XCTAssertEqual(p.update, UInt64(3 * steps), "one update per layer")
        XCTAssertEqual(p.loss, UInt64(steps))
        // A step's total spans every reading inside it: 2 per timed region, minus 1.
        XCTAssertEqual(p.total, UInt64(steps * (2 * (3 + 4 + 3 + 1) + 1)))
        XCTAssertEqual(p.other, p.total - p.forward - p.backwardData - p.update - p.loss)
        t.resetPhaseTimes()
        XCTAssertEqual(t.phaseTimes.total, 0)
    }
}
