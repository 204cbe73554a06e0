import Foundation
import PDMMEngine

/// A CSV file that cannot become a data set: says where and why.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public var description: String { message }
}

/// CSV data loading: numeric features, an integer class label column
/// (default: the last), optional header line (detected: a first line whose
/// label field is not a number; reported in `Dataset.header`), a leading
/// UTF-8 byte-order mark skipped. Features become Q16.16 (saturated values counted).
public enum CSVLoader {
    public static func load(path: String, labelColumn: String? = nil, verifiedColumn: String? = nil) throws -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(message: "\(path): cannot read file")
        }
        var bytes = data
        if path.hasSuffix(".gz") {
            bytes = try gunzip(path)
        }
        do {
            return try CSVParser.parse([UInt8](bytes), labelColumn: labelColumn, verifiedColumn: verifiedColumn)
        } catch {
            throw DataError(message: "\(path): \(error.message)")
        }
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

    /// Parses CSV text (see `CSVParser`), naming the file in errors.
    public static func parse(_ text: String, name: String = "data", labelColumn: String? = nil) throws -> Dataset {
        do {
            return try CSVParser.parse(Array(text.utf8), labelColumn: labelColumn)
        } catch {
            throw DataError(message: "\(name): \(error.message)")
        }
    }
}
