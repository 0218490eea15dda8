// qwenft-bench: the one home of benchmark-only code (what Scripts/bench/*/run.sh runs besides
// `qwenft train` / `qwenft generate` and the QWENFT_BENCH test suites; Scripts/bench/README.md
// says what each bench runs and how to read its output).
//
//   qwenft-bench gemm [--tokens T] [--repeats R] [--json] [--model DIR] [--variants NT,NN,TN]
//   qwenft-bench gemm --kernels [--tokens T] [--repeats R] [--model DIR]   (sgemm vs our packed kernel)
//   qwenft-bench convert [--repeats R]
//   qwenft-bench roundtrip IN OUT
//   qwenft-bench tokenize --tokenizer FILE [--each-line] [--repeats R]      < text
//   qwenft-bench template --template FILE --messages FILE [--add-generation-prompt] [--renders N]
//   qwenft-bench cuda-kernels [--device N]     (needs a GPU: every CUDA kernel vs its CPU kernel)
//   qwenft-bench decode-kernels [--copies K] [--repeats R]   (bf16 vs NF4 fused decoding rows)
//   qwenft-bench lora-kernels [--tokens T] [--rank r] [--repeats R] [--model DIR] [--cold]   (LoRA's rank-r products)
//
// The thread count is QWENFT_THREADS (default: every core).
import Foundation

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

let usage = """
    usage: qwenft-bench gemm [--tokens T] [--repeats R] [--json | --kernels] [--model DIR] [--variants NT,NN,TN] | convert [--repeats R] | roundtrip IN OUT
           | tokenize --tokenizer FILE [--each-line] [--repeats R] | template --template FILE --messages FILE [--add-generation-prompt] [--renders N]
           | cuda-kernels [--device N] | decode-kernels [--copies K] [--repeats R]
           | lora-kernels [--tokens T] [--rank r] [--repeats R] [--model DIR] [--cold]
    """

/// The options after the mode: `--name value` pairs and bare `--flag`s (in `flags`).
func options(_ args: ArraySlice<String>, flags: Set<String>) throws -> [String: String] {
    var out: [String: String] = [:]
    var rest = args
    while let a = rest.popFirst() {
        if flags.contains(a) { out[a] = ""; continue }
        guard a.hasPrefix("--"), let v = rest.popFirst() else { throw BenchError("unexpected argument \(a)") }
        out[a] = v
    }
    return out
}

func positive(_ o: [String: String], _ key: String, default d: Int) throws -> Int {
    guard let s = o[key] else { return d }
    guard let n = Int(s), n > 0 else { throw BenchError("\(key) takes a positive integer") }
    return n
}

func required(_ o: [String: String], _ key: String) throws -> String {
    guard let v = o[key] else { throw BenchError("\(key) is required") }
    return v
}

let args = Array(CommandLine.arguments.dropFirst())
do {
    let rest = args.dropFirst()
    switch args.first ?? "" {
    case "gemm":
        let o = try options(rest, flags: ["--json", "--kernels"])
        if o["--kernels"] != nil {
            runGemmKernels(tokens: try positive(o, "--tokens", default: 256), repeats: try positive(o, "--repeats", default: 3),
                           shapes: try o["--model"].map(modelShapes) ?? qwen05BShapes)
            break
        }
        let variants = Set((o["--variants"] ?? "NT,NN,TN").split(separator: ",").map(String.init))
        guard !variants.isEmpty, variants.isSubset(of: ["NT", "NN", "TN"]) else {
            throw BenchError("--variants takes a comma-separated list of NT, NN, TN")
        }
        runGemm(tokens: try positive(o, "--tokens", default: 256), repeats: try positive(o, "--repeats", default: 3), json: o["--json"] != nil,
                shapes: try o["--model"].map(modelShapes) ?? qwen05BShapes, variants: variants)
    case "convert":
        runConvert(repeats: try positive(try options(rest, flags: []), "--repeats", default: 3))
    case "roundtrip" where args.count == 3:
        try runRoundtrip(args[1], args[2])
    case "tokenize":
        let o = try options(rest, flags: ["--each-line"])
        try runTokenize(tokenizer: try required(o, "--tokenizer"), eachLine: o["--each-line"] != nil,
                        repeats: try positive(o, "--repeats", default: 5))
    case "template":
        let o = try options(rest, flags: ["--add-generation-prompt"])
        try runTemplate(template: try required(o, "--template"), messages: try required(o, "--messages"),
                        addGenerationPrompt: o["--add-generation-prompt"] != nil, renders: try positive(o, "--renders", default: 1000))
    case "cuda-kernels":
        let o = try options(rest, flags: [])
        try runCUDAKernelCheck(ordinal: Int(o["--device"] ?? "0") ?? 0)
    case "decode-kernels":
        let o = try options(rest, flags: [])
        runDecodeKernels(copies: try positive(o, "--copies", default: 16), repeats: try positive(o, "--repeats", default: 5))
    case "lora-kernels":
        let o = try options(rest, flags: ["--cold"])
        runLoRAKernels(tokens: try positive(o, "--tokens", default: 256), rank: try positive(o, "--rank", default: 8),
                       repeats: try positive(o, "--repeats", default: 5),
                       shapes: try o["--model"].map(modelShapes) ?? qwen05BProjections, cold: o["--cold"] != nil)
    default:
        FileHandle.standardError.write(Data((usage + "\n").utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("qwenft-bench: \(error)\n".utf8))
    exit(1)
}
