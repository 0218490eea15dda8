import Jinja
import Tokenizer

/// A preference record (task_type dpo) in the one shape the tokeniser knows.
enum PreferenceRecord {
    /// Conversational: the prompt's messages (system/user/assistant/tool turns ending where the
    /// answer starts) and the chosen and rejected continuations (one assistant message each).
    case chat(prompt: [Value], chosen: [Value], rejected: [Value], tools: Value)
    /// TRL's standard form: plain strings, no template.
    case text(prompt: String, chosen: String, rejected: String)
}

/// Recognises the three preference shapes:
/// - Firefly's `{"chosen": [messages…], "rejected": [messages…]}`: the same conversation (an
///   optional leading system message) differing only in the last assistant message;
/// - TRL's standard `{"prompt", "chosen", "rejected"}`: strings, or conversational (`prompt` a
///   message list, `chosen`/`rejected` assistant message lists);
/// - ultrafeedback_binarized's: `prompt` a string plus full `chosen`/`rejected` message lists (the
///   string repeats the user message: the lists are what is read; other keys are ignored).
/// Full message lists are split as TRL's `extract_prompt` does: the prompt is the longest run of
/// equal leading messages.
enum PreferenceFormats {
    static let shapes = "\"chosen\" and \"rejected\" (message lists, or strings with a \"prompt\")"

    static func isPreference(_ record: Value) -> Bool {
        guard case .dict(let d) = record else { return false }
        return d["chosen"] != nil || d["rejected"] != nil
    }

    static func normalize(_ record: Value) throws -> PreferenceRecord {
        guard case .dict(let d) = record else {
            throw RecordIssue(.unknownShape, "a record must be a JSON object, found \(RecordFormats.describe(record))")
        }
        guard let chosen = d["chosen"], let rejected = d["rejected"] else {
            let keys = d.keys.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ")
            throw RecordIssue(.unknownShape, "keys \(keys): task_type dpo expects \(shapes)")
        }
        let tools = try RecordFormats.toolsValue(d["tools"])
        switch (chosen, rejected) {
        case (.string(let c), .string(let r)):
            guard case .string(let p)? = d["prompt"] else {
                throw RecordIssue(.badField, "\"chosen\" and \"rejected\" are strings: a string \"prompt\" is needed too")
            }
            if RecordFormats.isBlank(c) { throw RecordIssue(.empty, "\"chosen\" is empty") }
            if RecordFormats.isBlank(r) { throw RecordIssue(.empty, "\"rejected\" is empty") }
            return .text(prompt: p, chosen: c, rejected: r)
        case (.list, .list):
            let c = try messages(chosen, "chosen"), r = try messages(rejected, "rejected")
            var prompt: [Value] = []
            var cRest = c, rRest = r
            if case .list? = d["prompt"] {
                prompt = try messages(d["prompt"]!, "prompt")
            } else {
                // extract_prompt: the longest common run of leading messages.
                var k = 0
                while k < min(c.count, r.count) && c[k].pyEquals(r[k]) { k += 1 }
                prompt = Array(c[..<k])
                cRest = Array(c[k...])
                rRest = Array(r[k...])
            }
            if case .string(let s)? = d["system"], !s.isEmpty, role(prompt.first) != "system" {
                prompt.insert(RecordFormats.message("system", .string(s)), at: 0)
            }
            try check(prompt: prompt, chosen: cRest, rejected: rRest)
            return .chat(prompt: prompt, chosen: cRest, rejected: rRest, tools: tools)
        default:
            throw RecordIssue(.badField, "\"chosen\" and \"rejected\" must both be message lists or both strings, found "
                + "\(RecordFormats.describe(chosen)) and \(RecordFormats.describe(rejected))")
        }
    }

    private static func messages(_ v: Value, _ key: String) throws -> [Value] {
        do {
            return try RecordFormats.openAI(v).map(\.value)
        } catch let issue as RecordIssue {
            throw RecordIssue(issue.kind, "\"\(key)\": " + issue.message.replacingOccurrences(of: "\"messages\"", with: "the list"))
        }
    }

