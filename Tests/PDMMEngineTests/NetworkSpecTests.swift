import XCTest
@testable import PDMMEngine

/// Issue 11, item 2: the text form of a network, its shapes, and its errors.
final class NetworkSpecTests: XCTestCase {
    func testShapesOfTheIssuesExample() throws {
        let net = try NetworkSpec.parse(
            "1x28x28: conv 8 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, maxpool 2x2, flatten, dense 64, relu, dense 10")
        XCTAssertEqual(net.input, TensorShape(channels: 1, height: 28, width: 28))
        XCTAssertEqual(net.shapes.map(\.description),
                       ["8x28x28", "8x28x28", "8x14x14", "16x14x14", "16x14x14", "16x7x7", "784", "64", "64", "10"])
        XCTAssertEqual(net.classCount, 10)
        XCTAssertEqual(net.layers.filter(\.isTrainable).count, 4)
        XCTAssertEqual(try NetworkSpec.parse(net.description), net, "the text form round-trips")
    }

    func testOneDimensionalStridesAndValidPadding() throws {
        let net = try NetworkSpec.parse("6x1x100: conv 16 1x5 stride 2 valid, relu, avgpool 1x2, conv 8 1x3, flatten, dense 4")
        // (100 - 5) / 2 + 1 = 48; pool 24; same conv keeps 24
        XCTAssertEqual(net.shapes.map(\.description), ["16x1x48", "16x1x48", "16x1x24", "8x1x24", "192", "4"])
        let same = try NetworkSpec.parse("3x7x7: conv 4 3x3 stride 2 same, flatten, dense 2")
        XCTAssertEqual(same.shapes[0].description, "4x4x4")  // ceil(7 / 2)
        XCTAssertEqual(try NetworkSpec.parse("64: Dense 10").layers, [.dense(units: 10)], "keywords ignore case")
    }

    func testDenseStackShorthandEqualsItsText() throws {
        let stack = try NetworkSpec.denseStack(widths: [64, 128, 10])
        XCTAssertEqual(stack, try NetworkSpec.parse("64: dense 128, relu, dense 10"))
        XCTAssertEqual(stack.description, "64: dense 128, relu, dense 10")
    }

    func testMalformedSpecsNameTheirMistake() {
        let cases: [(String, String)] = [
            ("", "column 1: expected the input shape CxHxW (1-D data: Cx1xW) or a feature count, found 'end of text'"),
            ("1x28: dense 10", "column 1: expected the input shape CxHxW (1-D data: Cx1xW) or a feature count, found '1x28'"),
            ("1x28x28 conv 8 3x3", "column 9: expected ':' after the input shape, found 'conv'"),
            ("1x28x28: conv 8 3, flatten, dense 10", "column 17: expected a kernel size like 3x3, found '3'"),
            ("1x28x28: conv 8 3x, dense 10", "column 19: expected a number after 'x'"),
            ("1x28x28: conv eight 3x3", "column 15: expected the number of filters, found 'eight'"),
            ("1x28x28: conv 8 3x3 sideways, dense 10", "column 21: expected 'stride N', 'same', 'valid' or ',' after conv, found 'sideways'"),
            ("1x28x28: pool 2x2, dense 10", "column 10: unknown layer 'pool' (expected dense, conv, maxpool, avgpool, relu, flatten)"),
            ("64: dense 10;", "column 13: unexpected character ';'"),
            ("64: dense 10,", "column 14: expected a layer (dense, conv, maxpool, avgpool, relu, flatten), found 'end of text'"),
            ("64: dense 0", "column 11: the number of units must be at least 1, found 0"),
            ("64: dense 10 relu", "column 14: expected ',' between layers, found 'relu'"),
            ("1x28x28: conv 8 3x3, dense 10", "layer 2 (dense 10): needs a flat input but gets 8x28x28: add flatten before it"),
            ("1x4x4: maxpool 8x8, flatten, dense 2", "layer 1 (maxpool 8x8): window 8x8 is larger than its 1x4x4 input"),
            ("1x4x4: conv 2 5x5 valid, flatten, dense 2", "layer 1 (conv 2 5x5 valid): kernel 5x5 is larger than its 1x4x4 input (valid padding)"),
            ("1x4x4: conv 2 3x3, flatten", "the last layer must be dense (its units are the classes), not flatten"),
            ("64: dense 70000", "layer 1 (dense 70000): units must lie in 1...65535"),
            ("1x8x8: conv 2 3x3 stride 0, flatten, dense 2", "column 26: the stride must be at least 1, found 0"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try NetworkSpec.parse(text), text) { e in
                XCTAssertEqual((e as? NetworkSpecError)?.message, message, text)
            }
        }
        print("NetworkSpecTests: \(cases.count) malformed specs refused with their messages")
    }
}
