import Testing
@testable import PDMMEngine

/// Swift Testing: small pure helpers the reports and checkpoints rely on.
struct FormatTests {
    @Test func hexIsSixteenLowercaseDigits() {
        #expect(Hex.format(0) == "0000000000000000")
        #expect(Hex.format(0x3a34_2e63_49c4_f03f) == "3a342e6349c4f03f")
        #expect(Hex.format(UInt64.max) == "ffffffffffffffff")
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        // The CRC-32/IEEE check value of "123456789".
        let b = Array("123456789".utf8)
        #expect(CRC32.checksum(b, count: b.count) == 0xCBF4_3926)
    }

    @Test(arguments: ["bp", "bp-checkpoint", "local", "blockwise"])
    func modeNamesRoundTrip(name: String) {
        let m = TrainingMode(name: name, k: 2)
        #expect(m != nil)
        #expect(m!.name.hasPrefix(name))
    }

    @Test func shuffleIsAPermutation() {
        for n in [1, 2, 7, 64, 1437] {
            var seen = [Bool](repeating: false, count: n)
            for i in 0..<n { seen[Shuffle.index(i, n, seed: 9, epoch: 3)] = true }
            #expect(seen.allSatisfy { $0 })
        }
    }
}
