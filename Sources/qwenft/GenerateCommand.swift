import ArgumentParser
import Foundation
import JSON
import Qwen2
import Tokenizer

/// `qwenft generate`: one answer (or continuation), streamed as it is produced.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text with a Qwen2 model folder (optionally with a LoRA adapter).",
        discussion: """
            --prompt is sent as a user message through the folder's chat template; --messages is a
            JSON array of {"role", "content"} messages; --raw-prompt is tokenised as is. Text streams
            to stdout; tokens/s go to stderr. --json prints {"ids":[…],"text":"…"} at the end instead.
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var device: DeviceOptions

    @Option(name: .long, help: "Model folder (config.json, model.safetensors, tokenizer).")
    var model: String

    @OptionGroup var fourBit: LoadIn4bitOptions

    @Option(name: .long, help: "PEFT LoRA adapter folder, applied unmerged.")
    var adapter: String?

    @Option(name: .long, help: "A user message, rendered with the chat template.")
    var prompt: String?

    @Option(name: .long, help: "A JSON file: an array of {\"role\", \"content\"} messages.")
    var messages: String?

    @Option(name: .long, help: "Text tokenised as is, no template.")
    var rawPrompt: String?

    @Option(name: .long, help: "Token ids as a JSON array, no tokenizer or template (benchmarks).")
    var promptIds: String?

    @Option(name: .long, help: "With --prompt: a system message.")
    var system: String?

    @OptionGroup var sampling: SamplingOptions

    @Flag(name: .long, help: "Print {\"ids\":[…],\"text\":\"…\"} instead of streaming text.")
    var json = false

    @Flag(name: .long, help: "Do not stop at end-of-sequence ids (always --max-new-tokens; benchmarks).")
    var ignoreEos = false

    func validate() throws {
        if [prompt, messages, rawPrompt, promptIds].compactMap({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --prompt, --messages, --raw-prompt or --prompt-ids")
        }
    }

    func run() throws {
        global.apply()
        let backend = try device.backend()
        let folder = try fourBit.open(model, adapter: adapter)
        folder.model.backend = backend
        var text = ""
        if let rawPrompt {
            text = rawPrompt
        } else if promptIds != nil {
        } else {
            var list: [ChatMessage]
            if let messages {
                list = try readMessages(messages)
            } else {
                list = [ChatMessage(role: "user", content: prompt!)]
                if let system { list.insert(ChatMessage(role: "system", content: system), at: 0) }
            }
            text = try folder.chatTemplate().render(list, addGenerationPrompt: true)
        }
        let ids: [Int32]
        if let promptIds {
            guard let list = try? JSONValueDecoder().decode([Int32].self, from: Array(promptIds.utf8)) else {
                throw CLIError("--prompt-ids: expected a JSON array of token ids, like [1, 2, 3]")
            }
            ids = list
        } else {
            ids = folder.tokenizer.encodeIds(text, allowSpecial: true)
        }
        let maxNew = sampling.maxTokens(folder.generationConfig)
        var sampler = Sampler(parameters: try sampling.parameters(folder.generationConfig), seed: sampling.seed)
        let generator = Generator(model: folder.model, capacity: ids.count + maxNew)
        let decoder = folder.tokenizer.streamingDecoder(skipSpecialTokens: true, skipUnknownIds: true)
        let out = FileHandle.standardOutput
        var produced = ""
        let result = try generator.generate(prompt: ids, maxNewTokens: maxNew, sampler: &sampler,
                                            eos: ignoreEos ? [] : folder.eosTokenIds) { id in
            let piece = try decoder.push(Int(id))
            produced += piece
            if !json && !piece.isEmpty { out.write(Data(piece.utf8)) }
            return true
        }
        let tail = decoder.finish()
        produced += tail
        if json {
            let obj: JSONValue = .object([("ids", .array(result.tokens.map { .int(Int($0)) })), ("text", .string(produced))])
            out.write(Data((obj.text(.compact) + "\n").utf8))
        } else {
            out.write(Data((tail + "\n").utf8))
        }
        printStats(result)
    }
}

/// "N tokens, X tokens/s (prefill P tokens, Y tokens/s)" on stderr.
func printStats(_ r: GenerationResult) {
    let total = r.prefillSeconds + r.decodeSeconds
    let line = String(format: "[%d tokens, %.2f tokens/s; prefill %d tokens, %.1f tokens/s; total %.2f tokens/s]\n",
                      r.tokens.count, r.decodeTokensPerSecond, r.prefilledTokens, r.prefillTokensPerSecond,
                      total > 0 ? Double(r.tokens.count) / total : 0)
    FileHandle.standardError.write(Data(line.utf8))
}

/// A JSON array of {"role", "content"} messages.
func readMessages(_ path: String) throws -> [ChatMessage] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("\(path): no such file (--messages takes a JSON array of {\"role\", \"content\"} messages)")
    }
    do {
        return try JSONValueDecoder().decode([ChatMessage].self, from: Array(data))
    } catch {
        throw CLIError("\(path): expected a JSON array of {\"role\": string, \"content\": string} messages (\(error))")
    }
}
