import ArgumentParser
import Foundation
import Qwen2
import QwenCore

/// `qwenft init`: a random-initialised Qwen2 model folder in Hugging Face format.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a random-initialised Qwen2 model folder (HF format) from a preset.",
        discussion: "Presets: \(Qwen2Preset.allCases.map(\.rawValue).joined(separator: ", ")). "
            + "--tokenizer takes a .tiktoken rank file (written as tokenizer.json) or a tokenizer.json.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "tiny, small, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b or qwen2.5-14b.")
    var preset: String

    @Option(name: .long, help: "A .tiktoken rank file or tokenizer.json for the folder.")
    var tokenizer: String?

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "Seed of the random weights.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Weight dtype: float32, bfloat16 or float16.")
    var dtype: String = "float32"

    @Option(name: .long, help: ArgumentHelp(
        "Std of the normal init of Linear and Embedding weights (initializer_range).",
        discussion: "transformers uses 0.02; a larger value gives a random model sharper logits."))
    var initStd: Double = 0.02

    @Option(name: .long, help: "Number of layers instead of the preset's (smaller models of the same shapes, for benchmarks).")
    var layers: Int?

    func run() throws {
        global.apply()
        guard let p = Qwen2Preset(rawValue: preset) else {
            throw CLIError("--preset \(preset): unknown preset; choose one of \(Qwen2Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let d = DType(name: dtype), d.isFloatStorage else {
            throw CLIError("--dtype \(dtype): use float32, bfloat16 or float16")
        }
        guard initStd.isFinite, initStd > 0, initStd <= 10 else {
            throw CLIError("--init-std \(initStd): use a positive standard deviation of at most 10")
        }
        var config = p.config
        config.initializerRange = initStd
        if let n = layers {
            guard n >= 1 else { throw CLIError("--layers \(n): give at least 1") }
            config.numHiddenLayers = n
        }
        try initializeModelFolder(config: config, tokenizer: tokenizer, out: out, seed: seed, dtype: d)
        print("wrote \(out) (\(preset), \(d.torchName))")
    }
}
