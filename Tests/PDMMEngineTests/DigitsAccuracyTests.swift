import PDMMHost
import XCTest
@testable import PDMMEngine

/// Training on real data: the built-in digits, seeded 80/20 split (seed 1),
/// network 64-128-128-128-10, batch 32, lr 0.05, 30 epochs.
final class DigitsAccuracyTests: XCTestCase {
    /// The float32 reference trained the same way (same initial weights, batch
    /// order, learning rate, plain SGD in float32): `swift run -c release pdmm reference`
    /// prints "test accuracy 97.50% (360 test samples)".
    static let floatReferenceAccuracy = 0.9750

    func run(_ mode: TrainingMode) throws -> RunResult {
        var cfg = RunConfig()
        cfg.mode = mode
        let (train, test, scaling) = prepareSplit(BuiltinData.digits(), seed: cfg.seed)
        XCTAssertEqual(train.count, 1437)
        XCTAssertEqual(test.count, 360)
        return try runTraining(cfg, train: train, test: test, scaling: scaling).0
    }

    func testQ16BackpropWithinOnePointOfFloatReference() throws {
        let r = try run(.bp)
        print("digits bp Q16.16 test accuracy \(r.testAccuracy) (float32 reference \(Self.floatReferenceAccuracy))")
        XCTAssertLessThanOrEqual(abs(r.testAccuracy - Self.floatReferenceAccuracy), 0.01)
        XCTAssertEqual(r.measured, r.plan.bytes)
        XCTAssertEqual(r.saturations, 0)
        // The README's figure, and what the aarch64/armv7 board builds must reproduce.
        XCTAssertEqual(Hex.format(r.weightsHash), "3a342e6349c4f03f")
    }

    func testLocalAndBlockwiseTrainAndReportAccuracy() throws {
        // Accuracies are reported, not targets; the floors only catch a broken mode
        // (chance is 10 %).
        for (mode, floor) in [(TrainingMode.local(k: 2), 0.85), (.blockwise(k: 2), 0.85)] {
            let r = try run(mode)
            print("digits \(mode.name) Q16.16 test accuracy \(r.testAccuracy)")
            XCTAssertGreaterThan(r.testAccuracy, floor, mode.name)
            XCTAssertEqual(r.measured, r.plan.bytes, mode.name)
        }
    }
}
