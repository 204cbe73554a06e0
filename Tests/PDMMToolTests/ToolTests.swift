import Foundation
import PDMMEngine
import PDMMHost
import XCTest

/// Drives the `pdmm` commands in process and checks what they print.
final class ToolTests: XCTestCase {
    func run(_ args: [String]) -> (code: Int32, out: String, err: String) {
        var out = "", err = ""
        let tool = Tool(out: { out += $0 + "\n" }, err: { err += $0 + "\n" })
        let code = tool.run(args)
        return (code, out, err)
    }

    func testReportJSONHoldsThePlanAndMatchesMarkdown() throws {
        let j = run(["report", "--format", "json", "--k", "1,2"])
        XCTAssertEqual(j.code, 0, j.err)
        let obj = try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as! [String: Any]
        let modes = obj["modes"] as! [[String: Any]]
        XCTAssertEqual(modes.map { $0["mode"] as! String },
                       ["bp", "bp-checkpoint", "local(1)", "local(2)", "blockwise(1)", "blockwise(2)"])
        let shape = try NetworkShape(widths: [64, 128, 128, 128, 10])
        let md = run(["report", "--format", "md", "--k", "1,2"])
        XCTAssertEqual(md.code, 0)
        for (m, mode) in zip(modes, [TrainingMode.bp, .bpCheckpoint, .local(k: 1), .local(k: 2), .blockwise(k: 1), .blockwise(k: 2)]) {
            let plan = try MemoryPlan(shape: shape, batch: 32, mode: mode, optimizer: .sgd)
            let planned = m["planned"] as! [String: Int]
            let measured = m["measured"] as! [String: Int]
            for c in MemoryCategory.allCases {
                XCTAssertEqual(planned[c.name], plan.bytes[c], "\(mode.name) \(c.name)")
                XCTAssertEqual(measured[c.name], plan.bytes[c], "\(mode.name) \(c.name) measured")
            }
            XCTAssertEqual(m["peak_writable_planned"] as? Int, plan.peakWritable)
            XCTAssertEqual(m["layer_inputs_planned"] as? Int, plan.layerInputBytes)
            // The Markdown's planned row carries the same numbers in the same order.
            let row = "| \(mode.name) | " + MemoryCategory.allCases.map { "\(plan.bytes[$0])" }.joined(separator: " | ")
                + " | \(plan.peakWritable) |"
            XCTAssertTrue(md.out.contains(row), "markdown lacks: \(row)")
        }
        XCTAssertEqual(modes[0]["activation_ratio_vs_bp"] as? Double, 1.0)
        XCTAssertEqual(modes[3]["claimed_ratio"] as? Double, 2.0)
    }

    func testReportBudgetVerdictAndCSV() {
        let r = run(["report", "--budget", "200KiB", "--k", "1", "--format", "csv"])
        XCTAssertEqual(r.code, 0, r.err)
        let lines = r.out.split(separator: "\n")
        // header, 4 modes x (planned, measured), 6 PDMM phases (confident selection first) x (planned, measured)
        XCTAssertEqual(lines.count, 1 + 2 * 4 + 2 * 6)
        XCTAssertEqual(lines.filter { $0.hasPrefix("pdmm: ") }.count, 12)
        // bp needs 277288 B > 204800 B; local(1) fits.
        XCTAssertTrue(lines.contains { $0.hasPrefix("bp,planned,") && $0.hasSuffix(",false") })
        XCTAssertTrue(lines.contains { $0.hasPrefix("local(1),planned,") && $0.hasSuffix(",true") })
    }

