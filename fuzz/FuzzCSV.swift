// libFuzzer target for CSVParser.parse (untrusted CSV bytes).
// Built by fuzz/run.sh in the same module as the engine sources, so it can read
// Dataset's internal storage (every feature and label is touched, for ASan).
// Any thrown CSVError is fine; only crashes, timeouts and OOM are failures.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let d = try? CSVParser.parse(bytes, labelColumn: nil) { fuzzCheckDataset(d) }
    if let label = fuzzLabelColumn(bytes), let d = try? CSVParser.parse(bytes, labelColumn: label) {
        fuzzCheckDataset(d)
    }
    return 0
}

/// A label column derived from the first byte: a small index, an out-of-range
/// or negative index, a field of the first line (a header name, usually), or
/// raw bytes of the input as text.
func fuzzLabelColumn(_ b: [UInt8]) -> String? {
    guard let b0 = b.first else { return nil }
    switch b0 & 3 {
    case 0:
        return String(Int(b0 >> 2) % 8)
    case 1:
        let big: [Int] = [-1, 65536, Int(Int32.max), Int.max, Int.min, -65536, 1 << 40, 100]
        return String(big[Int(b0 >> 2) % big.count])
    case 2:
        // Field number (b0 >> 2) of the first line, trimmed like the parser trims.
        var lineEnd = 0
        while lineEnd < b.count && b[lineEnd] != 10 { lineEnd += 1 }
        if lineEnd > 0 && b[lineEnd - 1] == 13 { lineEnd -= 1 }
        var fields: [(Int, Int)] = []
        var start = 0
        for k in 0...lineEnd where k == lineEnd || b[k] == 44 {
            var a = start, z = k
            while a < z && (b[a] == 32 || b[a] == 9) { a += 1 }
            while z > a && (b[z - 1] == 32 || b[z - 1] == 9) { z -= 1 }
            fields.append((a, z))
            start = k + 1
        }
        let f = fields[Int(b0 >> 2) % fields.count]
        return String(decoding: b[f.0..<f.1], as: UTF8.self)
    default:
        let n = min(Int(b0 >> 2) % 12, b.count - 1)
        return String(decoding: b[1..<(1 + n)], as: UTF8.self)
    }
}

func fuzzCheckDataset(_ d: Dataset) {
    precondition(d.count >= 1 && d.featureCount >= 1, "empty data set accepted")
    precondition(d.classes >= 2 && d.classes <= 65536, "class count \(d.classes)")
    var acc: Int64 = 0
    for s in 0..<d.count {
        let l = d.label(s)
        precondition(l >= 0 && Int(l) < d.classes, "label \(l) outside 0..<\(d.classes)")
        for i in 0..<d.featureCount { acc &+= Int64(d.feature(s, i)) }
    }
    fuzzSink = acc
}

nonisolated(unsafe) var fuzzSink: Int64 = 0
