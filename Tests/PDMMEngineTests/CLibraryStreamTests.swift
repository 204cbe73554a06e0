import Foundation
import XCTest
@testable import PDMMEngine

/// The C library's streaming example (tools/board/examples/stream.c) replayed with the
/// engine as SwiftPM builds it: the same samples in stream order, the same settings, the
/// same weights hash as libpdmm.a (Embedded Swift) prints on x86-64, aarch64 and armv7
/// (tools/board/examples/run.sh checks the library's side against this constant).
final class CLibraryStreamTests: XCTestCase {
    static let streamHash = "0ff81040f83dabaa"

    func testStreamExampleSettingsGiveTheLibrarysHash() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Data/digits.csv").path
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 1797)
        let held = 297, batch = 16, trained = lines.count - held
        // stream_config.h: 64: dense 32, relu, dense 10; bp, sgd, lr 0.05, seed 1; features value * 4096.
        let shape = try NetworkShape(spec: NetworkSpec.parse("64: dense 32, relu, dense 10"))
        let model = Model(shape: shape, seed: 1)
        let t = try Trainer(model: model, batch: batch, mode: .bp, optimizer: .sgd,
                            options: TrainingOptions(learningRate: 0.05, seed: 1), budget: 1 << 20)
        t.beginStage(0)
        var x: [Int32] = [], y: [Int32] = []
        func flush() throws {
            _ = try x.withUnsafeBufferPointer { f in
                try y.withUnsafeBufferPointer { l in try t.step(features: f, labels: l) }
            }
            x.removeAll()
            y.removeAll()
        }
        for i in 0..<trained {
            let v = lines[i].split(separator: ",").map { Int32($0)! }
            x += v[0..<64].map { $0 * 4096 }
            y.append(v[64])
            if y.count == batch { try flush() }
        }
        if !y.isEmpty { try flush() }
        t.endStage()
        XCTAssertEqual(t.stepCount, 94)
        XCTAssertEqual(model.weightsHashHex, Self.streamHash)
    }
}
