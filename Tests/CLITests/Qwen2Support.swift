import Foundation
import Testing

/// The Qwen vocabulary: QWENFT_VOCAB, else <repo>/.cache/qwen-vocab/qwen.tiktoken.
func qwenVocabulary() throws -> String {
    if let p = ProcessInfo.processInfo.environment["QWENFT_VOCAB"], !p.isEmpty { return p }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let p = root.appendingPathComponent(".cache/qwen-vocab/qwen.tiktoken").path
    guard FileManager.default.fileExists(atPath: p) else {
        throw CLITestError("the Qwen vocabulary is missing: run Scripts/fetch-vocab.sh (or set QWENFT_VOCAB)")
    }
    return p
}

/// A `tiny` preset folder made by `qwenft init --seed 7`, shared by the tests of one run.
enum TinyModel {
    nonisolated(unsafe) private static var made: String?
    private static let lock = NSLock()

    static func folder() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let made { return made }
        let dir = try makeTempDir().appendingPathComponent("tiny").path
        let r = try runQwenft(["init", "--preset", "tiny", "--seed", "7", "--tokenizer", try qwenVocabulary(), "--out", dir])
        guard r.status == 0 else { throw CLITestError("init failed: \(r.stderr)") }
        made = dir
        return dir
    }
}

/// Tests/CLITests/Fixtures/qwen2_tiny_expected.json (Scripts/fixtures/qwen2_cli.py).
struct TinyExpectations: Decodable {
    struct Eval: Decodable { let loss: Double; let token_accuracy: Double; let tokens: Int }
    let texts: [String]
    let eval: Eval
    let prompt: String
    let greedy_ids: [Int]
    let greedy_text: String

    static func load() throws -> TinyExpectations {
        try JSONDecoder().decode(TinyExpectations.self,
                                 from: Data(contentsOf: cliFixtures.appendingPathComponent("qwen2_tiny_expected.json")))
    }
}

/// The Qwen2Tests fixtures (tiny random models, PEFT adapters).
let qwen2ModelFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Qwen2Tests/Fixtures")
