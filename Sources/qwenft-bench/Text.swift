// tokenize, template: the text front end (Scripts/bench/tokenizer, Scripts/bench/template).
// Each prints what `qwenft tokenize` / `qwenft template` print on stdout (the scripts check it
// against the Python peers) and its timings as key=value pairs on stderr.
import Foundation
import Jinja
import QwenCore
import Tokenizer

/// tokenize: stdin encoded with FILE (tokenizer.json or *.tiktoken), as one text or one text per
/// line (the batch API, on QWENFT_THREADS threads); the best of `repeats` encodes, caches
/// cleared before each. stderr: load_s encode_s bytes tokens mb_per_s.
func runTokenize(tokenizer path: String, eachLine: Bool, repeats: Int) throws {
    Threading.configure(threads: nil)
    let t0 = DispatchTime.now().uptimeNanoseconds
    let tok = try Tokenizer(file: path)
    let load = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    let data = FileHandle.standardInput.readDataToEndOfFile()
    guard let input = String(validating: data, as: UTF8.self) else { throw BenchError("stdin is not valid UTF-8") }
    var lines: [[Int32]] = []
    var best = Double.infinity
    for _ in 0..<repeats {
        tok.clearCaches()
        best = min(best, seconds {
            lines = eachLine ? tok.encodeBatch(input.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
                             : [tok.encodeIds(input)]
        })
    }
    let bytes = input.utf8.count, tokens = lines.reduce(0) { $0 + $1.count }
    FileHandle.standardError.write(Data(String(format: "load_s=%.4f encode_s=%.4f bytes=%d tokens=%d mb_per_s=%.2f\n",
                                               load, best, bytes, tokens, Double(bytes) / 1e6 / max(best, 1e-9)).utf8))
    FileHandle.standardOutput.write(Data(lines.map { IdList.json($0) + "\n" }.joined().utf8))
}

/// template: TEMPLATE parsed once and rendered `renders` times over MESSAGES (a JSON array of
/// messages, or an object with "messages" and "tools"), as `qwenft template --template` renders
/// it. stdout: the rendering; stderr: renders seconds renders_per_s cpu_renders_per_s bytes.
func runTemplate(template: String, messages: String, addGenerationPrompt: Bool, renders: Int) throws {
    var context: [String: Value] = ["tools": .none, "documents": .none, "add_generation_prompt": .bool(addGenerationPrompt)]
    let input = try Value.parseJSON(try String(contentsOfFile: messages, encoding: .utf8))
    if case .dict(let d) = input {
        context["messages"] = d["messages"]
        if let tools = d["tools"] { context["tools"] = tools }
    } else {
        context["messages"] = input
    }
    let compiled = try Template(try String(contentsOfFile: template, encoding: .utf8))
    let rendered = try compiled.render(context)
    let start = DispatchTime.now().uptimeNanoseconds
    let cpuStart = clock()
    var bytes = 0
    for _ in 0..<renders { bytes &+= try compiled.render(context).utf8.count }
    let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let cpu = Double(clock() - cpuStart) / Double(CLOCKS_PER_SEC)
    FileHandle.standardError.write(Data("renders=\(renders) seconds=\(wall) renders_per_s=\(Double(renders) / wall) cpu_renders_per_s=\(Double(renders) / cpu) bytes=\(bytes)\n".utf8))
    FileHandle.standardOutput.write(Data(rendered.utf8))
}
