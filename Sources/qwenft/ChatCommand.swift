import ArgumentParser
import Foundation
import Qwen2

/// `qwenft chat`: a conversation in the terminal, or one user turn per line of piped stdin.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a Qwen2 model folder through its chat template.",
        discussion: """
            Each line is a user turn. /reset forgets the conversation, /system TEXT sets the system
            message (and resets), /exit or Ctrl-D ends. Answers stream to stdout; tokens/s go to stderr.
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var device: DeviceOptions

    @Option(name: .long, help: "Model folder (config.json, model.safetensors, tokenizer).")
    var model: String

    @OptionGroup var fourBit: LoadIn4bitOptions

    @Option(name: .long, help: "PEFT LoRA adapter folder, applied unmerged.")
    var adapter: String?

    @Option(name: .long, help: "System message.")
    var system: String?

    @OptionGroup var sampling: SamplingOptions

    func run() throws {
        global.apply()
        let backend = try device.backend()
        let folder = try fourBit.open(model, adapter: adapter)
        folder.model.backend = backend
        let template = try folder.chatTemplate()
        let parameters = try sampling.parameters(folder.generationConfig)
        let maxNew = sampling.maxTokens(folder.generationConfig)
        var sampler = Sampler(parameters: parameters, seed: sampling.seed)
        let generator = Generator(model: folder.model, capacity: 1024)
        let interactive = isatty(STDIN_FILENO) != 0
        let out = FileHandle.standardOutput
        var systemMessage = system
        var messages: [ChatMessage] = []

        func say(_ s: String) { out.write(Data(s.utf8)) }
        if interactive { say("qwenft chat — /reset, /system TEXT, /exit (or Ctrl-D)\n") }
        while true {
            if interactive { say("> ") }
            guard let line = readLine(strippingNewline: true) else {
                if interactive { say("\n") }
                break
            }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input == "/exit" || input == "/quit" { break }
            if input == "/reset" {
                messages = []
                generator.reset()
                if interactive { say("(conversation reset)\n") }
                continue
            }
            if input.hasPrefix("/system") {
                let text = input.dropFirst("/system".count).trimmingCharacters(in: .whitespaces)
                systemMessage = text.isEmpty ? nil : text
                messages = []
                generator.reset()
                if interactive { say("(system message set; conversation reset)\n") }
                continue
            }
            messages.append(ChatMessage(role: "user", content: line))
            let conversation = (systemMessage.map { [ChatMessage(role: "system", content: $0)] } ?? []) + messages
            let ids = folder.tokenizer.encodeIds(try template.render(conversation, addGenerationPrompt: true), allowSpecial: true)
            let decoder = folder.tokenizer.streamingDecoder(skipSpecialTokens: true, skipUnknownIds: true)
            var answer = ""
            let result = try generator.generate(prompt: ids, maxNewTokens: maxNew, sampler: &sampler,
                                                eos: folder.eosTokenIds) { id in
                let piece = try decoder.push(Int(id))
                answer += piece
                if !piece.isEmpty { say(piece) }
                return true
            }
            let tail = decoder.finish()
            answer += tail
            say(tail + "\n")
            messages.append(ChatMessage(role: "assistant", content: answer))
            printStats(result)
        }
    }
}
