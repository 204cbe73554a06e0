/// The parser of the network text form (see `NetworkSpec`), Embedded-Swift
/// safe: bytes in, a checked spec or an error naming the column out.
extension NetworkSpec {
    /// Parses and checks `text`, e.g.
    /// `"1x28x28: conv 8 3x3 same, relu, maxpool 2x2, flatten, dense 64, relu, dense 10"`.
    public static func parse(_ text: String) throws(NetworkSpecError) -> NetworkSpec {
        var p = SpecParser(Array(text.utf8))
        let input = try p.inputShape()
        try p.expect(.colon, "':' after the input shape")
        var layers: [LayerSpec] = []
        while true {
            layers.append(try p.layer())
            if try p.peek().kind == .end { break }
            try p.expect(.comma, "',' between layers")
        }
        return try NetworkSpec(input: input, layers: layers)
    }
}

/// A token of the network text: a word, a number or NxM... dimensions, or punctuation.
struct SpecToken {
    enum Kind: Equatable { case word, dims, colon, comma, end }
    let kind: Kind
    let text: String
    let dims: [Int]
    let column: Int
}

struct SpecParser {
    let bytes: [UInt8]
    var pos = 0
    var lookahead: SpecToken? = nil

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    static func isLetter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 }

    func error(_ column: Int, _ m: String) -> NetworkSpecError {
        NetworkSpecError(column: column, message: "column \(column): \(m)")
    }

    mutating func lex() throws(NetworkSpecError) -> SpecToken {
        while pos < bytes.count && (bytes[pos] == 32 || bytes[pos] == 9) { pos += 1 }
        let col = pos + 1
        if pos == bytes.count { return SpecToken(kind: .end, text: "end of text", dims: [], column: col) }
        let b = bytes[pos]
        if b == 58 { pos += 1; return SpecToken(kind: .colon, text: ":", dims: [], column: col) }
        if b == 44 { pos += 1; return SpecToken(kind: .comma, text: ",", dims: [], column: col) }
        if SpecParser.isDigit(b) {
            var dims: [Int] = []
            let start = pos
            while true {
                var v = 0
                var digits = 0
                while pos < bytes.count && SpecParser.isDigit(bytes[pos]) {
                    if v < 100_000_000 { v = v * 10 + Int(bytes[pos] - 48) }
                    pos += 1
                    digits += 1
                }
                if digits == 0 { throw error(pos + 1, "expected a number after 'x'") }
                dims.append(v)
                if pos < bytes.count && (bytes[pos] == 120 || bytes[pos] == 88) { pos += 1 } else { break }
            }
            if pos < bytes.count && SpecParser.isLetter(bytes[pos]) {
                throw error(pos + 1, "unexpected '\(String(decoding: [bytes[pos]], as: UTF8.self))' after a number")
            }
            return SpecToken(kind: .dims, text: String(decoding: bytes[start..<pos], as: UTF8.self), dims: dims, column: col)
        }
        if SpecParser.isLetter(b) {
            let start = pos
            while pos < bytes.count && (SpecParser.isLetter(bytes[pos]) || SpecParser.isDigit(bytes[pos])) { pos += 1 }
            var lower: [UInt8] = []
            for c in bytes[start..<pos] { lower.append(c >= 65 && c <= 90 ? c + 32 : c) }
            return SpecToken(kind: .word, text: String(decoding: lower, as: UTF8.self), dims: [], column: col)
        }
        let shown = b >= 32 && b < 127 ? String(decoding: [b], as: UTF8.self) : "byte \(b)"
        throw error(col, "unexpected character '\(shown)'")
    }

    mutating func peek() throws(NetworkSpecError) -> SpecToken {
        if let t = lookahead { return t }
        let t = try lex()
        lookahead = t
        return t
    }

    mutating func next() throws(NetworkSpecError) -> SpecToken {
        let t = try peek()
        lookahead = nil
        return t
    }

    mutating func expect(_ kind: SpecToken.Kind, _ what: String) throws(NetworkSpecError) {
        let t = try next()
        if t.kind != kind { throw error(t.column, "expected \(what), found '\(t.text)'") }
    }

    /// One positive integer.
    mutating func number(_ what: String) throws(NetworkSpecError) -> Int {
        let t = try next()
        if t.kind != .dims || t.dims.count != 1 { throw error(t.column, "expected \(what), found '\(t.text)'") }
        if t.dims[0] < 1 { throw error(t.column, "\(what) must be at least 1, found \(t.dims[0])") }
        return t.dims[0]
    }

    /// HxW (two positive integers).
    mutating func pair(_ what: String) throws(NetworkSpecError) -> (Int, Int) {
        let t = try next()
        if t.kind != .dims || t.dims.count != 2 { throw error(t.column, "expected \(what) like 3x3, found '\(t.text)'") }
        if t.dims[0] < 1 || t.dims[1] < 1 { throw error(t.column, "\(what) must be at least 1x1, found \(t.text)") }
        return (t.dims[0], t.dims[1])
    }

    mutating func inputShape() throws(NetworkSpecError) -> TensorShape {
        let t = try next()
        if t.kind != .dims || (t.dims.count != 1 && t.dims.count != 3) {
            throw error(t.column, "expected the input shape CxHxW (1-D data: Cx1xW) or a feature count, found '\(t.text)'")
        }
        for d in t.dims where d < 1 { throw error(t.column, "input dimensions must be at least 1, found \(t.text)") }
        return t.dims.count == 1 ? TensorShape(channels: t.dims[0], height: 1, width: 1)
            : TensorShape(channels: t.dims[0], height: t.dims[1], width: t.dims[2])
    }

    mutating func layer() throws(NetworkSpecError) -> LayerSpec {
        let t = try next()
        if t.kind != .word {
            throw error(t.column, "expected a layer (dense, conv, maxpool, avgpool, relu, flatten), found '\(t.text)'")
        }
        switch t.text {
        case "dense":
            return .dense(units: try number("the number of units"))
        case "conv":
            let f = try number("the number of filters")
            let (kh, kw) = try pair("a kernel size")
            var stride = 1
            var padding = Padding.same
            var seenStride = false, seenPadding = false
            while true {
                let o = try peek()
                if o.kind != .word { break }
                if o.text == "stride" && !seenStride {
                    _ = try next()
                    stride = try number("the stride")
                    seenStride = true
                } else if (o.text == "same" || o.text == "valid") && !seenPadding {
                    _ = try next()
                    padding = o.text == "same" ? .same : .valid
                    seenPadding = true
                } else {
                    throw error(o.column, "expected 'stride N', 'same', 'valid' or ',' after conv, found '\(o.text)'")
                }
            }
            return .conv(filters: f, kh: kh, kw: kw, stride: stride, padding: padding)
        case "maxpool":
            let (ph, pw) = try pair("a pool window")
            return .maxpool(ph: ph, pw: pw)
        case "avgpool":
            let (ph, pw) = try pair("a pool window")
            return .avgpool(ph: ph, pw: pw)
        case "relu":
            return .relu
        case "flatten":
            return .flatten
        default:
            throw error(t.column, "unknown layer '\(t.text)' (expected dense, conv, maxpool, avgpool, relu, flatten)")
        }
    }
}
