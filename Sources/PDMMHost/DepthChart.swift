import Foundation
import PDMMEngine

/// The report's picture: planned activation bytes (layer inputs) and total
/// writable bytes against depth L, one line per mode, as a self-contained SVG.
public enum DepthChart {
    public static func svg(hiddenWidth: Int, input: Int, classes: Int, batch: Int, ks: [Int],
                           optimizer: OptimizerKind, depths: ClosedRange<Int> = 2...16) throws -> String {
        var modes: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in ks { modes.append(.local(k: k)) }
        for k in ks { modes.append(.blockwise(k: k)) }
        var series: [(String, [(Int, Int, Int)])] = []  // (name, [(L, act, writable)])
        for m in modes {
            var pts: [(Int, Int, Int)] = []
            for L in depths {
                if case .local(let k) = m, k > L { continue }
                if case .blockwise(let k) = m, k > L { continue }
                let widths = [input] + [Int](repeating: hiddenWidth, count: L - 1) + [classes]
                let p = try MemoryPlan(shape: NetworkShape(widths: widths), batch: batch, mode: m, optimizer: optimizer)
                pts.append((L, p.layerInputBytes, p.peakWritable))
            }
            series.append((m.name, pts))
        }
        let W = 980.0, H = 420.0, pad = 60.0, gap = 40.0
        let pw = (W - 2 * pad - gap) / 2, ph = H - 2 * pad
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H + 20 * Double(series.count / 3 + 1)))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (panel, title) in ["activation bytes (layer inputs)", "peak writable bytes"].enumerated() {
            let x0 = pad + Double(panel) * (pw + gap)
            var maxY = 1
            for (_, pts) in series { for p in pts { maxY = max(maxY, panel == 0 ? p.1 : p.2) } }
            s += "<text x=\"\(x0 + pw / 2)\" y=\"\(pad - 20)\" text-anchor=\"middle\" font-size=\"13\">\(title), batch \(batch), width \(hiddenWidth)</text>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(pad + ph)\" x2=\"\(x0 + pw)\" y2=\"\(pad + ph)\" stroke=\"black\"/>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(pad)\" x2=\"\(x0)\" y2=\"\(pad + ph)\" stroke=\"black\"/>\n"
            for t in 0...4 {
                let v = Double(maxY) * Double(t) / 4
                let y = pad + ph - ph * Double(t) / 4
                s += "<text x=\"\(x0 - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(String(format: "%.0f", v / 1024))K</text>\n"
                s += "<line x1=\"\(x0)\" y1=\"\(y)\" x2=\"\(x0 + pw)\" y2=\"\(y)\" stroke=\"#ddd\"/>\n"
            }
            let span = Double(depths.upperBound - depths.lowerBound)
            for L in depths {
                let x = x0 + pw * Double(L - depths.lowerBound) / span
                s += "<text x=\"\(x)\" y=\"\(pad + ph + 14)\" text-anchor=\"middle\">\(L)</text>\n"
            }
            s += "<text x=\"\(x0 + pw / 2)\" y=\"\(pad + ph + 30)\" text-anchor=\"middle\">depth L</text>\n"
            for (i, (_, pts)) in series.enumerated() {
                let path = pts.map { p -> String in
                    let x = x0 + pw * Double(p.0 - depths.lowerBound) / span
                    let y = pad + ph - ph * Double(panel == 0 ? p.1 : p.2) / Double(maxY)
                    return String(format: "%.1f,%.1f", x, y)
                }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(colors[i % colors.count])\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            }
        }
        for (i, (name, _)) in series.enumerated() {
            let x = pad + Double(i % 3) * 200, y = H + Double(i / 3) * 18 - 10
            s += "<rect x=\"\(x)\" y=\"\(y - 9)\" width=\"12\" height=\"10\" fill=\"\(colors[i % colors.count])\"/>"
            s += "<text x=\"\(x + 16)\" y=\"\(y)\">\(name)</text>\n"
        }
        return s + "</svg>\n"
    }
}
