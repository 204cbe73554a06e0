import Foundation
import PDMMEngine

/// The report's picture, a self-contained SVG of planned bytes against depth L:
/// - top row, a dense ReLU stack (input, L - 1 hidden layers of `hiddenWidth`,
///   classes): activation bytes (layer inputs) and peak writable bytes, one line per mode;
/// - bottom row, the L/k claim: bp / local(k) of the layer-input activation bytes
///   and of the peak writable bytes, for a CNN series (`cnnShape`: L - 1 conv 3x3
///   "same" layers of `cnnChannels` filters at the input's spatial size, then a dense
///   head; solid lines) beside the same dense stack (dashed), and the claimed L/k (grey, dotted).
public enum DepthChart {
    /// One polyline: (L, value) points.
    struct Line {
        var name: String
        var color: String
        var dash: String?
        var strokeWidth: Double
        var points: [(Int, Double)]
        /// Text at the line's last point (the claim lines: "L/k").
        var endLabel: String? = nil
    }

    static let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]

    public static func svg(hiddenWidth: Int, input: Int, classes: Int, batch: Int, ks: [Int],
                           optimizer: OptimizerKind, depths: ClosedRange<Int> = 2...16,
                           cnnInput: TensorShape? = nil, cnnChannels: Int = 16,
                           cnnDepths: ClosedRange<Int> = 2...8) throws -> String {
        var modes: [TrainingMode] = [.bp, .bpCheckpoint]
        for k in ks { modes.append(.local(k: k)) }
        for k in ks { modes.append(.blockwise(k: k)) }
        func dense(_ L: Int) throws -> NetworkShape {
            try NetworkShape(widths: [input] + [Int](repeating: hiddenWidth, count: L - 1) + [classes])
        }
        // Top row: bytes per mode of the dense stack.
        var act: [Line] = [], wr: [Line] = []
        for (i, m) in modes.enumerated() {
            var a: [(Int, Double)] = [], w: [(Int, Double)] = []
            for L in depths {
                if case .local(let k) = m, k > L { continue }
                if case .blockwise(let k) = m, k > L { continue }
                let p = try MemoryPlan(shape: dense(L), batch: batch, mode: m, optimizer: optimizer)
                a.append((L, Double(p.layerInputBytes)))
                w.append((L, Double(p.peakWritable)))
            }
            let c = colors[i % colors.count]
            act.append(Line(name: m.name, color: c, dash: nil, strokeWidth: 2, points: a))
            wr.append(Line(name: m.name, color: c, dash: nil, strokeWidth: 2, points: w))
        }
        // Bottom row: bp / local(k) ratios, CNN and dense, and the claim L/k.
        let image = cnnInput ?? defaultCNNInput(features: input)
        // NetworkShape bounds input words x output words of every layer by maxWords: at most
        // that many filters (at least 1) for the series' same-size convolutions.
        var side = 1
        while (side + 1) * (side + 1) <= NetworkShape.maxWords { side += 1 }
        let cnnChannels = min(cnnChannels, max(side / (image.height * image.width), 1))
        var actRatio: [Line] = [], wrRatio: [Line] = []
        var legend2: [(String, String, String?)] = []
        for (i, k) in ks.enumerated() {
            let c = colors[(i + 2) % colors.count]  // local(k)'s colour in the top row
            let series: [(String, String?, Double, (Int) throws -> NetworkShape)] = [
                ("CNN", nil, 2, { L in try cnnShape(input: image, channels: cnnChannels, classes: classes, layers: L) }),
                ("dense", "6,4", 1.5, dense),
            ]
            for (kind, dash, width, make) in series {
                var a: [(Int, Double)] = [], w: [(Int, Double)] = []
                for L in cnnDepths where k <= L {
                    // A depth the engine refuses (sizeTooLarge) is left out of the line.
                    guard let s = try? make(L) else { continue }
                    let bp = try MemoryPlan(shape: s, batch: batch, mode: .bp, optimizer: optimizer)
                    let lo = try MemoryPlan(shape: s, batch: batch, mode: .local(k: k), optimizer: optimizer)
                    a.append((L, Double(bp.layerInputBytes) / Double(lo.layerInputBytes)))
                    w.append((L, Double(bp.peakWritable) / Double(lo.peakWritable)))
                }
                let name = "local(\(k)) \(kind)"
                actRatio.append(Line(name: name, color: c, dash: dash, strokeWidth: width, points: a))
                wrRatio.append(Line(name: name, color: c, dash: dash, strokeWidth: width, points: w))
                legend2.append((name, c, dash))
            }
            let claim = cnnDepths.filter { $0 >= k }.map { ($0, Double($0) / Double(k)) }
            let line = Line(name: "claimed L/\(k)", color: "#888888", dash: "2,3", strokeWidth: 1.5, points: claim,
                            endLabel: "L/\(k)")
            actRatio.append(line)
            wrRatio.append(line)
        }
        legend2.append(("claimed L/k (one per k)", "#888888", "2,3"))

        let W = 980.0, ph = 300.0, pad = 60.0, gap = 60.0
        let pw = (W - 2 * pad - gap) / 2
        let legend1Rows = (act.count + 2) / 3, legend2Rows = (legend2.count + 2) / 3
        let row1 = pad, legend1 = row1 + ph + 50
        let row2 = legend1 + Double(legend1Rows) * 18 + 50
        let legend2Y = row2 + ph + 50
        let H = legend2Y + Double(legend2Rows) * 18 + 10
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let kib: (Double) -> String = { String(format: "%.0fK", $0 / 1024) }
        let times: (Double) -> String = { String(format: "%.0fx", $0) }
        s += panel(x0: pad, y0: row1, w: pw, h: ph, depths: depths, lines: act, label: kib,
                   title: "activation bytes (layer inputs), batch \(batch), width \(hiddenWidth)")
        s += panel(x0: pad + pw + gap, y0: row1, w: pw, h: ph, depths: depths, lines: wr, label: kib,
                   title: "peak writable bytes, batch \(batch), width \(hiddenWidth)")
        s += legend(act.map { ($0.name, $0.color, nil) }, y: legend1, x0: pad)
        let cnnText = "CNN \(image.description): conv \(cnnChannels) \(kernelText(image)) x (L-1), dense \(classes)"
        s += "<text x=\"\(W / 2)\" y=\"\(row2 - 42)\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
        s += "The L/k claim: bp / local(k), \(xmlEscaped(cnnText)) (solid) vs dense (dashed)</text>\n"
        s += panel(x0: pad, y0: row2, w: pw, h: ph, depths: cnnDepths, lines: actRatio, label: times,
                   title: "layer-input activation ratio bp / local(k)", step: 4)
        s += panel(x0: pad + pw + gap, y0: row2, w: pw, h: ph, depths: cnnDepths, lines: wrRatio, label: times,
                   title: "peak writable ratio bp / local(k)", step: 4)
        s += legend(legend2, y: legend2Y, x0: pad)
        return s + "</svg>\n"
    }

    /// The chart's CNN of depth L over `input`: L - 1 conv layers of `channels`
    /// filters, 3x3 "same" (1x3 on a 1xN series, 3x1 on an Nx1 one), each with ReLU,
    /// then flatten and a dense layer of `classes`.
    public static func cnnShape(input: TensorShape, channels: Int, classes: Int, layers L: Int) throws -> NetworkShape {
        var text = input.description + ":"
        for _ in 1..<max(L, 1) { text += " conv \(channels) \(kernelText(input)) same, relu," }
        text += " flatten, dense \(classes)"
        let spec: NetworkSpec
        do { spec = try NetworkSpec.parse(text) } catch { throw UsageError("depth chart: \(text): \(error.message)") }
        return try NetworkShape(spec: spec)
    }

    /// The CNN series' input when the report's network is flat: a square image
    /// (1xSxS) when the feature count is a square, else a 1-channel series.
    static func defaultCNNInput(features n: Int) -> TensorShape {
        var s = 1
        while (s + 1) * (s + 1) <= n { s += 1 }
        return s * s == n ? TensorShape(channels: 1, height: s, width: s) : TensorShape(channels: 1, height: 1, width: n)
    }

    static func kernelText(_ t: TensorShape) -> String {
        if t.height == 1 { return "1x3" }
        if t.width == 1 { return "3x1" }
        return "3x3"
    }

    static func xmlEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// One panel: axes, 4 grid lines labelled by `label`, the depth axis, the lines.
    static func panel(x0: Double, y0: Double, w: Double, h: Double, depths: ClosedRange<Int>, lines: [Line],
                      label: (Double) -> String, title: String, step: Double? = nil) -> String {
        var maxY = 1.0
        for l in lines { for p in l.points { maxY = max(maxY, p.1) } }
        if let step { maxY = (maxY / step).rounded(.up) * step }  // whole-number grid lines
        var s = "<text x=\"\(x0 + w / 2)\" y=\"\(y0 - 20)\" text-anchor=\"middle\" font-size=\"13\">\(xmlEscaped(title))</text>\n"
        s += "<line x1=\"\(x0)\" y1=\"\(y0 + h)\" x2=\"\(x0 + w)\" y2=\"\(y0 + h)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(x0)\" y1=\"\(y0)\" x2=\"\(x0)\" y2=\"\(y0 + h)\" stroke=\"black\"/>\n"
        for t in 0...4 {
            let y = y0 + h - h * Double(t) / 4
            s += "<text x=\"\(x0 - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(label(maxY * Double(t) / 4))</text>\n"
            s += "<line x1=\"\(x0)\" y1=\"\(y)\" x2=\"\(x0 + w)\" y2=\"\(y)\" stroke=\"#ddd\"/>\n"
        }
        let span = Double(max(depths.upperBound - depths.lowerBound, 1))
        for L in depths {
            let x = x0 + w * Double(L - depths.lowerBound) / span
            s += "<text x=\"\(x)\" y=\"\(y0 + h + 14)\" text-anchor=\"middle\">\(L)</text>\n"
        }
        s += "<text x=\"\(x0 + w / 2)\" y=\"\(y0 + h + 30)\" text-anchor=\"middle\">depth L</text>\n"
        for l in lines where !l.points.isEmpty {
            let path = l.points.map { p -> String in
                let x = x0 + w * Double(p.0 - depths.lowerBound) / span
                let y = y0 + h - h * p.1 / maxY
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(l.color)\" stroke-width=\"\(l.strokeWidth)\""
            if let d = l.dash { s += " stroke-dasharray=\"\(d)\"" }
            s += " points=\"\(path)\"><title>\(xmlEscaped(l.name))</title></polyline>\n"
            if let t = l.endLabel, let p = l.points.last {
                let x = x0 + w * Double(p.0 - depths.lowerBound) / span + 4
                let y = y0 + h - h * p.1 / maxY + 4
                s += "<text x=\"\(x)\" y=\"\(y)\" fill=\"\(l.color)\">\(xmlEscaped(t))</text>\n"
            }
        }
        return s
    }

    /// Legend entries in rows of three: a short line sample in the entry's colour and dash.
    static func legend(_ entries: [(String, String, String?)], y: Double, x0: Double) -> String {
        var s = ""
        for (i, (name, color, dash)) in entries.enumerated() {
            let x = x0 + Double(i % 3) * 280, yy = y + Double(i / 3) * 18
            s += "<line x1=\"\(x)\" y1=\"\(yy - 4)\" x2=\"\(x + 24)\" y2=\"\(yy - 4)\" stroke=\"\(color)\" stroke-width=\"3\""
            if let d = dash { s += " stroke-dasharray=\"\(d)\"" }
            s += "/><text x=\"\(x + 30)\" y=\"\(yy)\">\(xmlEscaped(name))</text>\n"
        }
        return s
    }
}