    func testSVGIsWritten() throws {
        let path = NSTemporaryDirectory() + "pdmm-test-\(getpid()).svg"
        defer { unlink(path) }
        let r = run(["report", "--svg", path, "--k", "2", "--format", "csv"])
        XCTAssertEqual(r.code, 0, r.err)
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.contains("local(2)"))
        XCTAssertTrue(svg.contains("polyline"))
    }

    func testTrainPrintsSummaryAndProgress() {
        let r = run(["train", "--epochs", "2", "--mode", "local", "--k", "2", "--seed", "3", "--threads", "2"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("mode local(2), layers 64-128-128-128-10, batch 32, threads 2,"))
        let shape = try! NetworkShape(widths: [64, 128, 128, 128, 10])
        let plan = try! MemoryPlan(shape: shape, batch: 32, mode: .local(k: 2), optimizer: .sgd, threads: 2)
        XCTAssertTrue(r.out.contains("peak writable: planned \(plan.peakWritable) B, measured \(plan.peakWritable) B"))
        XCTAssertEqual(r.err.split(separator: "\n").filter { $0.contains("epoch") }.count, 2)
    }

    func testFitFindsLargestBatch() throws {
        let r = run(["fit", "--budget", "64KiB", "--layers", "64,32,32,10"])
        XCTAssertEqual(r.code, 0, r.err)
        let shape = try NetworkShape(widths: [64, 32, 32, 10])
        var best = 0
        // the largest batch whose plan fits, with the packed forward or (smaller) without it
        for b in 1...4096 where try MemoryPlan(shape: shape, batch: b, mode: .bp, optimizer: .sgd, packedForward: false).peakWritable <= 65536 { best = b }
        let packedFits = try MemoryPlan(shape: shape, batch: best, mode: .bp, optimizer: .sgd).peakWritable <= 65536
        XCTAssertFalse(packedFits, "at 64 KiB this network's largest batch needs the unpacked forward")
        XCTAssertTrue(r.out.contains("| bp | \(best) | "), r.out)
        XCTAssertTrue(r.out.contains("(unpacked forward)"), r.out)
    }

    func testUserMistakesGiveOneLineAndExitTwo() throws {
        let cases: [([String], String)] = [
            (["train", "--bogus"], "pdmm: unknown flag --bogus"),
            (["train", "--mode", "magic"], "pdmm: unknown mode 'magic' (expected bp, bp-checkpoint, local, blockwise, pdmm)"),
            (["report", "--budget", "12 parsecs"], "pdmm: --budget: '12 parsecs' is not a size (examples: 4096, 512B, 64KiB, 2MiB)"),
            (["train", "--data", "/nonexistent/x.csv"], "pdmm: /nonexistent/x.csv: cannot read file"),
            (["train", "--epochs", "x"], "pdmm: --epochs: 'x' is not an integer"),
            (["train", "--k", "0", "--mode", "local"], "pdmm: k must be between 1 and L = 4, got 0"),
            (["train", "--batch", "0"], "pdmm: batch size must be at least 1, got 0"),
            (["train", "--layers", "64,0,10"], "pdmm: width 1 is 0: every layer needs at least one unit"),
            (["train", "--budget", "1KiB", "--epochs", "1"], ""),
            (["train", "--threads", "0"], "pdmm: --threads: must be at least 1, got 0"),
            (["train", "--threads", "17"], "pdmm: --threads: at most 16"),
            (["frobnicate"], "pdmm: unknown command 'frobnicate' (try pdmm --help)"),
            (["report", "--format", "xml"], "pdmm: --format: unknown format 'xml' (expected md, csv, json)"),
            (["fit"], "pdmm: fit needs --budget SIZE"),
            (["train", "--mode", "pdmm", "--lambda-max", "1"], "pdmm: lambdaMax: must satisfy 0 <= lambdaMax < 1"),
            (["train", "--optimizer", "adam"], "pdmm: unknown optimizer 'adam' (expected sgd, momentum, riemannian)"),
        ]
        for (args, message) in cases {
            let r = run(args)
            XCTAssertEqual(r.code, 2, "\(args)")
            let lines = r.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(args): \(r.err)")
            if !message.isEmpty { XCTAssertEqual(String(lines.first ?? ""), message, "\(args)") }
        }
        let budget = run(["train", "--budget", "1KiB", "--epochs", "1", "--threads", "1"])
        XCTAssertTrue(budget.err.hasPrefix("pdmm: plan needs 261928 writable bytes but the budget is 1024 bytes (short by 260904 bytes):"))
    }

    func testHelpOnEveryCommand() {
        for c in ["report", "train", "fit", "bench", "claims", "compare", "reference"] {
            let r = run([c, "--help"])
            XCTAssertEqual(r.code, 0, c)
            XCTAssertTrue(r.out.contains("pdmm \(c)"), c)
        }
    }

    func testCSVDataTrainsAndLabelColumnFlag() throws {
        let dir = NSTemporaryDirectory() + "pdmm-csv-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "label,a,b\n"
        for i in 0..<60 { text += "\(i % 2),\(i % 2 == 0 ? 1.0 : -1.0),\(Double(i) / 60)\n" }
        try text.write(toFile: dir + "/d.csv", atomically: true, encoding: .utf8)
        let r = run(["train", "--data", dir + "/d.csv", "--label-column", "label", "--layers", "2,8,2", "--epochs", "200", "--lr", "0.2"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("test accuracy 100.00%"), r.out)
    }
}
