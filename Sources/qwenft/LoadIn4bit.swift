import ArgumentParser
import Foundation
import Qwen2

/// `--load-in-4bit` (Firefly's inference switch): the base's projections quantised to NF4 on
/// load, as transformers' BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4") does.
struct LoadIn4bitOptions: ParsableArguments {
    @Flag(name: .customLong("load-in-4bit"), help: "Quantise the model's Linear layers to NF4 on load (bitsandbytes' 4-bit format; products in fp32).")
    var loadIn4bit = false

    @Option(name: .customLong("bnb-4bit-blocksize"), help: "With --load-in-4bit: elements per absmax block (32 … 4096).")
    var bnb4bitBlocksize: Int = 64

    @Flag(name: .long, help: "With --load-in-4bit: keep absmax in fp32 (no double quantisation).")
    var noDoubleQuant = false

    func validate() throws {
        guard NF4.blocksizes.contains(bnb4bitBlocksize) else {
            throw ValidationError("--bnb-4bit-blocksize \(bnb4bitBlocksize): use one of \(NF4.blocksizes.map(String.init).joined(separator: ", "))")
        }
    }

    /// Opens a model folder as asked, saying on stderr how its weights are held when quantised.
    func open(_ path: String, adapter: String?) throws -> ModelFolder {
        let options = loadIn4bit ? NF4Options(blocksize: bnb4bitBlocksize, doubleQuant: !noDoubleQuant) : nil
        let folder = try ModelFolder(path: path, adapter: adapter, loadIn4bit: options, progress: nil)
        if let q = folder.quantization {
            FileHandle.standardError.write(Data("base weights: \(q)\n".utf8))
        }
        return folder
    }
}
