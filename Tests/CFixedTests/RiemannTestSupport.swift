// RiemannTestSupport.swift -- the Riemannian update as UpdateKernelTests (q16_update_outer_riemannian_sr)
// and ConvRiemannianTests (the conv kernels) test it: a problem (parameters, rates, metric, random
// stream), its seeded random draw, and the exact Int128 model of the documented per-parameter rule,
// given the exact gradient sums of the layer.

import CFixed

// MARK: - Exact arithmetic models (srExact, clampCount, divNearest: TestSupport.swift)

/// q16_mul as documented: the exact product rounded once to nearest (ties away), saturated (counted).
func mulNearest(_ a: Int32, _ b: Int32, _ sat: inout UInt64) -> Int32 {
    clampCount(divNearest(Int128(a) * Int128(b), 65536), &sat)
}

/// Values with |x| <= 2^bits (so products and short sums stay below a chosen bound).
func bounded(_ count: Int, bits: Int, _ rng: inout SplitMix64) -> [Int32] {
    let lim = Int32(1) << bits
    return (0 ..< count).map { _ in rng.nextI32(in: -lim ... lim) }
}

let gradStream: UInt64 = 0x5048_495F_5354_5245 // g = SR(s gscale)
let decayStream: UInt64 = 0x5048_495F_4445_4341 // SR(rho phi)
let freshStream: UInt64 = 0x5048_495F_4652_4553 // SR((1 - rho) g^2)

// MARK: - Problems and outcomes

/// What an update call returns: its status, the parameters after it and the saturations it added.
struct UpdateOutcome: Equatable {
    var status: q16_status
    var W: [Int32]
    var bias: [Int32]?
    var phi: [Int32]?
    var sat: UInt64
}

/// One Riemannian update problem on a layer of shape `Shape` (the dense layer of UpdateKernelTests, ConvShape):
/// the gradients dY and inputs X, the parameters before the step (phi holds one value per weight, then one
/// per bias), the rates, the metric and the random stream (weight w uses counter + w, bias f uses
/// counter + weights + f).
struct RiemannCase<Shape: CustomStringConvertible> {
    var shape: Shape
    var W: [Int32]
    var bias: [Int32]?
    var phi: [Int32]?
    var dY: [Int32]
    var X: [Int32]
    var lr: UInt32 = 0
    var gscale: UInt32 = 0
    var alpha: Int32 = 0
    var rho: UInt32 = 0
    var kind = Q16_PHI_GRAD_SQUARED
    var seed: UInt64 = 0, counter: UInt64 = 0
    var tag = ""

    var label: String {
        "\(tag.isEmpty ? "" : tag + " ")\(shape) kind=\(kind.rawValue) lr=\(lr) gscale=\(gscale) alpha=\(alpha) "
            + "rho=\(rho) bias=\(bias != nil) phi=\(phi != nil) ctr=\(counter)"
    }
}

extension RiemannCase {
    /// Draws, in this order: W (`weights` values, from a random spread), bias (`biases` values, or nil one
    /// time in 4), phi (for WEIGHT_ABS, which ignores it, only sometimes, to check that it stays
    /// untouched), lr (0 one time in `zeroLROneIn` when given), gscale, rho, seed and counter (near the top
    /// of UInt64 one time in 5: counter + index wraps inside the call); alpha and kind are given.
    mutating func drawRandom(_ rng: inout SplitMix64, weights: Int, biases: Int, batch: Int, kind: q16_phi_kind,
                             alpha: Int32, zeroLROneIn: UInt64? = nil)
    {
        let spreadW = Spread.allCases[Int(rng.next() % UInt64(Spread.allCases.count))]
        W = values(weights, spreadW, &rng)
        bias = rng.next() % 4 == 0 ? nil : values(biases, spreadW, &rng)
        if kind == Q16_PHI_GRAD_SQUARED || rng.next() % 2 == 0 {
            // GRAD_SQUARED's phi is an EMA of squares (>= 0) in training; negative values are legal inputs too.
            let spreadPhi: Spread = rng.next() % 2 == 0 ? .mixed : .unit
            let nonNegative = kind == Q16_PHI_GRAD_SQUARED && rng.next() % 3 > 0
            phi = values(weights + biases, spreadPhi, &rng).map { nonNegative ? abs($0 / 2) : $0 }
        }
        if let zeroLROneIn {
            lr = rng.next() % zeroLROneIn == 0 ? 0 : rate(&rng)
        } else {
            lr = rate(&rng)
        }
        gscale = rng.next() % 3 == 0 ? UInt32((UInt64(1) << 32) / UInt64(batch + 1)) : rate(&rng)
        self.alpha = alpha
        switch rng.next() % 4 {
        case 0: rho = 0
        case 1: rho = UInt32.max
        default: rho = rng.nextU32()
        }
        self.kind = kind
        seed = rng.next()
        counter = rng.next() % 5 == 0 ? UInt64.max - UInt64(rng.next() % 8) : rng.next()
    }

