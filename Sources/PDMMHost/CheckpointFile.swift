import Foundation
import PDMMEngine

/// Checkpoint files: atomic writes (temporary file in the same directory,
/// write, fsync, rename over the old file, fsync the directory), so the previous
/// checkpoint survives a crash at any point of a save.
public enum CheckpointFile {
    /// Fault injection for tests: stop after writing this many bytes of the
    /// temporary file, as a crash would (no rename).
    nonisolated(unsafe) public static var crashAfterBytes: Int?

    public static func save(_ c: Checkpoint, to path: String) throws {
        let bytes = c.encode()
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw DataError(message: "\(path): cannot write (\(String(cString: strerror(errno))))") }
        var written = 0
        let limit = crashAfterBytes ?? Int.max
        let ok: Bool = bytes.withUnsafeBytes { raw in
            while written < bytes.count {
                let n = min(bytes.count - written, 1 << 20, limit - written)
                if n <= 0 { return false }
                let r = write(fd, raw.baseAddress! + written, n)
                if r <= 0 { return false }
                written += r
            }
            return fsync(fd) == 0
        }
        close(fd)
        if crashAfterBytes != nil && !ok { return }  // simulated crash: leave the temporary file
        guard ok else {
            unlink(tmp)
            throw DataError(message: "\(path): write failed (\(String(cString: strerror(errno)))); the previous checkpoint is intact")
        }
        if rename(tmp, path) != 0 {
            unlink(tmp)
            throw DataError(message: "\(path): cannot replace (\(String(cString: strerror(errno))))")
        }
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    public static func load(_ path: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(message: "\(path): cannot read file")
        }
        do {
            return try Checkpoint.decode([UInt8](data))
        } catch {
            throw DataError(message: "\(path): \(error.message)")
        }
    }
}