    private static func role(_ m: Value?) -> String? {
        guard case .dict(let d)? = m, case .string(let r)? = d["role"] else { return nil }
        return r
    }

    /// The prompt is a conversation waiting for an answer; chosen and rejected are one answer each.
    private static func check(prompt: [Value], chosen: [Value], rejected: [Value]) throws {
        if chosen.isEmpty && rejected.isEmpty {
            throw RecordIssue(.identicalResponses, "\"chosen\" and \"rejected\" are the same conversation: nothing to prefer")
        }
        for (name, list) in [("chosen", chosen), ("rejected", rejected)] {
            if list.isEmpty {
                throw RecordIssue(.noAssistantTurn, "\"\(name)\" has no assistant message after the prompt both share")
            }
            if list.count > 1 {
                throw RecordIssue(.differentPrompts, "\"chosen\" and \"rejected\" differ before their last assistant message "
                    + "(message \(prompt.count) differs): they must be the same conversation with different last answers")
            }
            if role(list[0]) != "assistant" {
                throw RecordIssue(.noAssistantTurn, "\"\(name)\" ends with a \(role(list[0]) ?? "?") message: its last message must be the assistant's answer")
            }
        }
        let roles = prompt.compactMap { role($0) }
        if !roles.contains("user") {
            throw RecordIssue(.roleOutOfPlace, "the prompt has no user message")
        }
        do {
            try RecordFormats.checkOrder(roles + ["assistant"], prompt + [chosen[0]])
        } catch let issue as RecordIssue {
            throw RecordIssue(issue.kind, "in the prompt: " + issue.message)
        }
    }
}

/// Token ids of one preference record exactly as TRL 1.16's DPOTrainer derives them: render
/// the prompt with the generation prompt (P), prompt+chosen (C) and prompt+rejected (R) without
/// it, tokenise each, and cut C and R at their common prefix with P; strings are tokenised as
/// they are (with eos appended to chosen and rejected when missing), with no template.
struct PreferenceTokens {
    var prompt: [Int32]
    var chosen: [Int32]
    var rejected: [Int32]
}

extension SampleBuilder {
    func preferenceTokens(_ record: PreferenceRecord, eosToken: String?) throws -> PreferenceTokens {
        let p: [Int32], c: [Int32], r: [Int32]
        switch record {
        case let .chat(prompt, chosen, rejected, tools):
            if source.isRecordTemplate {
                throw RecordIssue(.templateFailed, "the template (\(source.origin)) renders single records; task_type dpo needs a chat template")
            }
            func text(_ m: [Value], _ gen: Bool) throws -> String { String(decoding: try render(m[...], tools, generationPrompt: gen), as: UTF8.self) }
            p = tokenizer.encodeIds(try text(prompt, true))
            c = tokenizer.encodeIds(try text(prompt + chosen, false))
            r = tokenizer.encodeIds(try text(prompt + rejected, false))
        case let .text(prompt, chosen, rejected):
            func withEos(_ s: String) -> String { eosToken.map { s.hasSuffix($0) ? s : s + $0 } ?? s }
            p = tokenizer.encodeIds(prompt)
            c = tokenizer.encodeIds(prompt + withEos(chosen))
            r = tokenizer.encodeIds(prompt + withEos(rejected))
        }
        let n = min(commonPrefix(p, c), commonPrefix(p, r))
        let out = PreferenceTokens(prompt: Array(p[..<n]), chosen: Array(c[n...]), rejected: Array(r[n...]))
        if out.chosen.isEmpty || out.rejected.isEmpty {
            throw RecordIssue(.empty, "\"\(out.chosen.isEmpty ? "chosen" : "rejected")\" adds no token after the prompt")
        }
        if out.chosen == out.rejected {
            throw RecordIssue(.identicalResponses, "\"chosen\" and \"rejected\" give the same tokens: nothing to prefer")
        }
        return out
    }
}

