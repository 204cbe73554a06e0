import XCTest
@testable import PDMMEngine

final class ErrorTests: XCTestCase {
    func expect(_ expected: EngineError, _ message: String, _ body: () throws -> Void,
                file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error thrown, expected \(message)", file: file, line: line)
        } catch let error as EngineError {
            XCTAssertEqual(error, expected, file: file, line: line)
            XCTAssertEqual(error.message, message, file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testShapeErrors() {
        expect(.zeroWidth(index: 1, value: 0), "width 1 is 0: every layer needs at least one unit") {
            _ = try NetworkShape(widths: [64, 0, 10])
        }
        expect(.tooFewWidths(count: 1), "a network needs at least 2 widths (input and classes), got 1") {
            _ = try NetworkShape(widths: [64])
        }
        expect(.zeroWidth(index: 0, value: -3), "width 0 is -3: every layer needs at least one unit") {
            _ = try NetworkShape(widths: [-3, 10])
        }
    }

    func testModeAndBatchErrors() throws {
        let shape = try NetworkShape(widths: [8, 16, 16, 4])
        expect(.invalidK(k: 0, layers: 3), "k must be between 1 and L = 3, got 0") {
            _ = try MemoryPlan(shape: shape, batch: 4, mode: .local(k: 0), optimizer: .sgd)
        }
        expect(.invalidK(k: 4, layers: 3), "k must be between 1 and L = 3, got 4") {
            _ = try MemoryPlan(shape: shape, batch: 4, mode: .blockwise(k: 4), optimizer: .sgd)
        }
        expect(.batchZero(value: 0), "batch size must be at least 1, got 0") {
            _ = try MemoryPlan(shape: shape, batch: 0, mode: .bp, optimizer: .sgd)
        }
        expect(.invalidParameter(name: "momentum", reason: "must satisfy 0 <= mu < 1"),
               "momentum: must satisfy 0 <= mu < 1") {
            _ = try MemoryPlan(shape: shape, batch: 4, mode: .bp, optimizer: .momentum(mu: 1.0))
        }
    }

    func testBudgetTooSmallListsEveryCategoryAndShortfall() throws {
        let shape = try NetworkShape(widths: [8, 16, 4])
        let plan = try MemoryPlan(shape: shape, batch: 2, mode: .bp, optimizer: .sgd)
        // trainable 4*(144+68)=848, input 4*2*9=72, stored 4*2*16=128, working 4*2*(2*16+1)=264, scratch 8*16=128
        XCTAssertEqual(plan.peakWritable, 848 + 72 + 128 + 264 + 128)
        let model = Model(shape: shape, seed: 1)
        expect(.budgetExceeded(planned: plan.bytes, budget: 1000),
               "plan needs 1440 writable bytes but the budget is 1000 bytes (short by 440 bytes): weights.trainable=848 input=72 activations.stored=128 activations.working=264 scratch=128") {
            _ = try Trainer(model: model, batch: 2, mode: .bp, optimizer: .sgd, options: TrainingOptions(), budget: 1000)
        }
        XCTAssertNoThrow(try Trainer(model: model, batch: 2, mode: .bp, optimizer: .sgd,
                                     options: TrainingOptions(), budget: 1440))
    }

    func testPredictorBudgetNamesItsOwnCategories() throws {
        let shape = try NetworkShape(widths: [8, 16, 4])
        // input 4*2*9 = 72, working 4*2*(2*16 + 0 + 1) = 264; frozen weights are not writable
        expect(.budgetExceeded(planned: {
            var b = ByteCounts()
            b.input = 72
            b.activationsWorking = 264
            b.weightsFrozen = 4 * (8 * 16 + 16 + 16 * 4 + 4)
            return b
        }(), budget: 300),
               "plan needs 336 writable bytes but the budget is 300 bytes (short by 36 bytes): input=72 activations.working=264") {
            _ = try Predictor(shape: shape, batch: 2, dual: false, perSampleCount: 0, budget: 300)
        }
    }

    func testLabelsOutOfRange() throws {
        expect(.labelOutOfRange(sample: 1, label: 3, classes: 3), "sample 1 has label 3, outside 0..<3") {
            _ = try Dataset(featureCount: 1, classes: 3, features: [0, 0], labels: [0, 3])
        }
        expect(.labelOutOfRange(sample: 0, label: -1, classes: 3), "sample 0 has label -1, outside 0..<3") {
            _ = try Dataset(featureCount: 1, classes: 3, features: [0], labels: [-1])
        }
        // A data set with more classes than the network's output.
        let model = Model(shape: try NetworkShape(widths: [1, 4, 2]), seed: 1)
        let t = try Trainer(model: model, batch: 2, mode: .bp, optimizer: .sgd, options: TrainingOptions(), budget: 1 << 16)
        let d = try Dataset(featureCount: 1, classes: 3, features: [0, 0, 0], labels: [0, 1, 2])
        t.beginStage(0)
        expect(.labelOutOfRange(sample: 2, label: 2, classes: 2), "sample 2 has label 2, outside 0..<2") {
            _ = try t.trainEpoch(d, epoch: 0)
        }
        let wide = try Dataset(featureCount: 2, classes: 2, features: [0, 0], labels: [0])
        expect(.featureMismatch(expected: 1, got: 2), "the network's input width is 1 but the data has 2 features") {
            _ = try t.evaluate(wide)
        }
    }

    func testLearningRateRange() throws {
        let model = Model(shape: try NetworkShape(widths: [2, 2]), seed: 1)
        expect(.invalidParameter(name: "learning rate", reason: "must satisfy 0 < lr < 1"),
               "learning rate: must satisfy 0 < lr < 1") {
            _ = try Trainer(model: model, batch: 1, mode: .bp, optimizer: .sgd,
                            options: TrainingOptions(learningRate: 0, seed: 1), budget: 1 << 16)
        }
    }
}