    /// The documented rule, exactly (Int128: no intermediate can overflow), given the exact sums of the
    /// layer (`weightSums` in Q32.32, `biasSums` in Q16):
    ///   s = weight sum clamped to +-2^62, or bias sum clamped to +-2^46, then x 2^16 (each clamp counted),
    ///   u = SR(s lr / 2^48), g = SR(s gscale / 2^48) [gradStream], g2 = q16_mul(g, g),
    ///   phi = SR(rho phi) [decayStream] + SR((1 - rho) g2) [freshStream] (saturated, counted),
    ///   or phi = min(|w|, Q16_MAX) for WEIGHT_ABS;
    ///   E = clamp(1 + q16_mul(alpha, phi), 1, Q16_MAX), w = sat(w - round_nearest(u / E)).
    /// Also returns the number of clamped sums and the part of the count from the metric (g, g^2, phi,
    /// alpha * phi; the plain SR update has none).
    func exactModel(weightSums: [Int128], biasSums: [Int128])
        -> (result: UpdateOutcome, clampedSums: UInt64, metricSat: UInt64)
    {
        var sat: UInt64 = 0, metricSat: UInt64 = 0, clamped: UInt64 = 0
        var W = self.W, bias = self.bias, phi = self.phi
        let q32 = Int128(1) << 32

        func step(_ w: Int32, _ at: Int, _ sum: Int128) -> Int32 {
            let ctr = counter &+ UInt64(at)
            let u = srExact(sum * Int128(lr), 48, q16_rng_u32(seed, ctr))
            let metric: Int32
            if kind == Q16_PHI_GRAD_SQUARED {
                let g = clampCount(srExact(sum * Int128(gscale), 48, q16_rng_u32(seed ^ gradStream, ctr)), &metricSat)
                let g2 = mulNearest(g, g, &metricSat)
                let decayed = srExact(Int128(phi![at]) * Int128(rho), 32, q16_rng_u32(seed ^ decayStream, ctr))
                let fresh = srExact(Int128(g2) * (q32 - Int128(rho)), 32, q16_rng_u32(seed ^ freshStream, ctr))
                phi![at] = clampCount(decayed + fresh, &metricSat)
                metric = phi![at]
            } else {
                metric = Int32(min(Int128(w.magnitude), Int128(qMax)))
            }
            let e = min(max(65536 + Int128(mulNearest(alpha, metric, &metricSat)), 65536), Int128(qMax))
            return clampCount(Int128(w) - divNearest(u * 65536, e), &sat)
        }

        func clamp(_ sum: Int128, _ limit: Int128) -> Int128 {
            if sum > limit { clamped += 1; return limit }
            if sum < -limit { clamped += 1; return -limit }
            return sum
        }

        let sLimit = Int128(1) << 62, bLimit = Int128(1) << 46
        for w in 0 ..< W.count { W[w] = step(W[w], w, clamp(weightSums[w], sLimit)) }
        if bias != nil {
            for f in 0 ..< bias!.count {
                bias![f] = step(bias![f], W.count + f, clamp(biasSums[f], bLimit) * 65536)
            }
        }
        let result = UpdateOutcome(status: Q16_OK, W: W, bias: bias, phi: phi, sat: sat + metricSat + clamped)
        return (result, clamped, metricSat)
    }
}
