// swift-tools-version:6.0
// qwenft: fine-tune Qwen2-family models end to end. See README.md and ../shared/DESIGN.md.
import PackageDescription

/// Optimised builds of the hot targets even in debug, so tests that run a model stay fast.
/// On x86-64 the kernels target Haswell-level CPUs (AVX2, FMA, F16C: every x86 server and desktop CPU
/// since 2013–2015), which doubles the width of the SIMD loops over the baseline's SSE2.
#if arch(x86_64)
let fastMath: [SwiftSetting] = [.unsafeFlags(["-O", "-target-cpu", "haswell"])]
#else
let fastMath: [SwiftSetting] = [.unsafeFlags(["-O"])]
#endif

/// Our packed GEMM (Sources/CKernels) is AVX2/FMA/F16C C on x86-64; elsewhere it builds without its
/// kernel (`qk_available()` is 0) and GEMM keeps OpenBLAS for every product.
#if arch(x86_64)
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-mavx2", "-mfma", "-mf16c"])]
#else
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3"])]
#endif

/// The kernel sources of Sources/CUDA/Kernels (common.cuh is prepended to every module).
let cudaKernelFiles = [
    "common.cuh", "elementwise.cu", "norm.cu", "rope.cu", "swiglu.cu", "attention.cu",
    "cross_entropy.cu", "adamw.cu", "nf4.cu",
]

let package = Package(
    name: "qwenft",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "qwenft", targets: ["qwenft"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libopenmpi-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),

        // The CUDA driver, NVRTC and cuBLAS, dlopen()ed at run time: nothing CUDA at build time.
        .target(name: "CCUDA", linkerSettings: [.linkedLibrary("dl")]),

        // Our packed GEMM micro-kernel (C with intrinsics; see Sources/CKernels/gemm.c).
        .target(name: "CKernels", cSettings: kernelFlags),

        // Libraries.
        .target(name: "QwenCore", dependencies: ["CBLAS", "CKernels"], swiftSettings: fastMath),
        // The one JSON reader and writer (no dependencies, so Jinja can use it too).
        .target(name: "JSON", dependencies: [], swiftSettings: fastMath),
        .target(name: "SafeTensors", dependencies: ["QwenCore", "JSON"], swiftSettings: fastMath),
        .target(name: "Tokenizer", dependencies: ["QwenCore", "JSON"], swiftSettings: fastMath),
        .target(name: "Jinja", dependencies: ["JSON"], swiftSettings: fastMath),
        .target(name: "Qwen2", dependencies: ["QwenCore", "JSON", "SafeTensors", "Tokenizer", "Jinja"],
                swiftSettings: fastMath),
        .target(name: "Distributed", dependencies: ["QwenCore", "CMPI"]),
        // The CUDA kernels are CUDA C++ sources embedded in the binary and compiled by NVRTC at run time.
        .target(name: "CUDA", dependencies: ["CCUDA", "QwenCore"],
                resources: cudaKernelFiles.map { .embedInCode("Kernels/\($0)") }),
        .target(name: "Training",
                dependencies: ["QwenCore", "JSON", "SafeTensors", "Tokenizer", "Jinja", "Qwen2", "Distributed"],
                swiftSettings: fastMath),

        // The command-line program.
        .executableTarget(
            name: "qwenft",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "QwenCore", "JSON", "SafeTensors", "Tokenizer", "Jinja", "Qwen2", "Distributed", "Training", "CUDA", "CBLAS",
            ]),

        // Benchmark-only code: micro-benchmarks and timing loops (Scripts/bench/README.md).
        .executableTarget(name: "qwenft-bench",
                          dependencies: ["QwenCore", "SafeTensors", "Tokenizer", "Jinja", "Qwen2", "Training", "CUDA"],
                          path: "Sources/qwenft-bench"),

        // Tests: one target per library, plus end-to-end tests of the built binary. TestSupport:
        // the one scratch folder per test process that every target writes under, and host access
        // to the CPU backend's buffers.
        .target(name: "TestSupport", dependencies: ["QwenCore"], path: "Tests/TestSupport"),
        .testTarget(name: "QwenCoreTests", dependencies: ["QwenCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], exclude: ["Fixtures"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "JSON", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "JSON", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja"], exclude: ["Fixtures"]),
        .testTarget(name: "Qwen2Tests", dependencies: ["Qwen2", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed"]),
        .testTarget(name: "CUDATests", dependencies: ["CUDA", "QwenCore", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"], exclude: ["Fixtures"]),
    ],
    // Numeric code passes raw pointers between threads on purpose; Swift 5 mode keeps the
    // concurrency checker's Sendable rules from getting in the way of that.
    swiftLanguageModes: [.v5]
)
