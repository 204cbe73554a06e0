import Foundation
import PDMMEngine
import PDMMHost
import XCTest

final class CheckpointAndDataTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pdmm-ck-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        CheckpointFile.crashAfterBytes = nil
        try? FileManager.default.removeItem(atPath: dir)
    }

    func run(_ args: [String]) -> (code: Int32, out: String, err: String) {
        var out = "", err = ""
        let tool = Tool(out: { out += $0 + "\n" }, err: { err += $0 + "\n" })
        return (tool.run(args), out, err)
    }

    func hash(_ s: String) -> String? {
        s.split(separator: "\n").first { $0.hasPrefix("weights hash") }.map(String.init)
    }

    func smallCheckpoint(seed: UInt64 = 1) throws -> Checkpoint {
        let model = Model(shape: try NetworkShape(widths: [4, 6, 3]), seed: seed)
        let t = try Trainer(model: model, batch: 2, mode: .bp, optimizer: .momentum(mu: 0.5),
                            options: TrainingOptions(learningRate: 0.1, seed: seed), budget: 1 << 16)
        t.beginStage(0)
        let f: [Int32] = [1 << 16, 0, 2 << 16, -(1 << 16), 0, 1 << 15, 3 << 16, 1]
        let l: [Int32] = [0, 2]
        _ = try f.withUnsafeBufferPointer { fp in try l.withUnsafeBufferPointer { lp in try t.step(features: fp, labels: lp) } }
        return t.checkpoint(epochsDone: 1)
    }

    func testResumeEqualsUninterruptedBitForBit() throws {
        for extra in [["--mode", "bp"], ["--mode", "blockwise", "--k", "2", "--optimizer", "momentum"],
                      ["--mode", "local", "--k", "2", "--optimizer", "riemannian"]] {
            let full = run(["train", "--epochs", "3"] + extra)
            XCTAssertEqual(full.code, 0, full.err)
            let path = dir + "/run.ckpt"
            let cut = run(["train", "--epochs", "3", "--save", path, "--stop-after", "2"] + extra)
            XCTAssertEqual(cut.code, 3, cut.err)
            let resumed = run(["train", "--epochs", "3", "--resume", path])
            XCTAssertEqual(resumed.code, 0, resumed.err)
            XCTAssertNotNil(hash(full.out))
            XCTAssertEqual(hash(resumed.out), hash(full.out), "\(extra)")
        }
    }

    func testRoundTripAndEval() throws {
        let c = try smallCheckpoint()
        XCTAssertEqual(try Checkpoint.decode(c.encode()), c)
        let path = dir + "/m.ckpt"
        XCTAssertEqual(run(["train", "--epochs", "2", "--save", path]).code, 0)
        let e = run(["eval", "--model", path])
        XCTAssertEqual(e.code, 0, e.err)
        XCTAssertTrue(e.out.contains("on the built-in data's test split (seed 1, 360 samples)"), e.out)
    }

    func testSaveKilledAtEveryByteLeavesTheOldCheckpointLoadable() throws {
        let path = dir + "/a.ckpt"
        let old = try smallCheckpoint(seed: 1)
        try CheckpointFile.save(old, to: path)
        let new = try smallCheckpoint(seed: 2)
        let size = new.encode().count
        for cut in 0..<size {
            CheckpointFile.crashAfterBytes = cut
            try CheckpointFile.save(new, to: path)
            XCTAssertEqual(try CheckpointFile.load(path), old, "crash after \(cut) bytes")
        }
        CheckpointFile.crashAfterBytes = nil
        try CheckpointFile.save(new, to: path)
        XCTAssertEqual(try CheckpointFile.load(path), new)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    /// Version-1 files (dense widths in place of the network text), written by the
    /// previous release, still load and resume.
    func testVersionOneCheckpointsStillLoad() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let c = try CheckpointFile.load(fixtures.appendingPathComponent("v1_trainer_blockwise_momentum.ckpt").path)
        XCTAssertEqual(c.network, try NetworkSpec.parse("4: dense 5, relu, dense 3"))
        XCTAssertEqual(c.mode, .blockwise(k: 1))
        let t = try Trainer(model: Model(shape: try NetworkShape(spec: c.network), seed: 7), batch: 4, mode: .blockwise(k: 1),
                            optimizer: .momentum(mu: 0.5), options: TrainingOptions(learningRate: 0.05, seed: 3), budget: 1 << 20)
        try t.restore(c)
        XCTAssertEqual(t.checkpoint(epochsDone: c.epochsDone).model, c.model)
        // Re-encoded, it is a version-2 file of the same state.
        let again = try Checkpoint.decode(c.encode())
        XCTAssertEqual(again, c)
        XCTAssertEqual(c.encode()[8], 2)
        let scaled = try CheckpointFile.load(fixtures.appendingPathComponent("v1_local_momentum_scaled.ckpt").path)
        XCTAssertEqual(scaled.network.description, "3: dense 4, relu, dense 2")
        XCTAssertEqual(scaled.scaling?.inverseStd, [65536, 32768, 131072])
    }

    /// A CNN's checkpoint records its graph and resumes bit for bit; a resume
    /// whose --net differs is refused naming the first difference.
    func testCNNCheckpointResumesAndRefusesAnotherNetwork() throws {
        let net = "1x8x8: conv 4 3x3 same, relu, maxpool 2x2, flatten, dense 10"
        let full = run(["train", "--net", net, "--epochs", "3"])
        XCTAssertEqual(full.code, 0, full.err)
        let path = dir + "/cnn.ckpt"
        XCTAssertEqual(run(["train", "--net", net, "--epochs", "3", "--save", path, "--stop-after", "2"]).code, 3)
        XCTAssertEqual(try CheckpointFile.load(path).network.description, net)
        let resumed = run(["train", "--epochs", "3", "--resume", path])
        XCTAssertEqual(resumed.code, 0, resumed.err)
        XCTAssertNotNil(hash(full.out))
        XCTAssertEqual(hash(resumed.out), hash(full.out))
        let other = run(["train", "--epochs", "3", "--resume", path, "--net", "1x8x8: conv 4 3x3 same, avgpool 2x2, relu, flatten, dense 10"])
        XCTAssertEqual(other.code, 2, other.err)
        XCTAssertEqual(other.err, "pdmm: resume: the network disagrees with the checkpoint's: layer 2: --net has avgpool 2x2, the checkpoint has relu\n")
        let e = run(["eval", "--model", path])
        XCTAssertEqual(e.code, 0, e.err)
        XCTAssertTrue(e.out.contains("(\(net), bp)"), e.out)
    }

    func testEveryTruncationIsAClearError() throws {
        let bytes = try smallCheckpoint().encode()
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try Checkpoint.decode(Array(bytes[0..<n]))) { e in
                let m = (e as! CheckpointError).message
                XCTAssertTrue(m.hasPrefix("checkpoint truncated") || m.hasPrefix("checkpoint CRC mismatch")
                              || m == "not a PDMM checkpoint (wrong magic)", "\(n): \(m)")
            }
        }
    }

    /// Malformed inputs, each with its expected message.
    func testMalformedInputTable() throws {
        let good = try smallCheckpoint().encode()
        func withCRC(_ b: [UInt8]) -> [UInt8] {
            var c = Array(b[0..<(b.count - 4)])
            let crc = CRC32.checksum(c, count: c.count)
            for s in 0..<4 { c.append(UInt8(truncatingIfNeeded: crc >> (8 * UInt32(s)))) }
            return c
        }
        func patched(_ at: Int, _ v: UInt32) -> [UInt8] {
            var b = good
            for s in 0..<4 { b[at + s] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(s))) }
            return withCRC(b)
        }
        var flipped = good
        flipped[40] ^= 1
        // Version 2: the network text "4: dense 6, relu, dense 3" (n bytes) at offset 20, then the mode at 20 + n.
        let text = Array("4: dense 6, relu, dense 3".utf8)
        XCTAssertEqual(Array(good[20..<(20 + text.count)]), text)
        let modeAt = 20 + text.count
        func textPatched(_ at: Int, _ v: String) -> [UInt8] {
            var b = good
            for (i, c) in v.utf8.enumerated() { b[20 + at + i] = c }
            return withCRC(b)
        }
        let checkpoints: [([UInt8], String)] = [
            ([], "checkpoint truncated: needs at least 20 bytes, has 0"),
            (Array("NOTACKPT________________".utf8), "not a PDMM checkpoint (wrong magic)"),
            (patched(8, 3), "checkpoint format version 3 is newer than this program's (2)"),
            (patched(12, 8), "checkpoint holds Q24.8 values, this program reads Q16.16"),
            (patched(16, 0), "checkpoint is corrupt: network text of 0 bytes"),
            (patched(16, 1 << 30), "checkpoint is corrupt: network text of 1073741824 bytes"),
            (textPatched(3, "dance"), "checkpoint is corrupt: network text: column 4: unknown layer 'dance' (expected dense, conv, maxpool, avgpool, relu, flatten)"),
            (textPatched(12, "pool"), "checkpoint is corrupt: network text: column 13: unknown layer 'pool' (expected dense, conv, maxpool, avgpool, relu, flatten)"),
            (textPatched(18, "flatt"), "checkpoint is corrupt: network text: column 19: unknown layer 'flatt' (expected dense, conv, maxpool, avgpool, relu, flatten)"),
            (textPatched(9, "7"), "checkpoint is corrupt: 51 model words for a network needing 59"),
            (patched(modeAt, 9), "checkpoint is corrupt: mode code 9"),
            (patched(modeAt + 8, 7), "checkpoint is corrupt: optimizer code 7"),
        ]
        var checkpointCases = Set<String>(), checkpointMessages = Set<String>()
        func seen(_ e: Error) -> String {
            let c = e as! CheckpointError
            checkpointCases.insert(Self.caseName(c))
            checkpointMessages.insert(c.message)
            return c.message
        }
        for (b, m) in checkpoints {
            XCTAssertThrowsError(try Checkpoint.decode(b)) { e in XCTAssertEqual(seen(e), m) }
        }
        XCTAssertThrowsError(try Checkpoint.decode(flipped)) { e in
            XCTAssertTrue(seen(e).hasPrefix("checkpoint CRC mismatch"))
        }
        // A header asking for 2^30 model words is refused before anything is allocated.
        // Rewrite the optimizer-word count (the last count before the CRC) to 2^30.
        var huge = Array(good[0..<(good.count - 4)])
        let lastCount = huge.count - 4 * (try smallCheckpoint().optimizerState.count) - 4
        for s in 0..<4 { huge[lastCount + s] = UInt8(truncatingIfNeeded: UInt32(1 << 30) >> (8 * UInt32(s))) }
        XCTAssertThrowsError(try Checkpoint.decode(withCRC(huge + [0, 0, 0, 0]))) { e in
            XCTAssertTrue(seen(e).hasPrefix("checkpoint truncated"), "\(e)")
        }
        // A well-formed checkpoint of another configuration is refused by `restore`.
        let other = try Trainer(model: Model(shape: try NetworkShape(widths: [4, 6, 3]), seed: 2), batch: 2, mode: .bp,
                                optimizer: .momentum(mu: 0.5), options: TrainingOptions(learningRate: 0.1, seed: 2),
                                budget: 1 << 16)
        XCTAssertThrowsError(try other.restore(try smallCheckpoint(seed: 1))) { e in
            XCTAssertEqual(seen(e), "checkpoint configuration differs from this run's")
        }
        // A checkpoint of another network is refused, naming the first difference.
        let wider = try Trainer(model: Model(shape: try NetworkShape(widths: [4, 7, 3]), seed: 1), batch: 2, mode: .bp,
                                optimizer: .momentum(mu: 0.5), options: TrainingOptions(learningRate: 0.1, seed: 1),
                                budget: 1 << 16)
        XCTAssertThrowsError(try wider.restore(try smallCheckpoint(seed: 1))) { e in
            XCTAssertEqual(seen(e), "the checkpoint's network differs from this run's: layer 1: the checkpoint has dense 6, this run has dense 7")
        }
        // Every row is a different failure, and every way a checkpoint can be refused is exercised.
        XCTAssertEqual(checkpointMessages.count, checkpoints.count + 4, "\(checkpointMessages.sorted())")
        XCTAssertEqual(checkpointCases, Set(Self.checkpointErrorCases))

        let csvs: [(String, String)] = [
            ("", "empty file (no data rows)"),
            ("\n\n  \n", "empty file (no data rows)"),
            ("a,b,label\n", "header only, no data rows"),
            ("1\n2\n", "need at least 2 columns (features and a label), got 1"),
            ("1,2,0\n1,2\n", "line 2: expected 3 fields, found 2"),
            ("1,2,0\n1,x,1\n", "line 2, column 2: 'x' is not a number"),
            ("1,2,0\n1,nan,1\n", "line 2, column 2: 'nan' is not a finite number (NaN or infinity)"),
            ("1,2,0\n-inf,2,1\n", "line 2, column 1: '-inf' is not a finite number (NaN or infinity)"),
            ("1,2,0\n1,2,1.5\n", "line 2, column 3: label '1.5' is not a class index 0...65535"),
            ("1,2,0\n1,2,-1\n", "line 2, column 3: label '-1' is not a class index 0...65535"),
            ("1,2,3\n4,5,3\n", "only one class (3) in the data: nothing to learn"),
            ("1,2,0\n40000,2,1\n1e9,0,1\n", "2 feature values lie outside the Q16.16 range [-32768, 32768) (first at line 2, column 1)"),
            ("1,2,0\n1,,1\n", "line 2, column 2: '' is not a number"),
            ("1,2,0\n1,2e,1\n", "line 2, column 2: '2e' is not a number"),
            ("1,2,0\r\n1,2,1 \r\n", ""),
            ("1,abc,0\n2,3,1\n4,5,0\n", "line 1, column 2: 'abc' is not a number"),
        ]
        var csvCases = Set<String>()
        for (text, m) in csvs {
            do {
                _ = try CSVParser.parse(Array(text.utf8))
                XCTAssertEqual(m, "", "parsed: \(text.debugDescription)")
            } catch {
                csvCases.insert(Self.caseName(error))
                XCTAssertEqual(error.message, m, text.debugDescription)
            }
        }
        XCTAssertThrowsError(try CSVParser.parse(Array("a,b\n1,0\n2,1\n".utf8), labelColumn: "c")) { e in
            csvCases.insert(Self.caseName(e as! CSVError))
            XCTAssertEqual((e as! CSVError).message, "no column named 'c'")
        }
        XCTAssertThrowsError(try CSVParser.parse(Array("1,0\n2,1\n".utf8), labelColumn: "5")) { e in
            csvCases.insert(Self.caseName(e as! CSVError))
            XCTAssertEqual((e as! CSVError).message, "label column 5 outside 0..<2")
        }
        // Every error `parse` can throw is exercised (`tooLarge` is for callers that cap a file's size:
        // `parse` takes any length and never throws it; `unreadable` is a failing stream: RunLayerTests).
        XCTAssertEqual(csvCases, Set(Self.csvErrorCases).subtracting(["tooLarge", "unreadable"]))
    }

    /// The names of every `CSVError` and `CheckpointError` case; `caseName`'s exhaustive switches
    /// make a new case fail to compile until it is named (and then listed) here.
    static let csvErrorCases = ["empty", "headerOnly", "tooFewColumns", "ragged", "notANumber", "notFinite",
                                "badLabel", "singleClass", "saturated", "labelColumn", "tooLarge", "unreadable"]
    static let checkpointErrorCases = ["truncated", "wrongMagic", "newerVersion", "notQ16", "crcMismatch",
                                       "absurd", "mismatch"]

    static func caseName(_ e: CSVError) -> String {
        switch e {
        case .empty: return "empty"
        case .headerOnly: return "headerOnly"
        case .tooFewColumns: return "tooFewColumns"
        case .ragged: return "ragged"
        case .notANumber: return "notANumber"
        case .notFinite: return "notFinite"
        case .badLabel: return "badLabel"
        case .singleClass: return "singleClass"
        case .saturated: return "saturated"
        case .labelColumn: return "labelColumn"
        case .tooLarge: return "tooLarge"
        case .unreadable: return "unreadable"
        }
    }

    static func caseName(_ e: CheckpointError) -> String {
        switch e {
        case .truncated: return "truncated"
        case .wrongMagic: return "wrongMagic"
        case .newerVersion: return "newerVersion"
        case .notQ16: return "notQ16"
        case .crcMismatch: return "crcMismatch"
        case .absurd: return "absurd"
        case .mismatch: return "mismatch"
        }
    }

    /// Data/digits.csv, the built-in data set's source (1797 lines, no header).
    static let digitsCSV = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Data/digits.csv").path

    func testByteOrderMarkKeepsEveryLine() throws {
        let plain = Array(try Data(contentsOf: URL(fileURLWithPath: Self.digitsCSV)))
        let d = try CSVParser.parse(plain)
        let b = try CSVParser.parse([0xEF, 0xBB, 0xBF] + plain)
        XCTAssertEqual(d.count, 1797)
        XCTAssertEqual(b.count, 1797)
        XCTAssertEqual(b.featureCount, d.featureCount)
        for s in [0, 1, min(b.count, d.count) - 1] {
            XCTAssertEqual(b.label(s), d.label(s), "sample \(s)")
            XCTAssertEqual((0..<b.featureCount).map { b.feature(s, $0) }, (0..<d.featureCount).map { d.feature(s, $0) })
        }
        XCTAssertNil(b.header)
    }

    func testHeaderIsRecognisedAndReported() throws {
        // A BOM before a real header: the header is taken, clean (no BOM bytes in its first name).
        let bom = try CSVParser.parse([0xEF, 0xBB, 0xBF] + Array("x1,x2,label\n1,2,0\n3,4,1\n".utf8))
        XCTAssertEqual(bom.count, 2)
        XCTAssertEqual(bom.header, ["x1", "x2", "label"])
        XCTAssertEqual(bom.feature(0, 0), 1 << 16)
        // Header or data is decided by the label field alone.
        let named = try CSVParser.parse(Array("label,a,b\n0,1,2\n1,3,4\n".utf8), labelColumn: "0")
        XCTAssertEqual(named.header, ["label", "a", "b"])
        XCTAssertEqual(named.count, 2)
        let numericLabel = try CSVParser.parse(Array("7,8,0\n1,2,0\n3,4,1\n".utf8))
        XCTAssertNil(numericLabel.header)
        XCTAssertEqual(numericLabel.count, 3)
        XCTAssertNil(numericLabel.split(trainPercent: 50, seed: 1).train.header)
        XCTAssertEqual(bom.split(trainPercent: 50, seed: 1).test.header, ["x1", "x2", "label"])
        let wide = (1...7).map { "f\($0)" } + ["label"]
        XCTAssertEqual(CSVParser.headerNote(wide, file: "w.csv"),
                       "line 1 of w.csv taken as a header (f1, f2, f3, f4, f5, ..., label)")
        XCTAssertEqual(CSVParser.headerNote(["a", "b", "c", "d", "e", "label"], file: "s.csv"),
                       "line 1 of s.csv taken as a header (a, b, c, d, e, label)")

        // The tool says when it took line 1 as a header, and says nothing when it did not.
        var rows = ""
        for i in 0..<40 { rows += "\(Double(i % 2) + Double(i) / 80),\(i % 3),\(i % 2)\n" }
        let withHeader = dir + "/h.csv", without = dir + "/n.csv"
        try ("\u{FEFF}x1,x2,label\n" + rows).write(toFile: withHeader, atomically: true, encoding: .utf8)
        try rows.write(toFile: without, atomically: true, encoding: .utf8)
        let h = run(["train", "--data", withHeader, "--epochs", "1", "--layers", "2,4,2"])
        XCTAssertEqual(h.code, 0, h.err)
        XCTAssertTrue(h.err.hasPrefix("pdmm: line 1 of \(withHeader) taken as a header (x1, x2, label)\n"), h.err)
        let n = run(["train", "--data", without, "--epochs", "1", "--layers", "2,4,2"])
        XCTAssertEqual(n.code, 0, n.err)
        XCTAssertFalse(n.err.contains("header"), n.err)
        // Same 40 samples either way: the same split and the same weights.
        XCTAssertTrue(n.out.contains("split: seeded 80/20 (32 train / 8 test)"), n.out)
        XCTAssertNotNil(hash(n.out))
        XCTAssertEqual(hash(h.out), hash(n.out))
    }

    func testBadCheckpointFilesThroughTheToolOverwriteNothing() throws {
        let path = dir + "/x.ckpt"
        XCTAssertEqual(run(["train", "--epochs", "1", "--save", path]).code, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let wrongLayers = run(["train", "--epochs", "2", "--resume", path, "--layers", "64,32,10"])
        XCTAssertEqual(wrongLayers.code, 2)
        XCTAssertEqual(wrongLayers.err, "pdmm: resume: --layers 64,32,10 disagrees with the checkpoint's 64-128-128-128-10\n")
        var corrupt = before
        corrupt[100] ^= 0xFF
        let bad = dir + "/bad.ckpt"
        try corrupt.write(to: URL(fileURLWithPath: bad))
        let r = run(["train", "--resume", bad, "--save", path])
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.err.hasPrefix("pdmm: \(bad): checkpoint CRC mismatch"), r.err)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        let unwritable = run(["train", "--epochs", "1", "--save", "/nonexistent-dir/x.ckpt"])
        XCTAssertEqual(unwritable.code, 2)
        XCTAssertTrue(unwritable.err.hasPrefix("pdmm: /nonexistent-dir/x.ckpt: cannot write"), unwritable.err)
    }
}
