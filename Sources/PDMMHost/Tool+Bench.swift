import Foundation
import PDMMEngine

extension Tool {
    func bench(_ argv: [String]) throws -> Int32 {
        let a = try Arguments(argv, valued: ["seconds", "threads"])
        let what = a.positional.first ?? "kernels"
        let seconds = try a.double("seconds", default: 0.5)
        switch what {
        case "kernels": out(runKernelBench(sizes: [64, 128, 256, 512], seconds: seconds))
        case "train":
            out(try TrainBench.run(seconds: seconds, threads: try a.int("threads", default: Tool.defaultThreads, min: 1)))
        case "conv": out(runConvBench(seconds: seconds))
        default: throw UsageError("bench: unknown benchmark '\(what)' (expected kernels, train, conv)")
        }
        return 0
    }
}
