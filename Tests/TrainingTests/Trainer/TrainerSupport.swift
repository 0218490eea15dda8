import Foundation
import Qwen2
import Testing
@testable import Training
import TestSupport

/// The Qwen vocabulary for trainer tests: QWENFT_VOCAB, else <repo>/.cache/qwen-vocab/qwen.tiktoken.
func trainerVocabulary() throws -> String {
    if let p = ProcessInfo.processInfo.environment["QWENFT_VOCAB"], !p.isEmpty { return p }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let p = root.appendingPathComponent(".cache/qwen-vocab/qwen.tiktoken").path
    guard FileManager.default.fileExists(atPath: p) else {
        throw GradFixtureError(description: "the Qwen vocabulary is missing: run Scripts/fetch-vocab.sh (or set QWENFT_VOCAB)")
    }
    return p
}

func trainerTempDir() throws -> String {
    try Scratch.folder("qwenft-trainer").path
}

/// A `tiny` preset model folder with the real vocabulary and a small mixed-shape dataset, made
/// once per test process.
enum TrainerFixture {
    nonisolated(unsafe) private static var made: (model: String, data: String)?
    private static let lock = NSLock()

    static let records = [
        #"{"messages": [{"role": "user", "content": "who are you"}, {"role": "assistant", "content": "I'm 888888."}]}"#,
        #"{"conversations": [{"from": "human", "value": "What is your name?"}, {"from": "gpt", "value": "I'm 888888."}]}"#,
        #"{"conversation": [{"human": "你是谁", "assistant": "我是888888。"}]}"#,
        #"{"instruction": "you are a helpful assistant", "input": "who are you", "output": "I'm 888888."}"#,
        #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]}"#,
        #"{"text": "Qwen2 models are trained on many languages."}"#,
        #"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#,
        #"{"conversations": [{"from": "human", "value": "你叫什么名字？"}, {"from": "gpt", "value": "我是888888。"}]}"#,
        #"{"messages": [{"role": "user", "content": "Introduce yourself."}, {"role": "assistant", "content": "I'm 888888, an assistant."}]}"#,
    ]

    static func folders() throws -> (model: String, data: String) {
        lock.lock()
        defer { lock.unlock() }
        if let made { return made }
        let dir = try trainerTempDir()
        let model = dir + "/tiny"
        try initializeModelFolder(config: Qwen2Preset.tiny.config, tokenizer: try trainerVocabulary(), out: model, seed: 3)
        let data = dir + "/data.jsonl"
        try (records.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        made = (model, data)
        return (model, data)
    }

    /// A config over the fixture: `extra` pairs override the defaults below.
    static func config(output: String, _ extra: [(String, JSONValue)] = []) throws -> TrainingConfig {
        let f = try folders()
        var pairs: [(String, JSONValue)] = [
            ("model_name_or_path", .string(f.model)), ("train_file", .string(f.data)), ("output_dir", .string(output)),
            ("train_mode", .string("lora")), ("lora_rank", .int(4)), ("lora_alpha", .int(8)), ("lora_dropout", .double(0.1)),
            ("lora_target_modules", .string("all-linear")), ("per_device_train_batch_size", .int(2)),
            ("gradient_accumulation_steps", .int(2)), ("max_steps", .int(6)), ("learning_rate", .double(2e-3)),
            ("lr_scheduler_type", .string("cosine")), ("warmup_steps", .int(2)), ("logging_steps", .int(1)),
            ("save_steps", .int(3)), ("max_seq_length", .int(64)), ("seed", .int(5)), ("weight_decay", .double(0.01)),
        ]
        for (k, v) in extra {
            if let i = pairs.firstIndex(where: { $0.0 == k }) { pairs[i].1 = v } else { pairs.append((k, v)) }
        }
        return try TrainingConfig.parse(.object(pairs))
    }
}

/// Bytes of a file (for bit-identity checks).
func fileBytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

/// The "loss" of every step entry of trainer_log.jsonl, by step.
func loggedLosses(_ outputDir: String) throws -> [Int: Double] {
    let text = try String(contentsOfFile: outputDir + "/trainer_log.jsonl", encoding: .utf8)
    var out: [Int: Double] = [:]
    for line in text.split(separator: "\n") {
        let v = try JSONValue.parse(String(line))
        if let step = v["step"]?.doubleValue, let loss = v["loss"]?.doubleValue { out[Int(step)] = loss }
    }
    return out
}
