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

    @Flag(name: .long, help: ArgumentHelp("Encode each input line as its own text, on all cores; one JSON array per line.", visibility: .hidden))
    var eachLine = false

    @Flag(name: .long, help: ArgumentHelp("Print load and encode times to stderr (for Scripts/bench/tokenizer).", visibility: .hidden))
    var timings = false

    func validate() throws {
        if (model == nil) == (tokenizer == nil) {
            throw ValidationError("give exactly one of --model DIR or --tokenizer FILE")
        }
    }

    func run() throws {
        global.apply()
        let t0 = Date()
        let tok = try model.map { try Tokenizer(modelFolder: $0) } ?? Tokenizer(file: tokenizer!)
        let loaded = Date()
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
        } else if eachLine {
            let lines = input.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var all: [[Int32]] = []
            var best = Double.infinity
            for _ in 0..<(timings ? 5 : 1) {
                tok.clearCaches()
                let t1 = Date()
                all = tok.encodeBatch(lines, allowSpecial: !noSpecial)
                best = min(best, Date().timeIntervalSince(t1))
            }
            report(loaded.timeIntervalSince(t0), best, input.utf8.count, all.reduce(0) { $0 + $1.count })
            FileHandle.standardOutput.write(Data(all.map { IdList.json($0) + "\n" }.joined().utf8))
        } else {
            var ids: [Int32] = []
            var best = Double.infinity
            for _ in 0..<(timings ? 5 : 1) {  // --timings: the best of 5, as the bench does for the others
                tok.clearCaches()
                let t1 = Date()
                ids = tok.encodeIds(input, allowSpecial: !noSpecial)
                best = min(best, Date().timeIntervalSince(t1))
            }
            report(loaded.timeIntervalSince(t0), best, input.utf8.count, ids.count)
            FileHandle.standardOutput.write(Data((IdList.json(ids) + "\n").utf8))
        }
    }

    private func report(_ load: Double, _ encode: Double, _ bytes: Int, _ tokens: Int) {
        guard timings else { return }
        let line = String(format: "load_s=%.4f encode_s=%.4f bytes=%d tokens=%d mb_per_s=%.2f\n",
                          load, encode, bytes, tokens, Double(bytes) / 1e6 / max(encode, 1e-9))
        FileHandle.standardError.write(Data(line.utf8))
    }
}
