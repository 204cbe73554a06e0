import Foundation
import PDMMEngine

extension UsageError: CustomStringConvertible {
    public var description: String { message }
}

extension RunError: CustomStringConvertible {
    public var description: String { message }
}

/// "12345 B", "12.1 KiB", "1.50 MiB".
public func formatBytes(_ b: Int) -> String {
    if b < 1024 { return "\(b) B" }
    if b < 1 << 20 { return String(format: "%.1f KiB", Double(b) / 1024) }
    return String(format: "%.2f MiB", Double(b) / 1_048_576)
}
