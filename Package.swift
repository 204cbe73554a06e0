// swift-tools-version:6.0
// PDMM Runtime: a fixed-point (Q16.16) neural-network training runtime.
// No package dependencies: the toolchain only.
import PackageDescription

let package = Package(
    name: "PDMMRuntime",
    products: [
        .library(name: "PDMMEngine", targets: ["PDMMEngine"]),
        .executable(name: "pdmm", targets: ["pdmm"]),
    ],
    targets: [
        .target(
            name: "CFixed",
            path: "Sources/CFixed",
            cSettings: [.unsafeFlags(["-std=c99", "-O3", "-fno-math-errno"])],
            // q16_team.c: the worker threads (pthreads on Linux).
            linkerSettings: [.linkedLibrary("pthread", .when(platforms: [.linux]))]
        ),
        .target(name: "CDigits", path: "Sources/CDigits"),
        .target(
            name: "PDMMEngine",
            dependencies: ["CFixed"],
            path: "Sources/PDMMEngine"
        ),
        .target(
            name: "PDMMHost",
            dependencies: ["PDMMEngine", "CFixed", "CDigits"],
            path: "Sources/PDMMHost",
            // Optimised even in debug builds: the float32 reference trains digits inside
            // `swift test` (DigitsAccuracyTests computes its accuracy), 10x slower at -Onone.
            swiftSettings: [.unsafeFlags(["-O"])]
        ),
        .executableTarget(
            name: "pdmm",
            dependencies: ["PDMMHost", "PDMMEngine", "CFixed"],
            path: "tools/pdmm"
        ),
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "CFixedTests", dependencies: ["CFixed"], path: "Tests/CFixedTests"),
        .testTarget(name: "PDMMEngineTests", dependencies: ["PDMMEngine", "PDMMHost", "CFixed", "CMallocCounter"],
                    path: "Tests/PDMMEngineTests"),
        .testTarget(name: "PDMMToolTests", dependencies: ["PDMMHost", "PDMMEngine"], path: "Tests/PDMMToolTests",
                    exclude: ["Fixtures"]),
    ]
)
