/// Why a CSV text cannot become a data set; every case says where.
public enum CSVError: Error, Equatable {
    case empty
    case headerOnly
    case tooFewColumns(count: Int)
    case ragged(line: Int, expected: Int, found: Int)
    case notANumber(line: Int, column: Int, text: String)
    case notFinite(line: Int, column: Int, text: String)
    case badLabel(line: Int, column: Int, text: String)
    case singleClass(label: Int)
    case saturated(count: Int, first: Int, column: Int)
    case labelColumn(String)
    case tooLarge(bytes: Int)
    case unreadable

    public var message: String {
        switch self {
        case .empty: return "empty file (no data rows)"
        case .headerOnly: return "header only, no data rows"
        case .tooFewColumns(let c): return "need at least 2 columns (features and a label), got \(c)"
        case .ragged(let l, let e, let f): return "line \(l): expected \(e) fields, found \(f)"
        case .notANumber(let l, let c, let t): return "line \(l), column \(c): '\(t)' is not a number"
        case .notFinite(let l, let c, let t): return "line \(l), column \(c): '\(t)' is not a finite number (NaN or infinity)"
        case .badLabel(let l, let c, let t): return "line \(l), column \(c): label '\(t)' is not a class index 0...65535"
        case .singleClass(let label): return "only one class (\(label)) in the data: nothing to learn"
        case .saturated(let n, let l, let c):
            return "\(n) feature values lie outside the Q16.16 range [-32768, 32768) (first at line \(l), column \(c))"
        case .labelColumn(let s): return s
        case .tooLarge(let b): return "file too large (\(b) bytes)"
        case .unreadable: return "read error"
        }
    }
}

/// A CSV parser over bytes, Embedded-Swift compatible (no Foundation): one
/// sample per line, comma-separated numbers, an integer class label column
/// (default: the last), an optional header line. A leading UTF-8 byte-order
/// mark is skipped. Line 1 is a header exactly when its label field (the
/// field of the label column: the given 0-based index, else the last field)
/// is not a number; when the label column is given by name, line 1 must be
/// the header. Any other line 1 is data, so no line is ever dropped silently:
/// a header found is reported in `Dataset.header`. Blank lines and a trailing
/// CR are ignored. Numbers: optional sign, digits, optional fraction,
/// optional exponent; converted to Q16.16 by rounding to nearest.
///
/// ```swift
/// let d = try CSVParser.parse(Array("1,2,0\n3,4,1\n".utf8))
/// d.count   // 2
/// d.header  // nil
/// ```
public enum CSVParser {
    /// `labelColumn`: a 0-based index as text, a header name, or nil for the last column.
    /// `verifiedColumn` (same forms): a 0/1 column that becomes `Dataset.verified`
    /// instead of a feature (PDMM's high-certainty flag).
    public static func parse(_ bytes: [UInt8], labelColumn: String? = nil,
                             verifiedColumn: String? = nil) throws(CSVError) -> Dataset {
        var position = 0
        return try parse(labelColumn: labelColumn, verifiedColumn: verifiedColumn, rewind: {
            position = 0
            return true
        }, read: { buffer in
            let n = min(buffer.count, bytes.count - position)
            for k in 0..<n { buffer[k] = bytes[position + k] }
            position += n
            return n
        })
    }

