// TestRandom.swift -- a tiny seeded generator shared by the CFixed tests.
// SplitMix64 (Steele, Lea, Flood 2014): deterministic on every platform.

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 32 uniformly random bits.
    mutating func nextU32() -> UInt32 { UInt32(truncatingIfNeeded: next() >> 32) }

    /// A uniformly random Int32 over the whole range (a random q16_t).
    mutating func nextI32() -> Int32 { Int32(bitPattern: nextU32()) }

    /// A uniformly random Int32 in lo...hi (inclusive), without modulo bias worth caring about.
    mutating func nextI32(in range: ClosedRange<Int32>) -> Int32 {
        let span = UInt64(Int64(range.upperBound) - Int64(range.lowerBound) + 1)
        let r = UInt64((UInt128(next()) * UInt128(span)) >> 64)
        return Int32(Int64(range.lowerBound) + Int64(r))
    }

    /// A uniformly random Double in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
