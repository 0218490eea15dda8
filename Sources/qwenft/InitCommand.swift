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

    @Option(name: .long, help: "tiny, small or qwen2.5-0.5b.")
    var preset: String

    @Option(name: .long, help: "A .tiktoken rank file or tokenizer.json for the folder.")
    var tokenizer: String?

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "Seed of the random weights.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Weight dtype: float32, bfloat16 or float16.")
    var dtype: String = "float32"

    func run() throws {
        global.apply()
        guard let p = Qwen2Preset(rawValue: preset) else {
            throw CLIError("--preset \(preset): unknown preset; choose one of \(Qwen2Preset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let d = DType(name: dtype), d.isFloatStorage else {
            throw CLIError("--dtype \(dtype): use float32, bfloat16 or float16")
        }
        try initializeModelFolder(config: p.config, tokenizer: tokenizer, out: out, seed: seed, dtype: d)
        print("wrote \(out) (\(preset), \(d.torchName))")
    }
}
