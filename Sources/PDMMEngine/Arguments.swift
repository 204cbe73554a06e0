/// A command-line mistake: one line, exit code 2 (the host tool and the board
/// program print it as "pdmm: MESSAGE" / "pdmm-board: MESSAGE").
public struct UsageError: Error {
    public let message: String
    public init(_ m: String) { message = m }
}

/// `--flag value` / `--flag=value` / `--switch` parsing against a fixed set of
/// flags (Embedded-Swift compatible: the host tool and the board program parse
/// with this one parser). Values are read with `int`, `double`, `intList`, `size`.
///
/// ```swift
/// let a = try Arguments(["--epochs", "3", "--ideal-bp"], valued: ["epochs"], switches: ["ideal-bp"])
/// try a.int("epochs", default: 30)  // 3
/// ```
public struct Arguments {
    var values: [String: String] = [:]
    var switches: Set<String> = []
    /// Arguments that are not flags, in order ("eval" in `pdmm-board eval ...`).
    public var positional: [String] = []

    /// `valued`: flags that take a value; `switches`: flags that do not.
    /// Errors: "unknown flag --X", "--X needs a value", "--X takes no value".
    public init(_ args: [String], valued: Set<String>, switches allowed: Set<String> = []) throws(UsageError) {
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

    /// Whether the switch was given.
    public func has(_ s: String) -> Bool { switches.contains(s) }
    /// The flag's value as given, or nil.
    public func string(_ k: String) -> String? { values[k] }

    /// An integer flag (at least `lo`), or `d` when absent.
    public func int(_ k: String, default d: Int, min lo: Int = Int.min) throws(UsageError) -> Int {
        guard let s = values[k] else { return d }
        guard let v = Int(s) else { throw UsageError("--\(k): '\(s)' is not an integer") }
        if v < lo { throw UsageError("--\(k): must be at least \(lo), got \(v)") }
        return v
    }

    /// A finite number flag, or `d` when absent.
    public func double(_ k: String, default d: Double) throws(UsageError) -> Double {
        guard let s = values[k] else { return d }
        guard let v = Double(s), v.isFinite else { throw UsageError("--\(k): '\(s)' is not a number") }
        return v
    }

    /// Comma-separated integers ("64,128,10").
    public func intList(_ k: String, default d: [Int]) throws(UsageError) -> [Int] {
        guard let s = values[k] else { return d }
        var out: [Int] = []
        for part in s.split(separator: ",", omittingEmptySubsequences: false) {
            guard let v = Int(Arguments.trimmed(String(part))) else {
                throw UsageError("--\(k): '\(part)' in '\(s)' is not an integer")
            }
            out.append(v)
        }
        return out
    }

    /// A byte size: "1024", "512B", "64KiB", "1.5MiB" (also KB/MB as 1000-based).
    public func size(_ k: String) throws(UsageError) -> Int? {
        guard let s = values[k] else { return nil }
        return try Arguments.parseSize(s, flag: k)
    }

    /// `size`'s rule for any text; `flag` names the option in the error.
    public static func parseSize(_ s: String, flag: String) throws(UsageError) -> Int {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824),
                                         ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("K", 1024), ("M", 1_048_576), ("B", 1)]
        var number = trimmed(s)
        var mult = 1.0
        for (u, m) in units where number.hasSuffix(u) {
            number = trimmed(String(number.dropLast(u.count)))
            mult = m
            break
        }
        guard let v = Double(number), v.isFinite, v >= 0, v * mult < 1e15 else {
            throw UsageError("--\(flag): '\(s)' is not a size (examples: 4096, 512B, 64KiB, 2MiB)")
        }
        return Int(v * mult)
    }

    /// `s` without leading and trailing spaces and tabs.
    public static func trimmed(_ s: String) -> String {
        var u = Array(s.utf8)
        while let f = u.first, f == 0x20 || f == 0x09 { u.removeFirst() }
        while let l = u.last, l == 0x20 || l == 0x09 { u.removeLast() }
        return String(decoding: u, as: UTF8.self)
    }
}
