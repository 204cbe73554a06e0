import PDMMHost
import XCTest
@testable import PDMMEngine

/// Training on real data: the built-in digits, seeded 80/20 split (seed 1),
/// network 64-128-128-128-10, batch 32, lr 0.05, 30 epochs.
final class DigitsAccuracyTests: XCTestCase {
    /// The float32 reference trained the same way (same initial weights, batch
    /// order, learning rate, plain SGD in float32), computed here, in this process
    /// (`swift run -c release pdmm reference` prints the same figure).
    func floatReferenceAccuracy() throws -> Double {
        let cfg = RunConfig()
        let (train, test, _) = Run.split(BuiltinData.digits(), seed: cfg.seed)
        let ref = FloatReference(model: Model(shape: try NetworkShape(widths: cfg.widths), seed: cfg.seed))
        ref.train(train, epochs: cfg.epochs, batch: cfg.batch, learningRate: Float(cfg.learningRate), seed: cfg.seed)
        return ref.accuracy(test)
    }

    func run(_ mode: TrainingMode) throws -> RunResult {
        var cfg = RunConfig()
        cfg.mode = mode
        let (train, test, scaling) = Run.split(BuiltinData.digits(), seed: cfg.seed)
        XCTAssertEqual(train.count, 1437)
        XCTAssertEqual(test.count, 360)
        return try runTraining(cfg, train: train, test: test, scaling: scaling).0
    }

    func testQ16BackpropWithinOnePointOfFloatReference() throws {
        let r = try run(.bp)
        let reference = try floatReferenceAccuracy()
        print("digits bp Q16.16 test accuracy \(r.testAccuracy) (float32 reference \(reference))")
        XCTAssertGreaterThan(reference, 0.9, "the float32 reference itself must learn digits")
        XCTAssertLessThanOrEqual(abs(r.testAccuracy - reference), 0.01)
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

    /// A small CNN on the digits as 1x8x8 images (per-channel scaling), bp, 20
    /// epochs: Q16.16 within 1 percentage point of the float32 reference trained
    /// from the same initial weights in the same order (computed here, not copied),
    /// and every other mode learns it with measured == planned.
    func testCNNQ16WithinOnePointOfFloatReference() throws {
        let data = BuiltinData.digits()
        let shape = try NetworkOptions.shape(net: "1x8x8: conv 8 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, flatten, dense 10",
                                             inputShape: nil, layers: nil, defaultWidths: [], features: 64, classes: 10)
        var cfg = RunConfig()
        cfg.network = shape
        cfg.epochs = 20
        let (train, test, scaling) = Run.split(data, seed: cfg.seed, channels: NetworkOptions.scalingChannels(shape))
        XCTAssertEqual(Set(scaling.mean).count, 1, "one mean for the one channel's 64 pixels")
        let ref = FloatReference(model: Model(shape: shape, seed: cfg.seed))
        ref.train(train, epochs: cfg.epochs, batch: cfg.batch, learningRate: Float(cfg.learningRate), seed: cfg.seed)
        let reference = ref.accuracy(test)
        let r = try runTraining(cfg, train: train, test: test, scaling: scaling).0
        print("digits CNN bp Q16.16 test accuracy \(r.testAccuracy) (float32 reference \(reference))")
        XCTAssertGreaterThan(reference, 0.95, "the float32 reference itself must learn digits")
        XCTAssertLessThanOrEqual(abs(r.testAccuracy - reference), 0.01)
        XCTAssertEqual(r.measured, r.plan.bytes)
        for mode in [TrainingMode.bpCheckpoint, .local(k: 2), .blockwise(k: 1)] {
            var c = cfg
            c.mode = mode
            c.epochs = 8
            let m = try runTraining(c, train: train, test: test, scaling: scaling).0
            print("digits CNN \(mode.name) Q16.16 test accuracy \(m.testAccuracy)")
            XCTAssertGreaterThan(m.testAccuracy, 0.85, mode.name)
            XCTAssertEqual(m.measured, m.plan.bytes, mode.name)
        }
    }
}