func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
    var n = 0
    while n < a.count && n < b.count && a[n] == b[n] { n += 1 }
    return n
}

/// TRL's truncation: with Firefly's `max_prompt_length` the prompt first keeps its last that
/// many tokens; a pair whose prompt alone reaches `maxLength` is dropped (nil); then
/// prompt+response keeps its first `maxLength` tokens. Returns (ids, labels) of chosen and
/// rejected, labels −100 on the prompt, and whether either was cut.
func truncatePreference(_ t: PreferenceTokens, maxLength: Int, maxPromptLength: Int?)
    -> (chosen: (ids: [Int32], labels: [Int32]), rejected: (ids: [Int32], labels: [Int32]), truncated: Bool)? {
    var prompt = t.prompt
    var truncated = false
    if let m = maxPromptLength, prompt.count > m {
        prompt = Array(prompt.suffix(m))
        truncated = true
    }
    if prompt.count >= maxLength { return nil }
    func build(_ response: [Int32]) -> (ids: [Int32], labels: [Int32]) {
        var ids = prompt + response
        var labels = [Int32](repeating: -100, count: prompt.count) + response
        if ids.count > maxLength {
            ids.removeLast(ids.count - maxLength)
            labels.removeLast(labels.count - maxLength)
            truncated = true
        }
        return (ids, labels)
    }
    let c = build(t.chosen), r = build(t.rejected)
    return (c, r, truncated)
}

extension DatasetReport {
    /// The summary of a preference dataset: pairs, not samples; "truncated" and "left out" count pairs.
    var preferenceSummary: [String] {
        let pairs = samples / 2
        var lines = ["dataset: \(records) records → \(pairs) preference pairs, \(tokens) tokens (\(labelledTokens) in responses), "
            + "longest \(longestSample)" + (fromCache ? ", from cache \(cachePath ?? "")" : String(format: ", %.2f s", seconds))]
        if truncated > 0 { lines.append("dataset: \(truncated) pair\(truncated == 1 ? "" : "s") truncated (max_seq_length / max_prompt_length)") }
        if droppedNoTargets > 0 {
            let at = droppedExamples.prefix(3).map(\.description).joined(separator: ", ")
            lines.append("dataset: \(droppedNoTargets) pair\(droppedNoTargets == 1 ? "" : "s") left out: the prompt alone reaches "
                + "max_seq_length (e.g. \(at)); raise max_seq_length or set max_prompt_length to keep them")
        }
        return lines + skippedRecordLines
    }
}

extension DataLoader {
    /// P pairs → 2P rows (the chosen sequences, then the rejected), right-padded to the longest.
    func makePreferenceBatch(_ pairs: [[Int]]) -> MicroBatch {
        let samples = pairs.map { $0[0] } + pairs.map { $0[1] }
        let B = samples.count
        let lengths = samples.map { min(dataset.length($0), options.maxSeqLength) }
        let T = max(1, lengths.max() ?? 1)
        var ids = [Int32](repeating: options.padId, count: B * T)
        var labels = [Int32](repeating: -100, count: B * T)
        var positions = [Int32](repeating: 0, count: B * T)
        var segments = [Int32](repeating: 0, count: B * T)
        var targets = 0
        for (b, i) in samples.enumerated() {
            let src = dataset.starts[i]
            for j in 0..<lengths[b] {
                ids[b * T + j] = dataset.ids[src + j]
                labels[b * T + j] = dataset.labels[src + j]
                positions[b * T + j] = Int32(j)
                segments[b * T + j] = 1
                if j > 0 && dataset.labels[src + j] != -100 { targets += 1 }
            }
        }
        return MicroBatch(batchSize: B, sequenceLength: T, inputIds: ids, labels: labels, positionIds: positions,
                          segmentIds: segments, sampleIndices: samples.map { [$0] }, tokenCount: lengths.reduce(0, +),
                          targetCount: targets, isPacked: false)
    }
}
