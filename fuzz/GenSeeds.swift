// Writes the seed corpus: fuzz/run.sh seeds  (-> fuzz/corpus/csv, fuzz/corpus/checkpoint).
// Compiled by run.sh in the same module as the engine sources; not part of any package target.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct GenSeeds {
    static func write(_ path: String, _ bytes: [UInt8]) {
        guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
        if !bytes.isEmpty { _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) } }
        fclose(f)
    }

    static func main() throws {
        let args = CommandLine.arguments
        let out = args.count > 1 ? args[1] : "fuzz/corpus"
        let csvDir = out + "/csv", ckDir = out + "/checkpoint"

        // CSV seeds.
        let csv: [(String, String)] = [
            ("header", "x,y,label\n1,2,0\n3,4,1\n"),
            ("noheader", "1,2,0\n3.5,-4e2,1\n0.25,+7,2\n.5,5.,0\n"),
            ("ragged", "1,2,0\n3,4\n5,6,7,1\n"),
            ("nan_inf", "a,b,c\n1,NaN,0\n2,inf,1\n-Infinity,3,0\n"),
            ("nan_header", "nan,inf,-infinity\n1,2,0\n"),
            ("huge", "1e400,2,0\n99999999999999999999999999,3,1\n-40000,0.0000000000000000000001,0\n1E-99999999,2e+5,1\n"),
            ("saturate", "32767.99999,-32768,0\n32768,1,1\n-32768.00001,2,0\n"),
            ("labels_bad", "1,2,65536\n1,2,-1\n1,2,1.5\n1,2,70000\n"),
            ("labels_max", "1,2,65535\n3,4,0\n"),
            ("label_neg_zero", "1,2,-0\n3,4,1.0\n5,6,1e0\n"),
            ("crlf", "f1,f2,cls\r\n1,2,0\r\n\r\n3,4,1\r\n"),
            ("empty", ""),
            ("blank", "\n \t\n\r\n\n"),
            ("header_only", "a,b,c\n"),
            ("single_class", "1,0\n2,0\n"),
            ("one_column", "1\n2\n"),
            ("spaces", " 1 ,\t2\t, 0 \n3,4,1"),
            ("named_label", "label,x,y\n0,1,2\n1,3,4\n"),
            ("empty_fields", ",,\n1,2,0\n,3,1\n"),
            ("not_number", "1,2,0\n3,x4,1\n1e,2,0\n+,-,1\n"),
            ("exponents", "1e-5,2E+3,0\n-1.5e-0,7e00000000000000000001,1\n"),
            ("long_mantissa", "123456789012345678901234567890.123456789,0.000000000000000000000000012345,0\n1,2,1\n"),
        ]
        for (name, text) in csv { write("\(csvDir)/\(name).csv", Array(text.utf8)) }
        // A few rows of the real data set (64 features, label last).
        let digits = "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0,0\n"
            + "0,0,0,12,13,5,0,0,0,0,0,11,16,9,0,0,0,0,3,15,16,6,0,0,0,7,15,16,16,2,0,0,0,0,1,16,16,3,0,0,0,0,1,16,16,6,0,0,0,0,1,16,16,6,0,0,0,0,0,11,16,10,0,0,1\n"
        write("\(csvDir)/digits2.csv", Array(digits.utf8))

        // Checkpoint seeds: valid ones of each mode and optimizer ...
        func words(_ n: Int, _ salt: Int32) -> [Int32] { (0..<n).map { Int32($0) &* 65536 &+ salt } }
        func params(_ w: [Int]) -> Int { (1..<w.count).reduce(0) { $0 + w[$1 - 1] * w[$1] + w[$1] } }
        var valid: [(String, Checkpoint)] = []
        let w1 = [2, 2]
        valid.append(("bp_sgd", try Checkpoint(widths: w1, mode: .bp, optimizer: .sgd, batch: 1, learningRate: 0.05,
                                            seed: 1, stepCount: 0, randomCounter: 0, stage: 0, epochsDone: 0,
                                            scaling: nil, model: words(params(w1), 1), trainable: words(params(w1), 2),
                                            optimizerState: [])))
        let w2 = [3, 4, 2]
        valid.append(("local_momentum_scaled", try Checkpoint(
            widths: w2, mode: .local(k: 1), optimizer: .momentum(mu: 0.9), batch: 4, learningRate: 0.01,
            seed: 42, stepCount: 7, randomCounter: 99, stage: 0, epochsDone: 3,
            scaling: FeatureScaling(mean: [1, -2, 3], inverseStd: [65536, 32768, 131072]),
            model: words(params(w2), 3), trainable: words(10, 4), optimizerState: words(10, 5))))
        let w3 = [2, 3, 3, 2]
        valid.append(("blockwise_riemannian", try Checkpoint(
            widths: w3, mode: .blockwise(k: 2), optimizer: .riemannian(alpha: 1.5, rho: 0.99, phi: .gradSquared),
            batch: 2, learningRate: 0.1, seed: 0xDEAD_BEEF, stepCount: 12, randomCounter: 1 << 40, stage: 1,
            epochsDone: 2, scaling: nil, model: words(params(w3), 6), trainable: words(11, 7),
            optimizerState: words(11, 8))))
        valid.append(("bpcheckpoint_riemannian_w", try Checkpoint(
            widths: w3, mode: .bpCheckpoint, optimizer: .riemannian(alpha: 0.5, rho: 0, phi: .weightMagnitude),
            batch: 1 << 20, learningRate: 0.5, seed: UInt64.max, stepCount: UInt64.max, randomCounter: 0,
            stage: 0, epochsDone: 0, scaling: FeatureScaling(mean: [0, 0], inverseStd: [1, 1]),
            model: words(params(w3), 9), trainable: [], optimizerState: [])))
        // ... and one written by a real training run (blockwise(1), momentum, 1 epoch).
        do {
            let shape = try NetworkShape(widths: [4, 5, 3])
            let model = Model(shape: shape, seed: 7)
            let t = try Trainer(model: model, batch: 4, mode: .blockwise(k: 1), optimizer: .momentum(mu: 0.5),
                                options: TrainingOptions(learningRate: 0.05, seed: 3), budget: 1 << 20)
            var f: [Int32] = [], l: [Int32] = []
            for i in 0..<12 {
                for j in 0..<4 { f.append(Int32((i * 7 + j * 13) % 17 - 8) << 14) }
                l.append(Int32(i % 3))
            }
            let d = try Dataset(featureCount: 4, classes: 3, features: f, labels: l)
            model.scaling = d.scalingStatistics()
            t.beginStage(0)
            _ = try t.trainEpoch(d, epoch: 0)
            valid.append(("trainer_blockwise_momentum", t.checkpoint(epochsDone: 1)))
        }
        // ... and a CNN's (bp-checkpoint, Riemannian, 1 epoch): the network text with conv and pooling.
        do {
            let shape = try NetworkShape(spec: NetworkSpec.parse("2x4x4: conv 3 3x3 same, relu, maxpool 2x2, flatten, dense 3"))
            let model = Model(shape: shape, seed: 5)
            let t = try Trainer(model: model, batch: 3, mode: .bpCheckpoint,
                                optimizer: .riemannian(alpha: 1, rho: 0.9, phi: .gradSquared),
                                options: TrainingOptions(learningRate: 0.05, seed: 4), budget: 1 << 20)
            var f: [Int32] = [], l: [Int32] = []
            for i in 0..<9 {
                for j in 0..<32 { f.append(Int32((i * 5 + j * 11) % 13 - 6) << 14) }
                l.append(Int32(i % 3))
            }
            let d = try Dataset(featureCount: 32, classes: 3, features: f, labels: l)
            model.scaling = d.scalingStatistics(channels: 2)
            t.beginStage(0)
            _ = try t.trainEpoch(d, epoch: 0)
            valid.append(("trainer_cnn_riemannian", t.checkpoint(epochsDone: 1)))
        }
        for (name, c) in valid {
            let b = c.encode()
            precondition((try? Checkpoint.decode(b)) != nil, "seed \(name) does not decode")
            write("\(ckDir)/\(name).ckpt", b)
        }
        // ... then broken ones: truncated, corrupted (CRC left stale), header-only.
        let base = valid[1].1.encode()
        write("\(ckDir)/truncated_header.ckpt", Array(base[0..<12]))
        write("\(ckDir)/truncated_middle.ckpt", Array(base[0..<(base.count / 2)]))
        write("\(ckDir)/truncated_crc.ckpt", Array(base[0..<(base.count - 2)]))
        var flipped = base; flipped[30] ^= 0x40
        write("\(ckDir)/bitflip_stale_crc.ckpt", flipped)
        var badMagic = base; badMagic[0] = 0x51
        write("\(ckDir)/bad_magic.ckpt", badMagic)
        var newer = base; newer[8] = UInt8(Checkpoint.version + 1)
        write("\(ckDir)/newer_version.ckpt", newer)
        var q8 = base; q8[12] = 8
        write("\(ckDir)/q24_8.ckpt", q8)
        // Structural corruption with a recomputed CRC: the network text's length, a letter of it, trailing bytes.
        func recrc(_ b: [UInt8]) -> [UInt8] {
            var b = b
            let c = CRC32.checksum(b, count: b.count - 4)
            for s in 0..<4 { b[b.count - 4 + s] = UInt8(truncatingIfNeeded: c >> (8 * UInt32(s))) }
            return b
        }
        var bigL = base; bigL[16] = 0xFF; bigL[17] = 0xFF
        write("\(ckDir)/absurd_text_length.ckpt", recrc(bigL))
        var badText = base; badText[23] = UInt8(ascii: "x")
        write("\(ckDir)/absurd_text.ckpt", recrc(badText))
        var extra = base; extra.insert(contentsOf: [1, 2, 3, 4], at: base.count - 4)
        write("\(ckDir)/trailing_bytes.ckpt", recrc(extra))
        write("\(ckDir)/magic_only.ckpt", Checkpoint.magic + [2, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0])
        print("wrote \(csv.count + 1) CSV seeds to \(csvDir), \(valid.count + 11) checkpoint seeds to \(ckDir)")
    }
}
