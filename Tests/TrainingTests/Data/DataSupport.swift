import Foundation
import Testing
import Tokenizer
@testable import Training
import TestSupport

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let dataFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/data")
let templatesFolder = repoRoot.appendingPathComponent("Templates").path

struct DataFixtureError: Error, CustomStringConvertible { let description: String }

/// The real Qwen vocabulary: $QWENFT_VOCAB, else <repo>/.cache/qwen-vocab/qwen.tiktoken.
func qwenVocabPath() throws -> String {
    let path = ProcessInfo.processInfo.environment["QWENFT_VOCAB"]
        ?? repoRoot.appendingPathComponent(".cache/qwen-vocab/qwen.tiktoken").path
    guard FileManager.default.fileExists(atPath: path) else {
        throw DataFixtureError(description: "the Qwen vocabulary is missing at \(path): run Scripts/fetch-vocab.sh (and export QWENFT_VOCAB)")
    }
    return path
}

enum DataShared {
    static let tokenizer: Result<Tokenizer, Error> = Result { try Tokenizer(tiktoken: try qwenVocabPath()) }
    /// A Qwen2.5-Instruct tokenizer config: eos <|im_end|>, pad <|endoftext|>, its chat template.
    static let config: Result<TokenizerConfig, Error> = Result {
        let template = try String(contentsOf: dataFixtures.appendingPathComponent("qwen25_chat_template.jinja"), encoding: .utf8)
        return TokenizerConfig(eosToken: "<|im_end|>", padToken: "<|endoftext|>", chatTemplates: ["default": template])
    }
}

func qwen() throws -> (Tokenizer, TokenizerConfig) {
    (try DataShared.tokenizer.get(), try DataShared.config.get())
}

/// A fresh temporary folder.
func dataTempDir() throws -> URL {
    try Scratch.folder("qwenft-data")
}

/// Writes `text` to `name` in `dir` and returns the path.
@discardableResult
func write(_ text: String, _ name: String, in dir: URL) throws -> String {
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

struct ExpectedSample: Decodable {
    let ids: [Int32]
    let labels: [Int32]
    let text: String?
}

struct ExpectedData: Decodable {
    let mixed: [ExpectedSample]
    let seed000: [ExpectedSample]
    let eos_id: Int32
}

func expectedData() throws -> ExpectedData {
    try JSONDecoder().decode(ExpectedData.self, from: Data(contentsOf: dataFixtures.appendingPathComponent("expected.json")))
}

/// Loads files with the model's template (or a named one) and the given options.
func loadDataset(_ files: [String], templateName: String? = nil, options: DatasetOptions = DatasetOptions(maxSeqLength: 4096),
                 progress: ((PreprocessingProgress) -> Void)? = nil) throws -> TokenizedDataset {
    let (tok, cfg) = try qwen()
    let template = try ChatTemplateSource.resolve(templateName: templateName, templatesFolder: templatesFolder, tokenizerConfig: cfg)
    return try TokenizedDataset.load(files: files, tokenizer: tok, tokenizerConfig: cfg, template: template, options: options, progress: progress)
}
