import Foundation
import PDMMEngine
import PDMMHost
import XCTest

/// `pdmm train --mode pdmm`: its flags, its summary, `--trace` and the phase table.
final class PDMMToolTests: XCTestCase {
    func run(_ args: [String]) -> (code: Int32, out: String, err: String) {
        var out = "", err = ""
        let tool = Tool(out: { out += $0 + "\n" }, err: { err += $0 + "\n" })
        let code = tool.run(args)
        return (code, out, err)
    }

    /// A shorter run than the defaults (the test build's engine is unoptimised).
    let short = ["train", "--mode", "pdmm", "--epochs", "8", "--selection-epochs", "4"]

    func line(_ text: String, prefix: String) -> String? {
        text.split(separator: "\n").map(String.init).first { $0.hasPrefix(prefix) }
    }

    /// The cells of a Markdown table row, trimmed.
    func cells(_ row: String) -> [String] {
        row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func testSummaryNamesSelectionAndThresholdOrigin() throws {
        let r = run(short)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("D_Ideal: confident learning (Northcutt et al. 2021): per class the 20.0% of samples "
                                     + "with the highest out-of-fold probability of their own label (3-fold bp, 4 epochs per fold)"), r.out)
        let sizes = try XCTUnwrap(line(r.out, prefix: "|D| "))
        // |D_Ideal| = train + held out, and |D_new| = |D| - |D_Ideal|
        let n = sizes.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        XCTAssertEqual(n.count, 5, sizes)
        XCTAssertEqual(n[1], n[2] + n[3], sizes)
        XCTAssertEqual(n[0], n[1] + n[4], sizes)
        XCTAssertTrue(r.out.contains("nats: the 0.95-quantile of G_Ideal's deviations on the \(n[3]) held-out D_Ideal samples"), r.out)
        let e = try XCTUnwrap(line(r.out, prefix: "|E| "))
        XCTAssertTrue(e.contains("of D, an outcome)"), e)
        XCTAssertTrue(r.out.contains("the full trace: --trace FILE"), r.out)
        let lambda = try XCTUnwrap(line(r.out, prefix: "lambda on the 360 test samples: min "))
        let five = lambda.components(separatedBy: "min ")[1].split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(five.count, 5, lambda)  // min, quartiles, max
        XCTAssertEqual(five, five.sorted(), lambda)
        XCTAssertLessThanOrEqual(five[4], 0.5)
        XCTAssertNotNil(line(r.out, prefix: "A_final differs from the stable head on "), r.out)

        let q = run(short + ["--threshold-quantile", "0.8", "--ideal-select", "random"])
        XCTAssertEqual(q.code, 0, q.err)
        XCTAssertTrue(q.out.contains("D_Ideal: a seeded class-stratified random 20.0% of each class (for comparison)"), q.out)
        XCTAssertTrue(q.out.contains("nats: the 0.8-quantile of G_Ideal's deviations on the "), q.out)
        let v = run(short + ["--threshold", "0.5"])
        XCTAssertTrue(v.out.contains("I_threshold 0.5000 nats: given (--threshold)"), v.out)
        let f = run(short + ["--error-fraction", "0.08"])
        XCTAssertTrue(f.out.contains("nats: set so that E holds 8.0% of D (--error-fraction 0.08)"), f.out)
        XCTAssertTrue(f.out.contains("(8.0% of D, as set by --error-fraction): the D_new samples deviating more than I_threshold"), f.out)
    }

