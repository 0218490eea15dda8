import Foundation
import Jinja
import Tokenizer

/// Turns a normalised record into token ids and labels: render with the template, tokenise the
/// text once with byte offsets, label the tokens that overlap an assistant span.
///
/// Assistant spans are found by rendering, for each assistant message i, the messages before it
/// with `add_generation_prompt=true` (P) and the messages up to and including it (F). F must
/// start with P, and the full conversation's text must start with F (or, failing that, contain
/// F's tail after the previous span): the assistant's turn is then F minus P, cut after the eos
/// token that closes its content (`<|im_end|>` for Qwen), so the newline a template prints after
/// it stays unlabelled — the tokens `{% generation %}` marks in transformers' templates. A
/// template for which this fails is reported (with the record) instead of guessed at.
final class SampleBuilder {
    let template: Template
    let source: ChatTemplateSource
    let tokenizer: Tokenizer
    let trainOnPrompt: Bool
    let context: [String: Value]
    let eos: [UInt8]?
    let eosId: Int32?
    /// The id of `eos` when the template itself prints it (then every answer must end with it).
    let closingId: Int32?

    init(source: ChatTemplateSource, tokenizer: Tokenizer, tokenizerConfig: TokenizerConfig, trainOnPrompt: Bool) throws {
        self.source = source
        self.tokenizer = tokenizer
        self.trainOnPrompt = trainOnPrompt
        do {
            template = try Template(source.source, options: source.isRecordTemplate ? .plainEnvironment : TemplateOptions())
        } catch {
            throw TrainingError.badTemplate(path: source.origin, message: "\(error)")
        }
        var context: [String: Value] = [:]
        for (key, token) in [("bos_token", tokenizerConfig.bosToken), ("eos_token", tokenizerConfig.eosToken),
                             ("pad_token", tokenizerConfig.padToken), ("unk_token", tokenizerConfig.unkToken)] {
            if let token { context[key] = .string(token) }
        }
        self.context = context
        // The token that ends an assistant turn: eos, or <|im_end|> for ChatML templates whose
        // tokenizer's eos is <|endoftext|> (Qwen base models).
        let eosText = tokenizerConfig.eosToken
        if let e = eosText, source.source.contains(e) {
            eos = Array(e.utf8)
        } else if source.source.contains("<|im_end|>") {
            eos = Array("<|im_end|>".utf8)
        } else {
            eos = eosText.map { Array($0.utf8) }
        }
        // Appended to pre-training text so the model learns where a document ends.
        eosId = tokenizer.id(forToken: eosText ?? "<|endoftext|>").map(Int32.init)
        if let eos, source.source.contains(String(decoding: eos, as: UTF8.self)) {
            closingId = tokenizer.id(forToken: String(decoding: eos, as: UTF8.self)).map(Int32.init)
        } else {
            closingId = nil
        }
    }

    /// ids and labels (−100 where not trained) of one record.
    func build(_ record: NormalizedRecord) throws -> (ids: [Int32], labels: [Int32]) {
        switch record {
        case .text(let text):
            var ids = tokenizer.encodeIds(text)
            if let e = eosId { ids.append(e) }
            return (ids, ids)
        case let .chat(messages, roles, tools):
            let (text, spans) = try chatSpans(messages, roles, tools)
            var (ids, labels) = label(text, spans)
            // A template that ends the conversation without closing the last answer (Qwen1.5's
            // first template prints <|im_end|> only before another message): add the eos token,
            // labelled, or the model never learns to stop.
            if let eos, let closingId, !text.utf8.reversed().drop(while: { [0x20, 0x0A, 0x0D, 0x09].contains($0) }).starts(with: eos.reversed()) {
                ids.append(closingId)
                labels.append(closingId)
            }
            return (ids, labels)
        case let .record(value, output):
            let (text, spans) = try recordSpans(value, output)
            return label(text, spans)
        }
    }

    private func label(_ text: String, _ spans: [Range<Int>]) -> (ids: [Int32], labels: [Int32]) {
        let enc = tokenizer.encodeWithOffsets(text)
        let ids = enc.ids.map { Int32($0) }
        if trainOnPrompt { return (ids, ids) }
        var labels = [Int32](repeating: -100, count: ids.count)
        var s = 0
        for (k, r) in enc.offsets.enumerated() {
            while s < spans.count && spans[s].upperBound <= r.lowerBound && !(r.isEmpty && spans[s].contains(r.lowerBound)) { s += 1 }
            guard s < spans.count else { break }
            let span = spans[s]
            let overlaps = r.isEmpty ? span.contains(r.lowerBound) : (r.lowerBound < span.upperBound && r.upperBound > span.lowerBound)
            if overlaps { labels[k] = ids[k] }
        }
        return (ids, labels)
    }

    func render(_ messages: ArraySlice<Value>, _ tools: Value, generationPrompt: Bool) throws -> [UInt8] {
        var ctx = context
        ctx["messages"] = .array(Array(messages))
        ctx["tools"] = tools
        ctx["add_generation_prompt"] = .bool(generationPrompt)
        do {
            return Array(try template.render(ctx).utf8)
        } catch {
            throw RecordIssue(.templateFailed, "the template (\(source.origin)) failed: \(error)")
        }
    }

