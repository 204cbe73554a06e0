import CFixed
import XCTest
@testable import PDMMEngine

final class RiemannianTests: XCTestCase {
    func trainedHash(_ opt: OptimizerKind, mode: TrainingMode = .bp, seed: UInt64 = 5) throws -> (UInt64, Trainer) {
        let t = try trainSynthetic(widths: [10, 20, 16, 4], count: 90, mode: mode, optimizer: opt,
                                   learningRate: 0.1, seed: seed)
        return (t.model.weightsHash, t)
    }

    func testAlphaZeroEqualsPlainSGDBitForBit() throws {
        for mode in [TrainingMode.bp, .local(k: 2), .blockwise(k: 1), .bpCheckpoint] {
            let sgd = try trainedHash(.sgd, mode: mode).0
            XCTAssertEqual(try trainedHash(.riemannian(alpha: 0, rho: 0.9, phi: .gradSquared), mode: mode).0, sgd, mode.name)
            XCTAssertEqual(try trainedHash(.riemannian(alpha: 0, rho: 0.9, phi: .weightMagnitude), mode: mode).0, sgd, mode.name)
            XCTAssertNotEqual(try trainedHash(.riemannian(alpha: 4, rho: 0.9, phi: .gradSquared), mode: mode).0, sgd, mode.name)
        }
    }

    func testStateIsCountedInTheArena() throws {
        let (_, t) = try trainedHash(.riemannian(alpha: 1, rho: 0.9, phi: .gradSquared))
        XCTAssertEqual(t.plan.bytes.optimizer, t.plan.bytes.weightsTrainable)
        XCTAssertEqual(t.arena.peak, t.plan.bytes)
        let (_, t2) = try trainedHash(.riemannian(alpha: 1, rho: 0.9, phi: .weightMagnitude))
        XCTAssertEqual(t2.plan.bytes.optimizer, 0)
        XCTAssertEqual(t2.arena.peak, t2.plan.bytes)
    }

    /// One weight by hand: s = 2.0 (Q32.32), lr = 0.25, alpha = 1, phi = |w| = 1:
    /// E = 2, u = 0.5, w = 1 - 0.25 = 0.75 exactly.
    func testKernelByHand() {
        var w: [Int32] = [1 << 16]
        var bias: [Int32] = [0]
        var scratch = [Int64](repeating: 0, count: 1)
        let dY: [Int32] = [2 << 16], x: [Int32] = [1 << 16]
        var sat: UInt64 = 0
        let st = q16_update_outer_riemannian_sr(&w, &bias, nil, &scratch, dY, x, 1 << 30, 0, 1 << 16, 0,
                                                Q16_PHI_WEIGHT_ABS, 1, 1, 1, 1, 0, &sat)
        XCTAssertEqual(st, Q16_OK)
        XCTAssertEqual(w[0], 3 << 14)
        XCTAssertEqual(bias[0], -(1 << 15))  // phi = |b| = 0, E = 1: b = 0 - 0.25 * 2
        XCTAssertEqual(sat, 0)
        // EMA of g^2 needs phi state
        XCTAssertEqual(q16_update_outer_riemannian_sr(&w, &bias, nil, &scratch, dY, x, 1 << 30, 0, 1 << 16, 0,
                                                      Q16_PHI_GRAD_SQUARED, 1, 1, 1, 1, 0, &sat), Q16_ERR_NULL)
    }

    func testInvalidParametersAreRefused() throws {
        let shape = try NetworkShape(widths: [4, 2])
        XCTAssertThrowsError(try MemoryPlan(shape: shape, batch: 1, mode: .bp,
                                            optimizer: .riemannian(alpha: -1, rho: 0.5, phi: .gradSquared))) { e in
            XCTAssertEqual((e as? EngineError)?.message, "riemannian alpha: must satisfy 0 <= alpha < 32768")
        }
        XCTAssertThrowsError(try MemoryPlan(shape: shape, batch: 1, mode: .bp,
                                            optimizer: .riemannian(alpha: 1, rho: 1, phi: .gradSquared))) { e in
            XCTAssertEqual((e as? EngineError)?.message, "riemannian rho: must satisfy 0 <= rho < 1")
        }
    }
}