    /// The same parse over a stream read in chunks, in two passes: the first counts
    /// the rows and reads line 1 (header, columns), the second converts each line
    /// straight into one Q16.16 array of rows x features (and the labels), so the
    /// heap holds the data set's own size plus one chunk and one line.
    /// `rewind` starts a pass (false: the stream cannot be read); `read` fills
    /// the buffer and returns the bytes read (0 at the end, negative on an error).
    public static func parse(labelColumn: String? = nil, verifiedColumn: String? = nil, chunkBytes: Int = 1 << 16,
                             rewind: () -> Bool,
                             read: (UnsafeMutableBufferPointer<UInt8>) -> Int) throws(CSVError) -> Dataset {
        var chunk = [UInt8](repeating: 0, count: max(chunkBytes, 16))
        var line: [UInt8] = []
        // Pass 1: rows and line 1.
        var rowCount = 0
        var first: [UInt8] = []
        if !rewind() { throw .unreadable }
        try forEachLine(&chunk, &line, read) { (_, l) throws(CSVError) in
            if rowCount == 0 { first = l }
            rowCount += 1
        }
        if rowCount == 0 { throw .empty }
        var header: [String]? = nil
        let firstFields = fields(first, 0, first.count)
        if isHeader(first, firstFields, labelColumn: labelColumn) {
            header = firstFields.map { text(first, $0.0, $0.1) }
            rowCount -= 1
        }
        if rowCount == 0 { throw .headerOnly }
        let columns = header?.count ?? firstFields.count
        if columns < 2 { throw .tooFewColumns(count: columns) }
        var labelIndex = columns - 1
        if let lc = labelColumn { labelIndex = try column(lc, header, columns, what: "label") }
        var flagIndex = -1
        if let vc = verifiedColumn {
            flagIndex = try column(vc, header, columns, what: "verified")
            if flagIndex == labelIndex { throw .labelColumn("the verified column cannot be the label column") }
            if columns < 3 { throw .tooFewColumns(count: columns - 1) }
        }
        // Pass 2: the values, straight into the data set's arrays.
        let featureCount = columns - (flagIndex >= 0 ? 2 : 1)
        let features = UnsafeMutablePointer<Int32>.allocate(capacity: rowCount * featureCount)
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: rowCount)
        var owned = true
        defer {
            if owned {
                features.deallocate()
                labels.deallocate()
            }
        }
        var flags: [Bool] = []
        if flagIndex >= 0 { flags.reserveCapacity(rowCount) }
        var row = header == nil ? 0 : -1, nf = 0
        var saturated = 0, firstSat = (0, 0)
        var maxLabel: Int32 = 0, minLabel: Int32 = Int32.max
        if !rewind() { throw .unreadable }
        try forEachLine(&chunk, &line, read) { (ln, b) throws(CSVError) in
            defer { row += 1 }
            if row < 0 { return }  // the header
            if row >= rowCount { throw .unreadable }  // the file grew between the passes
            let fs = fields(b, 0, b.count)
            if fs.count != columns { throw .ragged(line: ln, expected: columns, found: fs.count) }
            for (c, f) in fs.enumerated() {
                guard let v = number(b, f.0, f.1) else {
                    if isNonFinite(b, f.0, f.1) { throw .notFinite(line: ln, column: c + 1, text: text(b, f.0, f.1)) }
                    throw .notANumber(line: ln, column: c + 1, text: text(b, f.0, f.1))
                }
                if !v.isFinite { throw .notFinite(line: ln, column: c + 1, text: text(b, f.0, f.1)) }
                if c == flagIndex {
                    if v != 0 && v != 1 {
                        throw .labelColumn("line \(ln), column \(c + 1): verified flag '\(text(b, f.0, f.1))' is not 0 or 1")
                    }
                    flags.append(v == 1)
                } else if c == labelIndex {
                    if !(v >= 0 && v < 65536) || v != v.rounded(.towardZero) {
                        throw .badLabel(line: ln, column: c + 1, text: text(b, f.0, f.1))
                    }
                    let l = Int32(v)
                    labels[row] = l
                    maxLabel = max(maxLabel, l)
                    minLabel = min(minLabel, l)
                } else {
                    let q = (v * 65536).rounded(.toNearestOrAwayFromZero)
                    if !(q >= -2_147_483_648 && q <= 2_147_483_647) {
                        if saturated == 0 { firstSat = (ln, c + 1) }
                        saturated += 1
                        features[nf] = q > 0 ? Int32.max : Int32.min
                    } else {
                        features[nf] = Int32(q)
                    }
                    nf += 1
                }
            }
        }
        if row != rowCount { throw .unreadable }  // the file shrank between the passes
        if minLabel == maxLabel { throw .singleClass(label: Int(minLabel)) }
        if saturated > 0 { throw .saturated(count: saturated, first: firstSat.0, column: firstSat.1) }
        owned = false
        let d = Dataset(count: rowCount, featureCount: featureCount, classes: Int(maxLabel) + 1,
                        adopting: features, labels: labels)
        if flagIndex >= 0 { d.verified = flags }
        d.header = header
        return d
    }

    /// Calls `body` with (line number, bytes) of every non-blank line of the stream
    /// (a trailing CR dropped; a leading UTF-8 byte-order mark EF BB BF skipped, as
    /// spreadsheet exports write it). Lines are counted from 1, blank ones included.
    static func forEachLine(_ chunk: inout [UInt8], _ line: inout [UInt8],
                            _ read: (UnsafeMutableBufferPointer<UInt8>) -> Int,
                            _ body: (Int, [UInt8]) throws(CSVError) -> Void) throws(CSVError) {
        var lineNo = 0
        line.removeAll(keepingCapacity: true)
        func finish() throws(CSVError) {
            lineNo += 1
            if lineNo == 1, line.count >= 3, line[0] == 0xEF, line[1] == 0xBB, line[2] == 0xBF { line.removeFirst(3) }
            if let l = line.last, l == 13 { line.removeLast() }
            var blank = true
            for c in line where c != 32 && c != 9 { blank = false; break }
            if !blank { try body(lineNo, line) }
            line.removeAll(keepingCapacity: true)
        }
        while true {
            let n = chunk.withUnsafeMutableBufferPointer { read($0) }
            if n < 0 { throw .unreadable }
            if n == 0 { break }
            for k in 0..<n {
                let c = chunk[k]
                if c == 10 { try finish() } else { line.append(c) }
            }
        }
        if !line.isEmpty { try finish() }
    }

    /// The note a program prints when line 1 of `file` was taken as a header
    /// (`Dataset.header`): "line 1 of FILE taken as a header (x1, x2, ..., label)",
    /// at most 6 names (the first 5, "...", the last).
    public static func headerNote(_ header: [String], file: String) -> String {
        var names = ""
        for (k, name) in header.enumerated() where header.count <= 6 || k < 5 || k == header.count - 1 {
            if !names.isEmpty { names += ", " }
            if header.count > 6 && k == header.count - 1 { names += "..., " }
            names += name
        }
        return "line 1 of \(file) taken as a header (\(names))"
    }

    /// Whether line 1 (its fields `first`) is a header: when its label field
    /// is not a number (a NaN or infinity counts as a number: the data check
    /// then reports it). A label column given by name needs a header; a
    /// 0-based index outside line 1 leaves it data (the index is refused later).
    static func isHeader(_ b: [UInt8], _ first: [(Int, Int)], labelColumn: String?) -> Bool {
        var index = first.count - 1
        if let lc = labelColumn {
            guard let v = Int(lc) else { return true }
            if v < 0 || v >= first.count { return false }
            index = v
        }
        let f = first[index]
        return number(b, f.0, f.1) == nil && !isNonFinite(b, f.0, f.1)
    }

    /// A column given as a 0-based index or a header name.
    static func column(_ s: String, _ header: [String]?, _ columns: Int, what: String) throws(CSVError) -> Int {
        if let v = Int(s) {
            if v < 0 || v >= columns { throw .labelColumn("\(what) column \(v) outside 0..<\(columns)") }
            return v
        }
        if let h = header, let v = h.firstIndex(of: s) { return v }
        throw .labelColumn("no column named '\(s)'")
    }

    /// Field boundaries (trimmed of spaces and tabs) of bytes[s..<e].
    static func fields(_ b: [UInt8], _ s: Int, _ e: Int) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        var start = s
        var k = s
        while true {
            if k == e || b[k] == 44 {
                var a = start, z = k
                while a < z && (b[a] == 32 || b[a] == 9) { a += 1 }
                while z > a && (b[z - 1] == 32 || b[z - 1] == 9) { z -= 1 }
                out.append((a, z))
                if k == e { break }
                start = k + 1
            }
            k += 1
        }
        return out
    }

    static func text(_ b: [UInt8], _ s: Int, _ e: Int) -> String {
        var chars: [UInt8] = []
        for k in s..<min(e, s + 40) { chars.append(b[k] >= 32 && b[k] < 127 ? b[k] : 63) }
        return String(decoding: chars, as: UTF8.self)
    }

    static func isNonFinite(_ b: [UInt8], _ s: Int, _ e: Int) -> Bool {
        var a = s
        if a < e && (b[a] == 43 || b[a] == 45) { a += 1 }
        let n = e - a
        if n != 3 && n != 8 { return false }
        var lower: [UInt8] = []
        for k in a..<e { lower.append(b[k] | 0x20) }
        return lower == Array("nan".utf8) || lower == Array("inf".utf8) || lower == Array("infinity".utf8)
    }

    /// A decimal number, or nil. Mantissa digits beyond 19 are dropped (counted
    /// into the exponent); the value is m x 10^e evaluated in Double.
    static func number(_ b: [UInt8], _ s: Int, _ e: Int) -> Double? {
        var k = s
        if k == e { return nil }
        var negative = false
        if b[k] == 43 || b[k] == 45 { negative = b[k] == 45; k += 1 }
        var mantissa: UInt64 = 0
        var digits = 0, exp10 = 0
        var any = false
        while k < e && b[k] >= 48 && b[k] <= 57 {
            any = true
            if digits < 19 { mantissa = mantissa * 10 + UInt64(b[k] - 48); if mantissa > 0 { digits += 1 } } else { exp10 += 1 }
            k += 1
        }
        if k < e && b[k] == 46 {
            k += 1
            while k < e && b[k] >= 48 && b[k] <= 57 {
                any = true
                if digits < 19 { mantissa = mantissa * 10 + UInt64(b[k] - 48); if mantissa > 0 { digits += 1 }; exp10 -= 1 }
                k += 1
            }
        }
        if !any { return nil }
        if k < e && (b[k] == 101 || b[k] == 69) {
            k += 1
            var eneg = false
            if k < e && (b[k] == 43 || b[k] == 45) { eneg = b[k] == 45; k += 1 }
            var ev = 0
            var edigits = false
            while k < e && b[k] >= 48 && b[k] <= 57 {
                edigits = true
                if ev < 100_000 { ev = ev * 10 + Int(b[k] - 48) }
                k += 1
            }
            if !edigits { return nil }
            exp10 += eneg ? -ev : ev
        }
        if k != e { return nil }
        var v = Double(mantissa)
        if mantissa != 0 {
            if exp10 > 400 { v = Double.greatestFiniteMagnitude } else if exp10 < -400 { v = 0 } else {
                var p = exp10
                while p > 0 { v *= 10; p -= 1 }
                while p < 0 { v /= 10; p += 1 }
            }
        }
        return negative ? -v : v
    }
}
