import Foundation
import JSON
import Tokenizer

/// What `qwenft eval` reports: mean next-token loss over every predicted token of every record,
/// the share of tokens whose argmax was right, and how many tokens were scored.
public struct EvalResult: Codable, Sendable {
    public var loss: Double
    public var tokenAccuracy: Double
    public var tokens: Int
    public var records: Int

    enum CodingKeys: String, CodingKey {
        case loss, tokenAccuracy = "token_accuracy", tokens, records
    }
}

extension EvalResult {
    /// `qwenft eval --json`'s line: compact, keys sorted, integral doubles bare (`1` for 1.0),
    /// the bytes Foundation's encoder printed before the JSON target.
    public func jsonText() throws -> String { try JSONValueEncoder().encode(self).text(.foundation(pretty: false)) }
}

/// Reads a JSONL file of {"text": …} records; errors name the line.
public func readTextRecords(_ path: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw Qwen2Error.missingFile(path: path, hint: "--data must be a JSONL file of {\"text\": …} records.")
    }
    guard let content = String(data: data, encoding: .utf8) else {
        throw Qwen2Error.badJSON(path: path, detail: "not valid UTF-8")
    }
    var texts: [String] = []
    for (i, line) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { continue }
        let obj: JSONValue
        do { obj = try JSONValue.parse(String(line), options: .python) } catch {
            throw Qwen2Error.badJSON(path: "\(path):\(i + 1)", detail: "column \(error.column): \(error.reason)")
        }
        guard obj.objectValue != nil else {
            throw Qwen2Error.badJSON(path: "\(path):\(i + 1)", detail: "not a JSON object")
        }
        guard let text = obj["text"]?.stringValue else {
            throw Qwen2Error.badJSON(path: "\(path):\(i + 1)", detail: "the record has no string \"text\" (eval reads {\"text\": …} records)")
        }
        texts.append(text)
    }
    if texts.isEmpty { throw Qwen2Error.badJSON(path: path, detail: "no records") }
    return texts
}

/// Loss and accuracy of `model` on `texts`, each tokenised (special-token strings included) and
/// cut to `maxSeqLength` tokens; every token after the first is a target. The loss is the sum of
/// token losses over all records divided by their count, as transformers' mean over a batch.
public func evaluate(model: Qwen2Model, tokenizer: Tokenizer, texts: [String], maxSeqLength: Int?) throws -> EvalResult {
    let limit = min(maxSeqLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
    var total = TokenScores()
    for text in texts {
        let ids = Array(tokenizer.encodeIds(text, allowSpecial: true).prefix(limit))
        if ids.count < 2 { continue }
        let cache = KVCache(config: model.config, batch: 1, capacity: ids.count, backend: model.backend)
        let hidden = try model.forward(ids: ids, B: 1, T: ids.count, cache: cache)
        total.add(model.score(hidden: hidden, targets: Array(ids.dropFirst()) + [-100]))
    }
    if total.count == 0 { throw Qwen2Error.badInput("no record has two or more tokens: nothing to score") }
    return EvalResult(loss: total.lossSum / Double(total.count),
                      tokenAccuracy: Double(total.correct) / Double(total.count),
                      tokens: total.count, records: texts.count)
}
