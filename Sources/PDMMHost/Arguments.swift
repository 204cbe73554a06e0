import Foundation
import PDMMEngine

/// A user mistake on the command line: one line, exit code 2.
public struct UsageError: Error, CustomStringConvertible {
    public let message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}

/// `--flag value` / `--flag=value` / `--switch` parsing against a fixed set of flags.
public struct Arguments {
    var values: [String: String] = [:]
    var switches: Set<String> = []
    public var positional: [String] = []

    /// `valued`: flags that take a value; `switches`: flags that do not.
    public init(_ args: [String], valued: Set<String>, switches allowed: Set<String> = []) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a.hasPrefix("--") {
                var name = String(a.dropFirst(2))
                var value: String?
                if let eq = name.firstIndex(of: "=") {
                    value = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                }
                if allowed.contains(name) {
                    if value != nil { throw UsageError("--\(name) takes no value") }
                    switches.insert(name)
                } else if valued.contains(name) {
                    if value == nil {
                        i += 1
                        guard i < args.count else { throw UsageError("--\(name) needs a value") }
                        value = args[i]
                    }
                    values[name] = value
                } else {
                    throw UsageError("unknown flag --\(name)")
                }
            } else {
                positional.append(a)
            }
            i += 1
        }
    }

    public func has(_ s: String) -> Bool { switches.contains(s) }
    public func string(_ k: String) -> String? { values[k] }

    public func int(_ k: String, default d: Int, min lo: Int = Int.min) throws -> Int {
        guard let s = values[k] else { return d }
        guard let v = Int(s) else { throw UsageError("--\(k): '\(s)' is not an integer") }
        if v < lo { throw UsageError("--\(k): must be at least \(lo), got \(v)") }
        return v
    }

    public func double(_ k: String, default d: Double) throws -> Double {
        guard let s = values[k] else { return d }
        guard let v = Double(s), v.isFinite else { throw UsageError("--\(k): '\(s)' is not a number") }
        return v
    }

    /// Comma-separated positive integers ("64,128,10").
    public func intList(_ k: String, default d: [Int]) throws -> [Int] {
        guard let s = values[k] else { return d }
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw UsageError("--\(k): '\(part)' in '\(s)' is not an integer")
            }
            out.append(v)
        }
        return out
    }

    /// A byte size: "1024", "512B", "64KiB", "1.5MiB" (also KB/MB as 1000-based).
    public func size(_ k: String) throws -> Int? {
        guard let s = values[k] else { return nil }
        return try Arguments.parseSize(s, flag: k)
    }

    public static func parseSize(_ s: String, flag: String) throws -> Int {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824),
                                         ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("K", 1024), ("M", 1_048_576), ("B", 1)]
        var number = s.trimmingCharacters(in: .whitespaces)
        var mult = 1.0
        for (u, m) in units where number.hasSuffix(u) {
            number = String(number.dropLast(u.count)).trimmingCharacters(in: .whitespaces)
            mult = m
            break
        }
        guard let v = Double(number), v.isFinite, v >= 0, v * mult < 1e15 else {
            throw UsageError("--\(flag): '\(s)' is not a size (examples: 4096, 512B, 64KiB, 2MiB)")
        }
        return Int(v * mult)
    }
}

/// "12345 B", "12.1 KiB", "1.50 MiB".
public func formatBytes(_ b: Int) -> String {
    if b < 1024 { return "\(b) B" }
    if b < 1 << 20 { return String(format: "%.1f KiB", Double(b) / 1024) }
    return String(format: "%.2f MiB", Double(b) / 1_048_576)
}

/// Parses "bp", "bp-checkpoint", "local", "blockwise" (+ k).
public func parseMode(_ s: String, k: Int) throws -> TrainingMode {
    guard let m = TrainingMode(name: s, k: k) else {
        throw UsageError("unknown mode '\(s)' (expected bp, bp-checkpoint, local, blockwise, pdmm)")
    }
    return m
}
