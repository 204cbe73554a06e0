import Foundation
import PDMMEngine
import PDMMHost
import XCTest

/// `pdmm report`, `fit` and `claims` on convolutional networks (`--net`).
final class CNNReportTests: XCTestCase {
    func run(_ args: [String]) -> (code: Int32, out: String, err: String) {
        var out = "", err = ""
        let tool = Tool(out: { out += $0 + "\n" }, err: { err += $0 + "\n" })
        let code = tool.run(args)
        return (code, out, err)
    }

    /// A CNN over the built-in digits' 1x8x8 images (64 features, 10 classes).
    let digitsCNN = "1x8x8: conv 8 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, flatten, dense 10"
    /// The CNN block's default network (`pdmm claims`).
    let claimsCNN = "1x28x28: conv 16 3x3 same, relu, maxpool 2x2, conv 16 3x3 same, relu, "
        + "conv 32 3x3 same, relu, maxpool 2x2, conv 32 3x3 same, relu, flatten, dense 10"

    func shape(_ net: String) throws -> NetworkShape { try NetworkShape(spec: NetworkSpec.parse(net)) }

    /// The cells of the Markdown table rows that start with `| name |`, after `section`.
    func cells(_ text: String, row name: String, after section: String) -> [String]? {
        guard let r = text.range(of: section) else { return nil }
        for line in text[r.upperBound...].split(separator: "\n") where line.hasPrefix("| \(name) |") {
            // ["", name, cell, ..., last cell]: c[1] is the row's name.
            return line.split(separator: "|", omittingEmptySubsequences: false).dropLast().map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    func testReportOnCNNMeasuredEqualsPlannedInEveryMode() throws {
        let modes: [TrainingMode] = [.bp, .bpCheckpoint, .local(k: 1), .local(k: 2), .blockwise(k: 1), .blockwise(k: 2)]
        // Built-in digits (64 features, 10 classes) and synthetic data (a 1-D series, 4 classes).
        for net in [digitsCNN, "6x1x100: conv 8 1x5 same, relu, maxpool 1x2, conv 8 1x5 same, relu, flatten, dense 4"] {
            let s = try shape(net)
            let md = run(["report", "--net", net, "--k", "1,2"])
            XCTAssertEqual(md.code, 0, md.err)
            XCTAssertTrue(md.out.hasPrefix("# Memory report: \(s.description), batch 32"), md.out)
            for m in modes {
                let c = try XCTUnwrap(cells(md.out, row: m.name, after: "## Ratios against bp"), "\(net): no row \(m.name)")
                XCTAssertEqual(c.last, "yes", "\(net) \(m.name): measured != planned: \(c)")
                let plan = try MemoryPlan(shape: s, batch: 32, mode: m, optimizer: .sgd)
                XCTAssertEqual(c[2], "\(plan.layerInputBytes)", "\(net) \(m.name)")
                // The Markdown's planned and measured rows carry the plan's numbers.
                let row = "| \(m.name) | " + MemoryCategory.allCases.map { "\(plan.bytes[$0])" }.joined(separator: " | ")
                    + " | \(plan.peakWritable) |"
                XCTAssertEqual(md.out.components(separatedBy: row + "\n").count - 1, 2, "\(net): planned and measured rows \(row)")
            }
            XCTAssertTrue(md.out.contains("Pipeline peak writable: planned "), md.out)
        }

        // JSON: "network" always, "layers" only for a dense stack; planned == measured per category.
        let j = run(["report", "--net", digitsCNN, "--k", "1,2", "--format", "json"])
        XCTAssertEqual(j.code, 0, j.err)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any])
        let s = try shape(digitsCNN)
        XCTAssertEqual(obj["network"] as? String, s.description)
        XCTAssertNil(obj["layers"])
        let rows = try XCTUnwrap(obj["modes"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["mode"] as? String }, modes.map(\.name))
        for (r, m) in zip(rows, modes) {
            let plan = try MemoryPlan(shape: s, batch: 32, mode: m, optimizer: .sgd)
            let planned = try XCTUnwrap(r["planned"] as? [String: Int]), measured = try XCTUnwrap(r["measured"] as? [String: Int])
            for c in MemoryCategory.allCases {
                XCTAssertEqual(planned[c.name], plan.bytes[c], "\(m.name) \(c.name)")
                XCTAssertEqual(measured[c.name], plan.bytes[c], "\(m.name) \(c.name) measured")
            }
            XCTAssertEqual(r["layer_inputs_measured"] as? Int, plan.layerInputBytes, m.name)
        }
        let pdmm = try XCTUnwrap(obj["pdmm"] as? [String: Any])
        XCTAssertEqual(pdmm["peak_writable_planned"] as? Int, pdmm["peak_writable_measured"] as? Int)

        let dense = run(["report", "--k", "1", "--format", "json"])
        XCTAssertEqual(dense.code, 0, dense.err)
        let d = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(dense.out.utf8)) as? [String: Any])
        XCTAssertEqual(d["layers"] as? [Int], [64, 128, 128, 128, 10])
        XCTAssertEqual(d["network"] as? String, "64-128-128-128-10")
    }

    func testReportInputShapeWithoutNetIsAFlattenedDenseStack() throws {
        let r = run(["report", "--input-shape", "1x8x8", "--layers", "64,32,10", "--k", "1", "--format", "csv"])
        XCTAssertEqual(r.code, 0, r.err)
        let s = try shape("1x8x8: flatten, dense 32, relu, dense 10")
        let plan = try MemoryPlan(shape: s, batch: 32, mode: .local(k: 1), optimizer: .sgd)
        XCTAssertTrue(r.out.contains("local(1),measured," + MemoryCategory.allCases.map { "\(plan.bytes[$0])" }.joined(separator: ",")), r.out)
    }

    func testFitWithNetPrintsTheTable() throws {
        let r = run(["fit", "--budget", "256KiB", "--net", digitsCNN])
        XCTAssertEqual(r.code, 0, r.err)
        let s = try shape(digitsCNN)
        XCTAssertTrue(r.out.hasPrefix("# Fit: \(s.description) in 256.0 KiB (262144 B)"), r.out)
        for m: TrainingMode in [.bp, .local(k: 1), .local(k: 2), .blockwise(k: 2)] {
            var best = 0
            for b in 1...256 where try MemoryPlan(shape: s, batch: b, mode: m, optimizer: .sgd, packedForward: false).peakWritable <= 262_144 {
                best = b
            }
            XCTAssertGreaterThan(best, 0, m.name)
            XCTAssertTrue(r.out.contains("| \(m.name) | \(best) | "), "\(m.name) \(best): \(r.out)")
        }
        XCTAssertEqual(s.layerCount, 3)
        XCTAssertTrue(r.out.contains("| local(k) | 3 | 3 |"), r.out)
    }

    func testClaimsCNNBlockAgreesWithThePlan() throws {
        let r = run(["claims", "--epochs", "1", "--target", "0"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("# PDMM claims on the built-in digits data"), r.out)
        let block = "## CNN block"
        XCTAssertTrue(r.out.contains(block), r.out)
        let s = try shape(claimsCNN)
        XCTAssertEqual(s.layerCount, 5)
        XCTAssertTrue(r.out.contains("Network `\(s.description)` (L = 5 trainable layers, \(s.totalParameterCount) parameters), batch 32"), r.out)
        let bp = try MemoryPlan(shape: s, batch: 32, mode: .bp, optimizer: .sgd)
        let params = 4 * s.totalParameterCount
        // Activations dominate: more than 10x the parameter bytes.
        XCTAssertGreaterThan(bp.layerInputBytes, 10 * params)
        XCTAssertTrue(r.out.contains("bp's layer-input activations are \(bp.layerInputBytes) B"), r.out)
        XCTAssertTrue(r.out.contains(String(format: "activation/parameter bytes = %.2fx", Double(bp.layerInputBytes) / Double(params))), r.out)
        for m: TrainingMode in [.bp, .local(k: 1), .local(k: 2), .blockwise(k: 1), .blockwise(k: 2)] {
            let plan = try MemoryPlan(shape: s, batch: 32, mode: m, optimizer: .sgd)
            let c = try XCTUnwrap(cells(r.out, row: m.name, after: block), "no CNN row \(m.name)")
            XCTAssertEqual(c[2], "\(plan.bytes[.activationsStored])", m.name)
            XCTAssertEqual(c[3], "\(plan.layerInputBytes)", m.name)
            XCTAssertEqual(c[4], String(format: "%.2fx", Double(bp.layerInputBytes) / Double(plan.layerInputBytes)), m.name)
            XCTAssertEqual(c[7], "\(plan.peakWritable)", m.name)
            XCTAssertEqual(c[8], String(format: "%.2fx", Double(bp.peakWritable) / Double(plan.peakWritable)), m.name)
            XCTAssertEqual(c.last, "yes", "\(m.name): measured != planned")
            if m != .bp { XCTAssertEqual(c[5], String(format: "L/k = %.2fx", plan.claimedRatio), m.name) }
        }
        // local(2) on this CNN: the frozen conv layers' big outputs are not stored.
        let local2 = try MemoryPlan(shape: s, batch: 32, mode: .local(k: 2), optimizer: .sgd)
        XCTAssertEqual(Double(bp.layerInputBytes) / Double(local2.layerInputBytes), 4.75, accuracy: 1e-9)
        let pd = try XCTUnwrap(cells(r.out, row: "PDMM pipeline (k = 2), peak over its phases", after: block))
        XCTAssertEqual(pd[5], "25x (the document, peak)")
        XCTAssertEqual(pd.last, "yes")
        let peak = try XCTUnwrap(Int(pd[7]))
        XCTAssertEqual(pd[8], String(format: "%.2fx", Double(bp.peakWritable) / Double(peak)))
        // The pipeline's peak is at least its local(2) defect phase's plan.
        XCTAssertGreaterThanOrEqual(peak, local2.peakWritable)

        // --cnn-only prints the same block alone; --net picks another CNN.
        let only = run(["claims", "--cnn-only", "--net", digitsCNN, "--cnn-batch", "8"])
        XCTAssertEqual(only.code, 0, only.err)
        XCTAssertTrue(only.out.hasPrefix(block), only.out)
        let d = try shape(digitsCNN)
        let dbp = try MemoryPlan(shape: d, batch: 8, mode: .bp, optimizer: .sgd)
        let dl1 = try MemoryPlan(shape: d, batch: 8, mode: .local(k: 1), optimizer: .sgd)
        let c = try XCTUnwrap(cells(only.out, row: "local(1)", after: block))
        XCTAssertEqual(c[4], String(format: "%.2fx", Double(dbp.layerInputBytes) / Double(dl1.layerInputBytes)))
    }

    func testSVGHasTheCNNSeries() throws {
        let path = NSTemporaryDirectory() + "pdmm-cnn-\(getpid()).svg"
        defer { unlink(path) }
        let r = run(["report", "--net", digitsCNN, "--k", "1,2", "--format", "csv", "--svg", path])
        XCTAssertEqual(r.code, 0, r.err)
        let svg = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        for text in ["local(1) CNN", "local(2) dense", "claimed L/2", "CNN 1x8x8: conv 8 3x3 x (L-1), dense 10"] {
            XCTAssertTrue(svg.contains(text), text)
        }
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2 * 6 + 2 * (2 * 2 + 2))
        // The chart's CNN of depth L has L layers; its L/k claim is the ratio the chart plots.
        let cnn = try DepthChart.cnnShape(input: TensorShape(channels: 1, height: 8, width: 8), channels: 8, classes: 10, layers: 4)
        XCTAssertEqual(cnn.layerCount, 4)
        XCTAssertEqual(cnn.description, "1x8x8: conv 8 3x3 same, relu, conv 8 3x3 same, relu, conv 8 3x3 same, relu, flatten, dense 10")
    }

    func testNetworkMistakesExitTwoWithTheMessage() {
        let cases: [([String], String)] = [
            (["report", "--net", digitsCNN, "--input-shape", "1x28x28"],
             "pdmm: network: --input-shape 1x28x28 disagrees with the network's input 1x8x8"),
            (["fit", "--budget", "1MiB", "--net", "1x8x8: conv 8 3x3, relu"],
             "pdmm: network: the last layer must be dense (its units are the classes), not relu"),
            (["train", "--epochs", "1", "--net", claimsCNN],
             "pdmm: network: the network's input 1x28x28 holds 784 values but the data has 64 features"),
            (["claims", "--cnn-only", "--net", "1x8x8: conv 8 3x3 same, relu, flatten, dense 10", "--k", "3"],
             "pdmm: k must be between 1 and L = 2, got 3"),
        ]
        for (args, message) in cases {
            let r = run(args)
            XCTAssertEqual(r.code, 2, "\(args)")
            XCTAssertEqual(r.err, message + "\n", "\(args)")
            XCTAssertEqual(r.out, "", "\(args)")
        }
    }
}