    func chatSpans(_ messages: [Value], _ roles: [String], _ tools: Value) throws -> (String, [Range<Int>]) {
        let full = try render(messages[...], tools, generationPrompt: false)
        let text = String(decoding: full, as: UTF8.self)
        if trainOnPrompt { return (text, [0..<full.count]) }
        var spans: [Range<Int>] = []
        var cursor = 0
        for i in roles.indices where roles[i] == "assistant" {
            // OpenAI's fine-tuning format: "weight": 0 keeps an assistant message out of the loss.
            if case .dict(let m) = messages[i], let w = m["weight"], w.pyEquals(.int(0)) { continue }
            let prompt = try render(messages[..<i], tools, generationPrompt: true)
            let upTo = i == messages.count - 1 ? full : try render(messages[...i], tools, generationPrompt: false)
            guard upTo.starts(with: prompt) else {
                throw RecordIssue(.spansUnrecoverable, "the template (\(source.origin)) does not render messages 0..<\(i) with "
                    + "add_generation_prompt as the start of messages 0...\(i), so message \(i)'s tokens cannot be told apart; "
                    + "use another template_name or train_on_prompt: true")
            }
            var turn = upTo[prompt.count...]
            let start: Int
            if full.starts(with: upTo) && prompt.count >= cursor {
                start = prompt.count
            } else if full.starts(with: prompt) && prompt.count >= cursor {
                // The turn ends differently when the conversation goes on (Phi-3 prints eos_token
                // after the last message only): keep the part both renders share, cut back to
                // a line end so no piece of the next message's marker is taken.
                start = prompt.count
                var shared = 0
                while shared < turn.count && start + shared < full.count && turn[turn.startIndex + shared] == full[start + shared] { shared += 1 }
                if shared < turn.count {
                    var cut = shared
                    while cut > 0 && full[start + cut - 1] != 0x0A { cut -= 1 }
                    shared = cut
                }
                turn = turn.prefix(shared)
            } else if let at = find(Array(turn), in: full, from: cursor) {
                start = at
            } else {
                throw RecordIssue(.spansUnrecoverable, "the template (\(source.origin)) renders assistant message \(i) differently "
                    + "inside the whole conversation than on its own, so its tokens cannot be found; "
                    + "use another template_name or train_on_prompt: true")
            }
            let turnEnd = start + turn.count
            var from = start
            if case .dict(let m) = messages[i], case .string(let content)? = m["content"], !content.isEmpty,
               let at = find(Array(content.utf8), in: full, from: start, before: turnEnd) {
                from = at + content.utf8.count
            }
            var end = turnEnd
            if let eos, let at = find(eos, in: full, from: from, before: turnEnd) {
                end = at + eos.count
            } else {
                while end > from && [0x20, 0x0A, 0x0D, 0x09].contains(full[end - 1]) { end -= 1 }
                // Templates that print the closing eos only when another message follows (Qwen1.5's
                // first template): the eos is right after the turn in the whole conversation.
                if let eos, full[end...].starts(with: eos) { end += eos.count }
            }
            if end > start { spans.append(start..<end) }
            cursor = end
        }
        return (text, spans)
    }

    /// Single-record templates: render the record, and again with an empty `output`; the output
    /// is what the second lacks. The eos right after it is labelled too.
    func recordSpans(_ record: Value, _ output: String) throws -> (String, [Range<Int>]) {
        guard case .dict(let d) = record else { throw RecordIssue(.unknownShape, "a record must be a JSON object") }
        let full = try renderRecord(record)
        let text = String(decoding: full, as: UTF8.self)
        if trainOnPrompt { return (text, [0..<full.count]) }
        let blank = try renderRecord(.object(d.pairs.map { $0.0 == "output" ? ($0.0, .string("")) : $0 }))
        let out = Array(output.utf8)
        let n = out.count
        let unrecoverable = RecordIssue(.spansUnrecoverable, "the template (\(source.origin)) does not print \"output\" exactly once, "
            + "so the answer's tokens cannot be found; use train_on_prompt: true or print {{ messages['output'] }} once")
        guard full.count - blank.count == n else { throw unrecoverable }
        var s = 0
        while s < blank.count && full[s] == blank[s] { s += 1 }
        while true {
            if full[s..<(s + n)].elementsEqual(out) && full[(s + n)...].elementsEqual(blank[s...]) { break }
            if s == 0 { throw unrecoverable }
            s -= 1
        }
        var end = s + n
        if let eos, full[end...].starts(with: eos) { end += eos.count }
        return (text, [s..<end])
    }

    private func renderRecord(_ record: Value) throws -> [UInt8] {
        var ctx = context
        ctx["messages"] = record
        do {
            return Array(try template.render(ctx).utf8)
        } catch {
            throw RecordIssue(.templateFailed, "the template (\(source.origin)) failed: \(error)")
        }
    }
}

/// First index ≥ `from` where `needle` occurs in `haystack` and ends at or before `before`.
func find(_ needle: [UInt8], in haystack: [UInt8], from: Int, before: Int? = nil) -> Int? {
    let limit = min(before ?? haystack.count, haystack.count)
    guard !needle.isEmpty, from >= 0, limit - from >= needle.count else { return nil }
    let first = needle[0]
    var k = from
    while k + needle.count <= limit {
        if haystack[k] == first && haystack[k..<(k + needle.count)].elementsEqual(needle) { return k }
        k += 1
    }
    return nil
}
