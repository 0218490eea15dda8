import Foundation
import QwenCore
import Testing
@testable import Training

/// Preprocessing throughput on a generated 10k-record dataset (all five shapes), cache-hit load
/// time and one epoch of batching; run by Scripts/bench/data/run.sh (QWENFT_BENCH=1), skipped in
/// the normal test run. The data file is left at $QWENFT_BENCH_DATA (for the Python peer).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["QWENFT_BENCH"] != nil))
struct DataBenchmarks {
    @Test func preprocessTenThousandRecords() throws {
        let env = ProcessInfo.processInfo.environment
        let records = Int(env["QWENFT_BENCH_RECORDS"] ?? "") ?? 10_000
        let out = env["QWENFT_BENCH_DATA"] ?? FileManager.default.temporaryDirectory.appendingPathComponent("qwenft-bench-data").path
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let path = URL(fileURLWithPath: out).appendingPathComponent("data.jsonl").path
        try Data(generateBenchmarkData(records: records).utf8).write(to: URL(fileURLWithPath: path))
        let cache = URL(fileURLWithPath: out).appendingPathComponent("cache")
        try? FileManager.default.removeItem(at: cache)
        let options = DatasetOptions(maxSeqLength: 2048, cacheDirectory: cache.path)

        _ = try qwen()  // the tokenizer's load is not preprocessing
        let t0 = DispatchTime.now().uptimeNanoseconds
        let built = try loadDataset([path], options: options)
        let cold = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let t1 = DispatchTime.now().uptimeNanoseconds
        let hit = try loadDataset([path], options: options)
        let warm = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9
        #expect(hit.report.fromCache && hit.ids == built.ids)
        let r = built.report
        print(String(format: "BENCH data preprocess records=%d samples=%d tokens=%d labelled=%d threads=%d: %.3f s, %.0f records/s, %.0f tokens/s",
                     r.records, r.samples, r.tokens, r.labelledTokens, Threading.count, cold, Double(r.records) / cold, Double(r.tokens) / cold))
        print(String(format: "BENCH data cache-hit load: %.3f s (cache file %.1f MB)", warm,
                     Double((try? FileManager.default.attributesOfItem(atPath: hit.report.cachePath ?? "")[.size] as? Int) ?? 0) / 1e6))
        let t2 = DispatchTime.now().uptimeNanoseconds
        let loader = try DataLoader(dataset: built, options: BatchingOptions(batchSize: 8, maxSeqLength: 2048, packing: true, seed: 1))
        var tokens = 0
        for b in loader.batches(epoch: 0) { tokens += b.tokenCount }
        let batching = Double(DispatchTime.now().uptimeNanoseconds - t2) / 1e9
        print(String(format: "BENCH data packing+batching one epoch: %.3f s (%d micro-batches, %d tokens)", batching, loader.batchesPerEpoch, tokens))
    }
}

/// Deterministic records of every shape: English and Chinese prose, 1–3 turns, 50–600 tokens.
func generateBenchmarkData(records: Int) -> String {
    var g = SeededGenerator(seed: 2024)
    let words = ["the", "model", "learns", "to", "answer", "questions", "about", "language", "with", "care", "and", "data",
                 "training", "is", "a", "process", "of", "many", "small", "steps", "gradient", "descent", "loss", "tokens",
                 "Qwen", "fine-tuning", "adapter", "LoRA", "rank", "matrix", "weights", "batch", "epoch", "2024", "3.14",
                 "你好", "模型", "训练", "数据", "问题", "回答", "我们", "学习", "语言", "。", "，", "!", "?", "\n", "code:", "x = 1;"]
    func sentence(_ n: Int) -> String {
        (0..<n).map { _ in words[g.below(words.count)] }.joined(separator: " ")
    }
    func json(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }
    var lines: [String] = []
    lines.reserveCapacity(records)
    for k in 0..<records {
        let turns = 1 + g.below(3)
        let pairs = (0..<turns).map { _ in (sentence(10 + g.below(80)), sentence(20 + g.below(200))) }
        switch k % 20 {
        case 0..<8:
            let msgs = pairs.map { #"{"role": "user", "content": \#(json($0.0))}, {"role": "assistant", "content": \#(json($0.1))}"# }
            lines.append(#"{"messages": [{"role": "system", "content": "You are a helpful assistant."}, \#(msgs.joined(separator: ", "))]}"#)
        case 8..<12:
            let msgs = pairs.map { #"{"from": "human", "value": \#(json($0.0))}, {"from": "gpt", "value": \#(json($0.1))}"# }
            lines.append(#"{"conversations": [\#(msgs.joined(separator: ", "))]}"#)
        case 12..<15:
            let msgs = pairs.map { #"{"human": \#(json($0.0)), "assistant": \#(json($0.1))}"# }
            lines.append(#"{"system": "你是一个有用的助手。", "conversation": [\#(msgs.joined(separator: ", "))]}"#)
        case 15..<19:
            lines.append(#"{"instruction": \#(json(pairs[0].0)), "input": \#(json(sentence(g.below(20)))), "output": \#(json(pairs[0].1))}"#)
        default:
            lines.append(#"{"text": \#(json(sentence(100 + g.below(300))))}"#)
        }
    }
    return lines.joined(separator: "\n") + "\n"
}
