import ArgumentParser
import Foundation
import Tokenizer

/// `qwenft tokenize`: text -> JSON ids, or with --decode JSON ids -> text.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids (a JSON array), or decode ids to text.",
        discussion: """
            Text comes from --text or stdin, used exactly as given (a trailing newline is part of it).
            With --decode the input is a JSON array of ids and the text is written exactly, nothing added.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Model folder (tokenizer.json, or Qwen1's qwen.tiktoken).")
    var model: String?

    @Option(name: .long, help: "A tokenizer.json or *.tiktoken file.")
    var tokenizer: String?

    @Option(name: .long, help: "The input (default: stdin).")
    var text: String?

    @Flag(name: .long, help: "Encode special-token strings in the text as plain text (for untrusted input).")
    var noSpecial = false

    @Flag(name: .long, help: "Read a JSON array of ids and print their text.")
    var decode = false

    @Flag(name: .long, help: "With --decode: leave out special tokens.")
    var skipSpecialTokens = false

    func validate() throws {
        if (model == nil) == (tokenizer == nil) {
            throw ValidationError("give exactly one of --model DIR or --tokenizer FILE")
        }
    }

    func run() throws {
        global.apply()
        let tok = try model.map { try Tokenizer(modelFolder: $0) } ?? Tokenizer(file: tokenizer!)
        let input: String
        if let text {
            input = text
        } else {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard let s = String(validating: data, as: UTF8.self) else {
                throw CLIError("stdin is not valid UTF-8")
            }
            input = s
        }
        if decode {
            let ids = try IdList.parse(input, source: text == nil ? "stdin" : "--text")
            let out = try tok.decode(ids, skipSpecialTokens: skipSpecialTokens)
            FileHandle.standardOutput.write(Data(out.utf8))
        } else {
            let ids = tok.encodeIds(input, allowSpecial: !noSpecial)
            FileHandle.standardOutput.write(Data((IdList.json(ids) + "\n").utf8))
        }
    }
}
