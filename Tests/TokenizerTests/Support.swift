import Foundation
import JSON
import Testing
@testable import Tokenizer
import TestSupport

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// The real Qwen vocabulary: $QWENFT_VOCAB, else <repo>/.cache/qwen-vocab/qwen.tiktoken.
func vocabPath() throws -> String {
    let path = ProcessInfo.processInfo.environment["QWENFT_VOCAB"]
        ?? repoRoot.appendingPathComponent(".cache/qwen-vocab/qwen.tiktoken").path
    guard FileManager.default.fileExists(atPath: path) else {
        throw FixtureError(description: "the Qwen vocabulary is missing at \(path): run Scripts/fetch-vocab.sh (and export QWENFT_VOCAB)")
    }
    return path
}

/// Loaded once for all tests.
enum Shared {
    static let tiktoken: Result<Tokenizer, Error> = Result { try Tokenizer(tiktoken: try vocabPath()) }
    /// Our tokenizer.json writer's output for the real vocabulary, loaded back.
    static let written: Result<(Tokenizer, [UInt8]), Error> = Result {
        let bytes = try TokenizerJSONWriter.data(tiktoken: try vocabPath())
        let url = Scratch.file("qwenft-tok", suffix: ".json")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        if let export = ProcessInfo.processInfo.environment["QWENFT_EXPORT_TOKENIZER_JSON"] {
            try Data(bytes).write(to: URL(fileURLWithPath: export))
            let config = TokenizerConfig(eosToken: "<|im_end|>", padToken: "<|endoftext|>", chatTemplates: ["default": "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"], modelMaxLength: 32768)
            try config.jsonData().write(to: URL(fileURLWithPath: export).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json"))
        }
        return (try Tokenizer(tokenizerJSON: url.path), bytes)
    }
    static let corpus: Result<[String], Error> = Result {
        let bytes = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("corpus.jsonl")))
        return try bytes.split(separator: 0x0A).map { try parseJSON(Array($0)) as! String }
    }
    static let ids: Result<[[Int]], Error> = Result {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("ids.bin"))
        var out: [[Int]] = []
        data.withUnsafeBytes { raw in
            var k = 0
            func next() -> Int { defer { k += 4 }; return Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: k, as: Int32.self))) }
            while k < raw.count {
                let n = next()
                out.append((0..<n).map { _ in next() })
            }
        }
        return out
    }
    static let reference: Result<[String: Any], Error> = Result {
        try parseJSON([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("reference.json")))) as! [String: Any]
    }
}

/// Case index -> value, from a JSON object keyed by decimal strings.
func byCase<T>(_ key: String) throws -> [Int: T] {
    let ref = try Shared.reference.get()
    let obj = ref[key] as! [String: Any]
    var out: [Int: T] = [:]
    for (k, v) in obj { out[Int(k)!] = (v as! T) }
    return out
}

func ints(_ a: Any) -> [Int] { (a as! [Any]).map { ($0 as! NSNumber).intValue } }

func tempDir() throws -> URL {
    try Scratch.folder("qwenft-tok")
}

/// JSON -> Any through the JSON target (Foundation's JSONSerialization drops U+FEFF inside strings).
func parseJSON(_ bytes: [UInt8]) throws -> Any {
    func convert(_ v: JSONValue) -> Any {
        switch v {
        case .null: return NSNull()
        case let .bool(b): return b
        case let .int(i): return NSNumber(value: i)
        case let .double(d): return NSNumber(value: d)
        case let .string(s): return s
        case let .array(items): return items.map(convert)
        case let .object(pairs):
            var out: [String: Any] = [:]
            for (k, v) in pairs { out[k] = convert(v) }
            return out
        }
    }
    return convert(try JSONValue.parse(bytes, options: JSONOptions(duplicateKeys: .lastWins)))
}
