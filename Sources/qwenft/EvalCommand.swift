import ArgumentParser
import Foundation
import Qwen2

/// `qwenft eval`: next-token loss and accuracy on a JSONL of {"text": …} records.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Loss and next-token accuracy of a model (and adapter) on a JSONL of {\"text\": …}.",
        discussion: "Every token after the first of each record is a target; the loss is their mean over all records.")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var device: DeviceOptions

    @Option(name: .long, help: "Model folder.")
    var model: String

    @OptionGroup var fourBit: LoadIn4bitOptions

    @Option(name: .long, help: "PEFT LoRA adapter folder, applied unmerged.")
    var adapter: String?

    @Option(name: .long, help: "JSONL file, one {\"text\": …} per line.")
    var data: String

    @Option(name: .long, help: "Cut each record to this many tokens (default: max_position_embeddings).")
    var maxSeqLength: Int?

    @Flag(name: .long, help: "Print {\"loss\":…, \"token_accuracy\":…, \"tokens\":…} for scripts.")
    var json = false

    func validate() throws {
        if let n = maxSeqLength, n < 2 { throw ValidationError("--max-seq-length must be at least 2") }
    }

    func run() throws {
        global.apply()
        let backend = try device.backend()
        let texts = try readTextRecords(data)
        let folder = try fourBit.open(model, adapter: adapter)
        folder.model.backend = backend
        let r = try evaluate(model: folder.model, tokenizer: folder.tokenizer, texts: texts, maxSeqLength: maxSeqLength)
        if json {
            FileHandle.standardOutput.write(Data((try r.jsonText() + "\n").utf8))
        } else {
            print(String(format: "loss %.6f  token_accuracy %.4f  tokens %d  records %d", r.loss, r.tokenAccuracy, r.tokens, r.records))
        }
    }
}
