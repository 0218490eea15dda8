import ArgumentParser
import Foundation
import Qwen2
import SafeTensors
import Training

/// `qwenft quantize`: a model folder rewritten as a bitsandbytes 4-bit (NF4) folder.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a model folder with its Linear layers in NF4, as bitsandbytes stores them (a *-bnb-4bit folder).",
        discussion: """
            The seven projections of every layer become NF4 (4-bit NormalFloat, blockwise absmax,
            optionally double-quantised) with bitsandbytes' quant state; embeddings, lm_head, norms
            and biases stay as stored. transformers + bitsandbytes load the output with
            from_pretrained; qwenft loads it everywhere a model folder is accepted.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Model folder (float32, bfloat16 or float16 safetensors).")
    var model: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "Elements per absmax block: 32, 64, 128, … 4096.")
    var blocksize: Int = 64

    @Flag(name: .long, help: "Keep the absmax values in fp32 (no double quantisation).")
    var noDoubleQuant = false

    @Option(name: .long, parsing: .upToNextOption, help: "Modules kept unquantised (llm_int8_skip_modules), e.g. down_proj.")
    var skipModules: [String] = []

    @Option(name: .long, help: "Largest shard, e.g. 5GB, 500MB, 2GiB.")
    var maxShardSize: String = "5GB"

    func run() throws {
        global.apply()
        guard NF4.blocksizes.contains(blocksize) else {
            throw CLIError("--blocksize \(blocksize): use one of \(NF4.blocksizes.map(String.init).joined(separator: ", "))")
        }
        guard let shard = parseByteSize(maxShardSize), shard > 0 else {
            throw CLIError("--max-shard-size \(maxShardSize): give a size such as 5GB, 500MB or 2GiB")
        }
        let options = NF4Options(blocksize: blocksize, doubleQuant: !noDoubleQuant, skipModules: skipModules)
        var shown = -1
        let r = try QuantizeModel.run(model: model, out: out, options: options, maxShardSize: shard) { done, total in
            let pct = done * 100 / max(1, total)
            if total >= 64, pct / 10 != shown / 10 {
                shown = pct
                FileHandle.standardError.write(Data("quantising: \(done)/\(total) matrices\n".utf8))
            }
        }
        print("quantised \(r.quantized) matrices to NF4 (blocksize \(blocksize), \(noDoubleQuant ? "fp32 absmax" : "double quantisation")), "
            + "kept \(r.kept) tensors as stored; wrote \(out): " + r.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))
    }
}
