import Foundation
import PDMMEngine

extension Tool {
    func bench(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["seconds"])
        let what = a.positional.first ?? "kernels"
        let seconds = try a.double("seconds", default: 0.5)
        switch what {
        case "kernels": out(runKernelBench(sizes: [64, 128, 256, 512], seconds: seconds))
        case "train": out(try TrainBench.run(seconds: seconds))
        case "conv": out(runConvBench(seconds: seconds))
        default: throw UsageError("bench: unknown benchmark '\(what)' (expected kernels, train, conv)")
        }
        return 0
    }
}
