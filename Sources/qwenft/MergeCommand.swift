import ArgumentParser
import Foundation
import QwenCore
import SafeTensors
import Training

/// `qwenft merge`: a PEFT LoRA adapter folded into its base model, written as an HF folder.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge a PEFT LoRA adapter into its base model (W += scale·B·A in f32) and write a Hugging Face folder.",
        discussion: "The output has safetensors shards (+ index), config.json, generation_config.json and the tokenizer files; transformers loads it as is.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Base model folder.")
    var base: String

    @Option(name: .long, help: "PEFT adapter folder (adapter_config.json, adapter_model.safetensors).")
    var adapter: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "float32, bfloat16 or float16 (default: the base's dtype).")
    var dtype: String?

    @Flag(name: .long, help: "A QLoRA adapter: merge into the original 16-bit base instead of the dequantised NF4 base it was trained against.")
    var ontoOriginal = false

    @Option(name: .long, help: "Largest shard, e.g. 5GB, 500MB, 2GiB.")
    var maxShardSize: String = "5GB"

    func run() throws {
        global.apply()
        var d: DType?
        if let name = dtype {
            guard let t = DType(name: name), t.isFloatStorage else { throw CLIError("--dtype \(name): use float32, bfloat16 or float16") }
            d = t
        }
        guard let shard = parseByteSize(maxShardSize), shard > 0 else {
            throw CLIError("--max-shard-size \(maxShardSize): give a size such as 5GB, 500MB or 2GiB")
        }
        let r = try AdapterMerge.merge(base: base, adapter: adapter, out: out, dtype: d, maxShardSize: shard, ontoOriginal: ontoOriginal)
        print("merged \(r.mergedPairs) LoRA pairs into \(r.tensors) tensors (\(r.dtype.torchName)); wrote \(out): "
            + r.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))
        if r.onto != "the base as stored" { print("merged onto \(r.onto)") }
    }
}
