import CMallocCounter
import XCTest
@testable import PDMMEngine

final class DeterminismAndAllocationTests: XCTestCase {
    func train(seed: UInt64, mode: TrainingMode, optimizer: OptimizerKind = .sgd) throws -> UInt64 {
        try trainSynthetic(widths: [12, 24, 24, 16, 3], count: 100, mode: mode, optimizer: optimizer,
                           learningRate: 0.05, seed: seed).model.weightsHash
    }

    func testSameSeedSameHashRunAfterRun() throws {
        for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 2), .blockwise(k: 2)] {
            let a = try train(seed: 42, mode: mode)
            let b = try train(seed: 42, mode: mode)
            XCTAssertEqual(a, b, mode.name)
            XCTAssertNotEqual(a, try train(seed: 43, mode: mode), mode.name)
        }
        XCTAssertEqual(try train(seed: 7, mode: .bp, optimizer: .momentum(mu: 0.9)),
                       try train(seed: 7, mode: .bp, optimizer: .momentum(mu: 0.9)))
    }

    /// bp and bp-checkpoint compute the same arithmetic in a different order of
    /// storage: their weights must be bit-identical.
    func testCheckpointingChangesMemoryNotResults() throws {
        XCTAssertEqual(try train(seed: 11, mode: .bp), try train(seed: 11, mode: .bpCheckpoint))
    }

    func testTrainingStepsAllocateNothingInSteadyState() throws {
        try requireMallocCounter()
        for mode in [TrainingMode.bp, .bpCheckpoint, .local(k: 1), .blockwise(k: 2)] {
            for opt in [OptimizerKind.sgd, .momentum(mu: 0.5)] {
                let shape = try NetworkShape(widths: [16, 32, 32, 32, 4])
                let model = Model(shape: shape, seed: 1)
                let data = syntheticData(features: 16, classes: 4, count: 320, seed: 2)
                let t = try Trainer(model: model, batch: 32, mode: mode, optimizer: opt,
                                    options: TrainingOptions(), budget: 1 << 20)
                t.beginStage(t.stageCount - 1)
                try assertStepsAllocateNothing(t, data, epochs: 10, "\(mode.name) \(opt.name)")  // 100 steps
            }
        }
    }

    func testInterposerCountsAllocations() throws {
        try requireMallocCounter()
        let before = malloc_counter_calls()
        let n = 1000 + Int(before % 7)  // a run-time size: the array cannot live on the stack
        var a = [Int](repeating: 1, count: n)
        let after = malloc_counter_calls()
        a[n - 1] = n
        XCTAssertGreaterThan(after - before, 0, "the counter did not see a \(8 * n)-byte array's allocation")
        // The array is the one counted and is used: its n - 1 ones and the n written last.
        XCTAssertEqual(a.reduce(0, +), 2 * n - 1)
    }
}

extension XCTestCase {
    /// One warm-up epoch of `t` (its stage begun) on `data`, then `epochs` epochs and an
    /// evaluation pass with no heap allocation (the malloc counter must be active).
    func assertStepsAllocateNothing(_ t: Trainer, _ data: Dataset, epochs: Int, _ what: String,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        _ = try t.trainEpoch(data, epoch: 0)  // warm-up
        let before = malloc_counter_calls()
        for e in 1...epochs { _ = try t.trainEpoch(data, epoch: e) }
        _ = try t.evaluate(data)
        let after = malloc_counter_calls()
        XCTAssertEqual(after - before, 0, "\(what): heap allocations in \(epochs) epochs", file: file, line: line)
    }

    /// Guards a heap-counting test. On Linux with glibc every build counts (the
    /// malloc interposer, or the allocator hooks of AddressSanitizer and
    /// ThreadSanitizer), so an inactive counter there is a failure, never a
    /// silent skip; elsewhere (no interposer) the test is skipped.
    func requireMallocCounter(file: StaticString = #filePath, line: UInt = #line) throws {
        #if os(Linux) && canImport(Glibc)
        XCTAssertEqual(malloc_counter_active(), 1, "the malloc counter is inactive in this Linux build",
                       file: file, line: line)
        #endif
        try XCTSkipUnless(malloc_counter_active() == 1, "malloc counter inactive (no interposer on this platform)",
                          file: file, line: line)
    }

    /// One round of the predictor's passes on `data`: evaluate and deviations of `a`, the dual decision
    /// of `a` (stable) and `b` (error-aware) with lambda_max 0.5.
    func predictorPasses(_ p: Predictor, _ a: Model, _ b: Model, _ data: Dataset) throws {
        _ = try p.evaluate(a, data)
        _ = try p.deviations(a, data)
        _ = try p.dualDecision(stable: a, errorAware: b, lambdaMax: 0.5, data)
    }

    /// `rounds` rounds of `predictorPasses` (after the caller's warm-up and requireMallocCounter) allocate
    /// nothing on the heap, and the predictor's arena peaks at exactly its plan.
    func assertPredictorPassesAllocateNothing(_ p: Predictor, _ a: Model, _ b: Model, _ data: Dataset, rounds: Int,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        let before = malloc_counter_calls()
        for _ in 0..<rounds { try predictorPasses(p, a, b, data) }
        XCTAssertEqual(malloc_counter_calls() - before, 0, file: file, line: line)
        XCTAssertEqual(p.arena.peak, p.planned, file: file, line: line)
    }
}
