import Foundation
import PDMMEngine

/// A CSV file that cannot become a data set: says where and why.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

/// CSV data loading: numeric features, an integer class label column
/// (default: the last), optional header line (detected: a first line with a
/// non-numeric field). Features become Q16.16 (saturated values counted).
public enum CSVLoader {
    public static func load(path: String, labelColumn: String? = nil) throws -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(message: "\(path): cannot read file")
        }
        var bytes = data
        if path.hasSuffix(".gz") {
            bytes = try gunzip(path)
        }
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw DataError(message: "\(path): not UTF-8 text")
        }
        return try parse(text, name: path, labelColumn: labelColumn)
    }

    static func gunzip(_ path: String) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-dc", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let d = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw DataError(message: "\(path): gzip could not decompress it") }
        return d
    }

    /// Parses CSV text. `labelColumn`: a 0-based index, a header name, or nil for the last column.
    public static func parse(_ text: String, name: String = "data", labelColumn: String? = nil) throws -> Dataset {
        var lines: [(Int, Substring)] = []
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = l.hasSuffix("\r") ? l.dropLast() : l
            if !t.trimmingCharacters(in: .whitespaces).isEmpty { lines.append((i + 1, t)) }
        }
        guard !lines.isEmpty else { throw DataError(message: "\(name): empty file (no data rows)") }
        var header: [String]?
        let first = lines[0].1.split(separator: ",", omittingEmptySubsequences: false)
        if first.contains(where: { Double($0.trimmingCharacters(in: .whitespaces)) == nil }) {
            header = first.map { $0.trimmingCharacters(in: .whitespaces) }
            lines.removeFirst()
        }
        guard !lines.isEmpty else { throw DataError(message: "\(name): header only, no data rows") }
        let columns = header?.count ?? first.count
        if columns < 2 { throw DataError(message: "\(name): need at least 2 columns (features and a label), got \(columns)") }
        var labelIndex = columns - 1
        if let lc = labelColumn {
            if let i = Int(lc) {
                guard i >= 0 && i < columns else {
                    throw DataError(message: "\(name): label column \(i) outside 0..<\(columns)")
                }
                labelIndex = i
            } else if let h = header, let i = h.firstIndex(of: lc) {
                labelIndex = i
            } else {
                throw DataError(message: "\(name): no column named '\(lc)'")
            }
        }
        var features: [Int32] = []
        features.reserveCapacity(lines.count * (columns - 1))
        var labels: [Int32] = []
        var saturated = 0
        for (lineNo, line) in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            if fields.count != columns {
                throw DataError(message: "\(name):\(lineNo): expected \(columns) fields, found \(fields.count)")
            }
            for (c, f) in fields.enumerated() {
                let s = f.trimmingCharacters(in: .whitespaces)
                guard let v = Double(s) else {
                    throw DataError(message: "\(name):\(lineNo): column \(c + 1): '\(s)' is not a number")
                }
                if !v.isFinite {
                    throw DataError(message: "\(name):\(lineNo): column \(c + 1): '\(s)' is not a finite number")
                }
                if c == labelIndex {
                    guard v == v.rounded(), v >= 0, v < 65_536 else {
                        throw DataError(message: "\(name):\(lineNo): column \(c + 1): label '\(s)' is not a class index 0...65535")
                    }
                    labels.append(Int32(v))
                } else {
                    let q = (v * 65536).rounded(.toNearestOrAwayFromZero)
                    if q > Double(Int32.max) || q < Double(Int32.min) { saturated += 1 }
                    features.append(Int32(max(min(q, Double(Int32.max)), Double(Int32.min))))
                }
            }
        }
        let classes = Int(labels.max()!) + 1
        if Set(labels).count < 2 {
            throw DataError(message: "\(name): only one class (\(labels[0])) in the data: nothing to learn")
        }
        if saturated > 0 {
            throw DataError(message: "\(name): \(saturated) feature values lie outside the Q16.16 range [-32768, 32768)")
        }
        do {
            return try Dataset(featureCount: columns - 1, classes: classes, features: features, labels: labels)
        } catch {
            throw DataError(message: "\(name): \(error.message)")
        }
    }
}
