/// The network and input options every front end shares (`pdmm`, the board
/// program): `--net TEXT`, `--input-shape CxHxW`, `--layers W,W,...`.
public enum NetworkOptions {
    /// The network of a run over data with `features` values and `classes` classes:
    /// - `net`: the network text; its `INPUT:` prefix may be left out when
    ///   `inputShape` is given (if both are given they must agree);
    /// - else `layers`: a dense ReLU stack over these widths (over a flattened
    ///   `inputShape` when given);
    /// - else `defaultWidths` with its first and last width replaced by the data's
    ///   feature and class counts.
    /// The network's input must hold exactly `features` values.
    ///
    /// ```swift
    /// let s = try NetworkOptions.shape(net: "conv 8 3x3, relu, maxpool 2x2, flatten, dense 10", inputShape: "1x8x8",
    ///                                  layers: nil, defaultWidths: [64, 10], features: 64, classes: 10)
    /// s.spec.input.description   // "1x8x8"
    /// ```
    public static func shape(net: String?, inputShape: String?, layers: [Int]?, defaultWidths: [Int],
                             features: Int, classes: Int) throws(EngineError) -> NetworkShape {
        var input: TensorShape? = nil
        if let inputShape {
            let t = try TensorShape.parse(inputShape)
            if t.count != features {
                throw .invalidNetwork("--input-shape \(t.description) holds \(t.count) values but the data has \(features) features")
            }
            input = t
        }
        if net == nil && input == nil {
            var widths = layers ?? defaultWidths
            if layers == nil && widths.count >= 2 {
                widths[0] = features
                widths[widths.count - 1] = classes
            }
            return try NetworkShape(widths: widths)
        }
        let spec: NetworkSpec
        do throws(NetworkSpecError) {
            if let net {
                if let input, !net.utf8.contains(58) {  // no "INPUT:" prefix
                    spec = try NetworkSpec.parse(input.description + ": " + net)
                } else {
                    spec = try NetworkSpec.parse(net)
                    if let input, input != spec.input {
                        throw NetworkSpecError(column: 0, message: "--input-shape \(input.description) disagrees with the network's input \(spec.input.description)")
                    }
                }
            } else {
                var widths = layers ?? defaultWidths
                if layers == nil && widths.count >= 2 {
                    widths[0] = features
                    widths[widths.count - 1] = classes
                }
                if let input {  // always set here
                    if widths.count < 2 { throw NetworkSpecError(column: 0, message: "--layers needs at least 2 widths") }
                    if widths[0] != input.count {
                        throw NetworkSpecError(column: 0, message: "--layers starts with \(widths[0]) but --input-shape \(input.description) holds \(input.count) values")
                    }
                    var text = input.description + ": flatten"
                    for l in 1..<widths.count { text += ", dense \(widths[l])" + (l < widths.count - 1 ? ", relu" : "") }
                    spec = try NetworkSpec.parse(text)
                } else {
                    preconditionFailure("unreachable: no --net and no --input-shape was handled above")
                }
            }
        } catch {
            throw .invalidNetwork(error.message)
        }
        if spec.input.count != features {
            throw .invalidNetwork("the network's input \(spec.input.description) holds \(spec.input.count) values but the data has \(features) features")
        }
        return try NetworkShape(spec: spec)
    }

    /// The feature-scaling groups of a network: one per input channel when the
    /// input is spatial (an image or a series), else nil (one per feature).
    public static func scalingChannels(_ shape: NetworkShape) -> Int? {
        shape.spec.input.isFlat ? nil : shape.spec.input.channels
    }
}

extension TensorShape {
    /// Parses `CxHxW` (or `n`, a flat vector of n values).
    public static func parse(_ text: String) throws(EngineError) -> TensorShape {
        var p = SpecParser(Array(text.utf8))
        do {
            let t = try p.inputShape()
            try p.expect(.end, "end of the shape")
            return t
        } catch {
            throw .invalidNetwork("input shape '\(text)': \(error.message)")
        }
    }
}
