/// Decimal text of exact ratios in integer arithmetic, for programs without
/// floating-point printing (Embedded Swift has none): the board program prints
/// accuracies, losses and Q16.16 values with these.
///
/// ```swift
/// DecimalText.percent(347, 360)                            // "96.39%"
/// DecimalText.ratioEven(98304, over: 65536, digits: 0)     // "2" (1.5: the tie to even)
/// ```
public enum DecimalText {
    /// x / d with `digits` decimals, rounded half up (x >= 0, d >= 1): "96.45".
    public static func ratio(_ x: UInt64, over d: UInt64, digits: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let d = max(d, 1)
        let v = (2 * x * scale + d) / (2 * d)
        return join(v / scale, v % scale, digits: digits)
    }

    /// x / d with `digits` decimals, an exact tie rounded to even (as printf's "%.Nf"
    /// does with the exact binary value x / d when d is a power of two).
    public static func ratioEven(_ x: Int64, over d: UInt64, digits: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let mag = x.magnitude
        var q = mag * scale / d
        let r = mag * scale % d
        if 2 * r > d || (2 * r == d && q % 2 == 1) { q += 1 }
        return (x < 0 && q != 0 ? "-" : "") + join(q / scale, q % scale, digits: digits)
    }

    /// 100 * correct / samples with 2 decimals: "96.45%".
    public static func percent(_ correct: Int, _ samples: Int) -> String {
        ratio(100 * UInt64(correct), over: UInt64(max(samples, 1)), digits: 2) + "%"
    }

    /// A pass's mean loss, lossSum / 65536 / samples, with 4 decimals.
    public static func meanLoss(_ s: PassStats) -> String {
        (s.lossSum < 0 ? "-" : "") + ratio(s.lossSum.magnitude, over: 65536 * UInt64(max(s.samples, 1)), digits: 4)
    }

    /// `s` right-aligned in `width` characters.
    public static func padLeft(_ s: String, _ width: Int) -> String {
        var s = s
        while s.count < width { s = " " + s }
        return s
    }

    /// `s` left-aligned in `width` characters.
    public static func padRight(_ s: String, _ width: Int) -> String {
        var s = s
        while s.count < width { s += " " }
        return s
    }

    static func join(_ whole: UInt64, _ frac: UInt64, digits: Int) -> String {
        if digits == 0 { return "\(whole)" }
        var f = "\(frac)"
        while f.count < digits { f = "0" + f }
        return "\(whole).\(f)"
    }
}
