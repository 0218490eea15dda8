import Jinja

/// A record in the one shape the renderer knows, whatever shape it came in.
enum NormalizedRecord {
    /// OpenAI/ChatML messages: `messages[k]` is the dict handed to the template (role normalised
    /// to system/user/assistant/tool, every other key kept: tool_calls, name, reasoning_content…).
    case chat(messages: [Value], roles: [String], tools: Value)
    /// Pre-training text: every token a target.
    case text(String)
    /// The raw record for a single-record template (seed 000's `Template.j2`), and the string
    /// that is the model's answer (`output`).
    case record(Value, output: String)
}

/// Normalisation failed: what kind of problem, and the sentence for the user.
struct RecordIssue: Error {
    var kind: RecordProblemKind
    var message: String
    init(_ kind: RecordProblemKind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Recognises the five record shapes and turns each into messages:
/// - `messages`: [{role, content, …}] (OpenAI/ChatML), optional top-level `system` and `tools`
/// - `conversations`: [{from, value}] (ShareGPT: human/gpt/system/function_call/observation)
/// - `conversation`: [{human, assistant}] (Firefly), optional top-level `system`
/// - `instruction`/`input`/`output` (Alpaca), optional `system` and `history` [[q, a], …]
/// - `text` (pre-training)
/// A record with several of these keys is read by the first in this order.
enum RecordFormats {
    static let shapes = "messages, conversations, conversation, instruction/input/output or text"

    static func normalize(_ record: Value, forRecordTemplate: Bool) throws -> NormalizedRecord {
        guard case .dict(let d) = record else {
            throw RecordIssue(.unknownShape, "a record must be a JSON object, found \(describe(record))")
        }
        if d.count == 0 { throw RecordIssue(.empty, "the record is an empty object") }
        if forRecordTemplate {
            guard let out = d["output"] else {
                throw RecordIssue(.noAssistantTurn, "the record has no \"output\" (the answer the single-record template trains on)")
            }
            guard case .string(let s) = out else { throw RecordIssue(.badField, "\"output\" must be a string, found \(describe(out))") }
            if isBlank(s) { throw RecordIssue(.empty, "\"output\" is empty") }
            return .record(record, output: s)
        }
        var messages: [(role: String, value: Value)]
        if let m = d["messages"] {
            messages = try openAI(m)
        } else if let c = d["conversations"] {
            messages = try shareGPT(c)
        } else if let c = d["conversation"] {
            messages = try firefly(c)
        } else if d["output"] != nil && (d["instruction"] != nil || d["input"] != nil) {
            messages = try alpaca(d)
        } else if let t = d["text"] {
            guard case .string(let s) = t else { throw RecordIssue(.badField, "\"text\" must be a string, found \(describe(t))") }
            if isBlank(s) { throw RecordIssue(.empty, "\"text\" is empty") }
            return .text(s)
        } else {
            let keys = d.keys.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ")
            throw RecordIssue(.unknownShape, "keys \(keys): expected \(shapes)")
        }
        if let s = d["system"], messages.first?.role != "system" {
            guard case .string(let text) = s else { throw RecordIssue(.badField, "\"system\" must be a string, found \(describe(s))") }
            if !text.isEmpty { messages.insert(("system", message("system", .string(text))), at: 0) }
        }
        let tools = try toolsValue(d["tools"])
        try checkOrder(messages.map(\.role), messages.map(\.value))
        return .chat(messages: messages.map(\.value), roles: messages.map(\.role), tools: tools)
    }

    // MARK: Shapes

    static func openAI(_ v: Value) throws -> [(role: String, value: Value)] {
        guard case .list(let list) = v else { throw RecordIssue(.badField, "\"messages\" must be a list, found \(describe(v))") }
        if list.items.isEmpty { throw RecordIssue(.empty, "\"messages\" is empty") }
        var out: [(role: String, value: Value)] = []
        for (k, item) in list.items.enumerated() {
            guard case .dict(let m) = item else {
                throw RecordIssue(.badField, "messages[\(k)] must be an object with \"role\" and \"content\", found \(describe(item))")
            }
            guard case .string(let given)? = m["role"] else {
                throw RecordIssue(.badField, "messages[\(k)] has no string \"role\"")
            }
            let role: String
            switch given {
            case "system", "user", "assistant", "tool": role = given
            case "function", "observation": role = "tool"
            default:
                throw RecordIssue(.badField, "messages[\(k)] has role \"\(given)\": expected system, user, assistant or tool")
            }
            let content = m["content"]
            switch content {
            case .string?, .list?: break
            case .none?, nil:
                if !(role == "assistant" && m["tool_calls"] != nil) {
                    throw RecordIssue(.badField, "messages[\(k)] (\(given)) has no \"content\"")
                }
            default:
                throw RecordIssue(.badField, "messages[\(k)].content must be a string, found \(describe(content!))")
            }
            if case .string(let s)? = content, isBlank(s), m["tool_calls"] == nil, role != "system" {
                throw RecordIssue(.empty, "messages[\(k)] (\(given)) has empty content")
            }
            var pairs = m.pairs
            if role != given, let r = pairs.firstIndex(where: { $0.0 == "role" }) { pairs[r].1 = .string(role) }
            out.append((role, role == given ? item : .object(pairs)))
        }
        return out
    }

    private static func shareGPT(_ v: Value) throws -> [(role: String, value: Value)] {
        guard case .list(let list) = v else { throw RecordIssue(.badField, "\"conversations\" must be a list, found \(describe(v))") }
        if list.items.isEmpty { throw RecordIssue(.empty, "\"conversations\" is empty") }
        var out: [(role: String, value: Value)] = []
        for (k, item) in list.items.enumerated() {
            guard case .dict(let m) = item, case .string(let from)? = m["from"] ?? m["role"] else {
                throw RecordIssue(.badField, "conversations[\(k)] must be an object with \"from\" and \"value\"")
            }
            guard case .string(let text)? = m["value"] ?? m["content"] else {
                throw RecordIssue(.badField, "conversations[\(k)] (\(from)) has no string \"value\"")
            }
            let role: String
            switch from {
            case "human", "user": role = "user"
            case "gpt", "assistant", "function_call": role = "assistant"
            case "system": role = "system"
            case "observation", "tool", "function": role = "tool"
            default:
                throw RecordIssue(.badField, "conversations[\(k)] has \"from\": \"\(from)\"; expected human, gpt, system, function_call or observation")
            }
            if isBlank(text) && role != "system" { throw RecordIssue(.empty, "conversations[\(k)] (\(from)) has an empty value") }
            out.append((role, message(role, .string(text))))
        }
        return out
    }

    private static func firefly(_ v: Value) throws -> [(role: String, value: Value)] {
        guard case .list(let list) = v else { throw RecordIssue(.badField, "\"conversation\" must be a list, found \(describe(v))") }
        if list.items.isEmpty { throw RecordIssue(.empty, "\"conversation\" is empty") }
        var out: [(role: String, value: Value)] = []
        for (k, item) in list.items.enumerated() {
            guard case .dict(let turn) = item else {
                throw RecordIssue(.badField, "conversation[\(k)] must be an object with \"human\" and \"assistant\"")
            }
            for (key, role) in [("human", "user"), ("assistant", "assistant")] {
                guard let x = turn[key] else {
                    throw RecordIssue(role == "user" ? .badField : .noAssistantTurn, "conversation[\(k)] has no \"\(key)\"")
                }
                guard case .string(let text) = x else {
                    throw RecordIssue(.badField, "conversation[\(k)].\(key) must be a string, found \(describe(x))")
                }
                if isBlank(text) { throw RecordIssue(.empty, "conversation[\(k)].\(key) is empty") }
                out.append((role, message(role, .string(text))))
            }
        }
        return out
    }

    private static func alpaca(_ d: DictBox) throws -> [(role: String, value: Value)] {
        func str(_ key: String) throws -> String {
            switch d[key] {
            case nil, .none?: return ""
            case .string(let s)?: return s
            case let other?: throw RecordIssue(.badField, "\"\(key)\" must be a string, found \(describe(other))")
            }
        }
        let prompt = [try str("instruction"), try str("input")].filter { !$0.isEmpty }.joined(separator: "\n")
        let output = try str("output")
        if isBlank(prompt) { throw RecordIssue(.empty, "\"instruction\" and \"input\" are both empty") }
        if isBlank(output) { throw RecordIssue(.empty, "\"output\" is empty") }
        var out: [(role: String, value: Value)] = []
        switch d["history"] {
        case nil, .none?: break
        case .list(let h)?:
            for (k, pair) in h.items.enumerated() {
                guard case .list(let qa) = pair, qa.items.count == 2,
                      case .string(let q) = qa.items[0], case .string(let a) = qa.items[1] else {
                    throw RecordIssue(.badField, "history[\(k)] must be a pair [question, answer] of strings")
                }
                out.append(("user", message("user", .string(q))))
                out.append(("assistant", message("assistant", .string(a))))
            }
        case let other?:
            throw RecordIssue(.badField, "\"history\" must be a list of [question, answer] pairs, found \(describe(other))")
        }
        out.append(("user", message("user", .string(prompt))))
        out.append(("assistant", message("assistant", .string(output))))
        return out
    }

    /// `tools`: a list of schemas, or that list as a JSON string (LLaMA-Factory's form).
    static func toolsValue(_ v: Value?) throws -> Value {
        switch v {
        case nil, .none?: return .none
        case .list?: return v!
        case .string(let s)?:
            if isBlank(s) { return .none }
            guard let parsed = try? Value.parseJSON(s), case .list = parsed else {
                throw RecordIssue(.badField, "\"tools\" is a string that is not a JSON list of tool schemas")
            }
            return parsed
        case let other?:
            throw RecordIssue(.badField, "\"tools\" must be a list of tool schemas, found \(describe(other))")
        }
    }

    // MARK: Order

    /// System only first; then user, then alternating answers: an assistant answers a user or a
    /// tool result, a tool result follows an assistant (tool call) or another tool result; the
    /// conversation ends with an assistant turn.
    static func checkOrder(_ roles: [String], _ messages: [Value]) throws {
        var previous = ""
        for (k, role) in roles.enumerated() {
            let ok: Bool
            switch role {
            case "system": ok = k == 0
            case "user": ok = previous == "" || previous == "system" || previous == "assistant" || previous == "tool"
            case "assistant": ok = previous == "user" || previous == "tool"
            case "tool": ok = previous == "assistant" || previous == "tool"
            default: ok = false
            }
            if !ok {
                let after = previous.isEmpty ? "at the start" : "after \(article(previous)) \(previous) message"
                let why = role == "system" ? "a system message may only come first" : "expected \(expected(after: previous))"
                throw RecordIssue(.roleOutOfPlace, "message \(k) is \(article(role)) \(role) message \(after); \(why)")
            }
            previous = role
        }
        if !roles.contains("assistant") {
            throw RecordIssue(.noAssistantTurn, "no assistant message: nothing to learn from this record")
        }
        if let last = roles.last, last != "assistant" {
            throw RecordIssue(.roleOutOfPlace, "the conversation ends with \(article(last)) \(last) message that no assistant answers")
        }
    }

    private static func article(_ word: String) -> String { word.first.map { "aeiou".contains($0) } == true ? "an" : "a" }

    private static func expected(after previous: String) -> String {
        switch previous {
        case "", "system": return "a user message"
        case "user": return "an assistant message"
        case "assistant": return "a user or tool message"
        default: return "an assistant or tool message"
        }
    }

    static func message(_ role: String, _ content: Value) -> Value {
        .object([("role", .string(role)), ("content", content)])
    }

    static func isBlank(_ s: String) -> Bool { s.allSatisfy { $0.isWhitespace } }

    static func describe(_ v: Value) -> String {
        switch v {
        case .string: return "a string"
        case .list: return "a list"
        case .dict: return "an object"
        case .none: return "null"
        case .bool: return "a boolean"
        case .int, .float: return "a number"
        default: return v.typeName
        }
    }
}
