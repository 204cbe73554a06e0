import XCTest
@testable import PDMMEngine
import PDMMHost

/// `Model(shape:memory:frozen:frozenLayers:seed:)`: the C library's model over caller memory.
final class ModelCallerMemoryTests: XCTestCase {
    func testCallerMemoryModelEqualsTheOwnedModelAndTrainsIdentically() throws {
        let shape = try NetworkShape(widths: [64, 32, 10])
        let owned = Model(shape: shape, seed: 7)
        let words = UnsafeMutablePointer<Int32>.allocate(capacity: owned.parameterCount)
        defer { words.deallocate() }
        let caller = Model(shape: shape, memory: words, frozen: nil, frozenLayers: 0, seed: 7)
        XCTAssertEqual(caller.weightsHash, owned.weightsHash)
        XCTAssertEqual(words[5], owned[5])

        let data = SyntheticData.make(features: 64, classes: 10, count: 64, seed: 3)
        var hashes: [UInt64] = []
        for m in [owned, caller] {
            let t = try Trainer(model: m, batch: 16, mode: .local(k: 1), optimizer: .sgd,
                                options: TrainingOptions(), budget: 1 << 20)
            t.beginStage(0)
            _ = try t.trainEpoch(data, epoch: 0)
            t.endStage()
            hashes.append(m.weightsHash)
        }
        XCTAssertEqual(hashes[0], hashes[1])
        XCTAssertNotEqual(hashes[0], Model(shape: shape, seed: 7).weightsHash)
    }

    func testFrozenLayersAreReadInPlaceAndNeverWritten() throws {
        let shape = try NetworkShape(widths: [64, 32, 10])
        let source = Model(shape: shape, seed: 11)
        let image = source.words()
        let frozenWords = shape.parameterCount(1)
        XCTAssertEqual(Model.imageWords(shape, frozenLayers: 1), shape.parameterCount(2))
        let trainable = UnsafeMutablePointer<Int32>.allocate(capacity: Model.imageWords(shape, frozenLayers: 1))
        defer { trainable.deallocate() }
        try image.withUnsafeBufferPointer { img in
            let m = Model(shape: shape, memory: trainable, frozen: img.baseAddress!, frozenLayers: 1, seed: 99)
            XCTAssertEqual(m.weightsHash, source.weightsHash)  // copied from the image, not from the seed
            XCTAssertEqual(trainable[0], image[frozenWords])  // layer 2 starts the writable words
            XCTAssertEqual(m.layer(1).base, UnsafeMutablePointer(mutating: img.baseAddress!))  // in place
            let t = try Trainer(model: m, batch: 16, mode: .local(k: 1), optimizer: .sgd,
                                options: TrainingOptions(), budget: 1 << 20)
            t.beginStage(0)
            _ = try t.trainEpoch(SyntheticData.make(features: 64, classes: 10, count: 64, seed: 3), epoch: 0)
            t.endStage()
            XCTAssertNotEqual(m.weightsHash, source.weightsHash)
            XCTAssertFalse(m.load(Array(repeating: 0, count: m.parameterCount)))  // frozen words differ: refused
        }
        XCTAssertEqual(image, source.words())  // the read-only image is unchanged
    }
}