    func testEmptyErrorGroupIsReportedAndItsPhasesSkipped() {
        let r = run(short + ["--threshold", "1000", "--ideal-select", "random"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("|E| 0 (0.0% of D): E is empty: defect learning and IVC skipped"), r.out)
        XCTAssertFalse(r.out.contains("| local defect learning"), r.out)
        XCTAssertFalse(r.out.contains("| information value calibration"), r.out)
        // no selection phase either (random selection is made when the pipeline is built)
        let phases = r.out.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| phase") && !$0.hasPrefix("| **") }
        XCTAssertEqual(phases.map { cells(String($0))[0] },
                       ["ideal learning (blockwise(2))", "error group separation", "dual-system decision"])
    }

    func testTraceHasOneRowPerIVCStepStartingAtZeroDelta() throws {
        let path = NSTemporaryDirectory() + "pdmm-trace-\(getpid()).csv"
        defer { unlink(path) }
        let r = run(short + ["--trace", path])
        XCTAssertEqual(r.code, 0, r.err)
        let ivc = try XCTUnwrap(line(r.out, prefix: "IVC: "), r.out)
        let steps = try XCTUnwrap(Int(ivc.dropFirst(5).prefix { $0.isNumber }), ivc)
        XCTAssertGreaterThan(steps, 1)
        let rows = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "step,U_E,L_BP,L_Delta")
        XCTAssertEqual(rows.count - 1, steps)
        let first = rows[1].split(separator: ",").map { Double($0)! }
        XCTAssertEqual(first.count, 4)
        XCTAssertEqual(first[0], 10)   // after the 10th defect step (--ivc-period 10)
        XCTAssertEqual(first[3], 0)    // L_Delta: G_Ideal is its provenance at the first IVC step
        XCTAssertTrue(first[1] >= 0 && first[1] <= 1)
        let last = rows[rows.count - 1].split(separator: ",").map { Double($0)! }
        XCTAssertGreaterThan(last[3], 0)
        // the summary's first and last rows are the trace's
        XCTAssertTrue(ivc.contains(String(format: "first (step 10) U_E %.4f L_BP %.4f L_Delta 0.000000", first[1], first[2])), ivc)
        XCTAssertTrue(ivc.contains(String(format: "last (step %d) U_E %.4f", Int(last[0]), last[1])), ivc)
        // an unwritable trace fails cleanly
        let bad = run(short + ["--trace", "/nonexistent-dir/t.csv"])
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.err.hasPrefix("pdmm: /nonexistent-dir/t.csv: cannot write"), bad.err)
    }

    func testFlagConflictsAndBadValuesGiveExitTwo() {
        let cases: [([String], String)] = [
            (["--threshold", "1", "--error-fraction", "0.1"],
             "pdmm: give only one of --threshold-quantile, --threshold and --error-fraction (got --threshold, --error-fraction)"),
            (["--threshold-quantile", "0.9", "--threshold", "1"],
             "pdmm: give only one of --threshold-quantile, --threshold and --error-fraction (got --threshold, --threshold-quantile)"),
            (["--threshold-quantile", "0.9", "--error-fraction", "0.1"],
             "pdmm: give only one of --threshold-quantile, --threshold and --error-fraction (got --error-fraction, --threshold-quantile)"),
            (["--threshold-quantile", "1.5"], "pdmm: threshold quantile: must satisfy 0 < q < 1"),
            (["--ideal-select", "verified"], "pdmm: --ideal-select verified needs --verified-column N|NAME"),
            (["--ideal-select", "best"], "pdmm: --ideal-select: unknown selection 'best' (expected verified, confident, random)"),
            (["--ivc-target", "copy"], "pdmm: --ivc-target: unknown target 'copy' (expected ideal, error-aware-copy)"),
            (["--holdout-fraction", "1"], "pdmm: holdoutFraction: must satisfy 0 < holdoutFraction < 1"),
            (["--selection-epochs", "-1"], "pdmm: --selection-epochs: must be at least 0, got -1"),
        ]
        for (extra, message) in cases {
            let r = run(["train", "--mode", "pdmm"] + extra)
            XCTAssertEqual(r.code, 2, "\(extra)")
            XCTAssertEqual(r.err, message + "\n", "\(extra)")
            XCTAssertEqual(r.out, "", "\(extra)")
        }
        let c = run(["compare", "--threshold", "1", "--threshold-quantile", "0.5"])
        XCTAssertEqual(c.code, 2)
        XCTAssertEqual(c.err, "pdmm: give only one of --threshold-quantile, --threshold and --error-fraction (got --threshold, --threshold-quantile)\n")
    }

    func testRandomSelectionReproducesItsHash() throws {
        func hash(_ extra: [String]) throws -> String {
            let r = run(short + extra)
            XCTAssertEqual(r.code, 0, r.err)
            return try XCTUnwrap(line(r.out, prefix: "weights hash "), r.out)
        }
        let a = try hash(["--ideal-select", "random"]), b = try hash(["--ideal-select", "random"])
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, try hash(["--ideal-select", "random", "--seed", "2"]))
        XCTAssertNotEqual(a, try hash(["--ideal-select", "confident"]))
    }

    func testPhaseTablePeakRowIsMaxOfPlannedPlusAlsoResident() throws {
        for extra in [[], ["--ivc-target", "error-aware-copy"]] {
            let r = run(short + extra)
            XCTAssertEqual(r.code, 0, r.err)
            let rows = r.out.split(separator: "\n").map(String.init).filter { $0.hasPrefix("| ") }
            XCTAssertEqual(cells(rows[0]).prefix(5), ["phase", "planned peak writable B", "measured peak writable B",
                                                      "also resident B", "read-only B"])
            let phases = rows.dropFirst().filter { !$0.hasPrefix("| **") }.map(cells)
            let peak = try XCTUnwrap(rows.first { $0.hasPrefix("| **pipeline peak") }.map(cells))
            XCTAssertEqual(phases.map { $0[0] }, ["ideal selection (confident, 3-fold bp)", "ideal learning (blockwise(2))",
                                                  "error group separation", "local defect learning (local(2))",
                                                  extra.isEmpty ? "information value calibration (G_Ideal)"
                                                                : "information value calibration (error-aware copy)",
                                                  "dual-system decision"])
            let planned = phases.map { Int($0[1])! + Int($0[3])! }
            let measured = phases.map { Int($0[2])! + Int($0[3])! }
            XCTAssertEqual(Int(peak[1]), planned.max())
            XCTAssertEqual(Int(peak[2]), measured.max())
            if extra.isEmpty {
                // IVC on G_Ideal: the defect and calibration arenas are resident together
                XCTAssertGreaterThan(Int(phases[3][3])!, 0)
                XCTAssertGreaterThan(Int(phases[4][3])!, 0)
                XCTAssertEqual(Int(phases[3][1])! + Int(phases[3][3])!, Int(phases[4][1])! + Int(phases[4][3])!)
            }
            // a wall time per phase; the peak row's is their sum
            let secs = phases.map { Double($0[9])! }
            XCTAssertEqual(Double(peak[9])!, secs.reduce(0, +), accuracy: 0.0025 * Double(secs.count))
        }
    }

    func testVerifiedColumnSelectsDIdealByDefault() throws {
        let dir = NSTemporaryDirectory() + "pdmm-verified-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "label,verified,a,b\n"
        for i in 0..<200 { text += "\(i % 2),\(i % 4 < 2 ? 1 : 0),\(i % 2 == 0 ? 1.0 : -1.0),\(Double(i % 7) / 7)\n" }
        try text.write(toFile: dir + "/d.csv", atomically: true, encoding: .utf8)
        let base = ["train", "--mode", "pdmm", "--data", dir + "/d.csv", "--label-column", "label", "--layers", "2,8,8,2",
                    "--epochs", "3", "--verified-column", "verified"]
        let r = run(base)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("D_Ideal: the samples the data flags as verified (--verified-column)"), r.out)
        XCTAssertFalse(r.out.contains("| ideal selection"), r.out)
        let c = run(base + ["--ideal-select", "confident", "--selection-epochs", "2"])
        XCTAssertEqual(c.code, 0, c.err)
        XCTAssertTrue(c.out.contains("D_Ideal: confident learning"), c.out)
        XCTAssertTrue(c.out.contains("| ideal selection (confident, 3-fold bp) |"), c.out)
    }
}
