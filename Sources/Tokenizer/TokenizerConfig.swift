import Foundation
import JSON

/// What `tokenizer_config.json` (and a sibling `chat_template.jinja`) say about a tokenizer: its
/// eos/pad/bos tokens and chat templates. Templates come, in that order of precedence, from
/// `chat_template.jinja`, the `chat_template` key (a string, or a list of {"name", "template"}),
/// and `additional_chat_templates/NAME.jinja`.
public struct TokenizerConfig: Equatable, Sendable {
    public var eosToken: String?
    public var padToken: String?
    public var bosToken: String?
    public var unkToken: String?
    /// Named templates; the unnamed one (a plain string or chat_template.jinja) is "default".
    public var chatTemplates: [String: String]
    public var modelMaxLength: Int?
    public var addBosToken: Bool
    public var addEosToken: Bool
    public var splitSpecialTokens: Bool

    public init(eosToken: String? = nil, padToken: String? = nil, bosToken: String? = nil, unkToken: String? = nil,
                chatTemplates: [String: String] = [:], modelMaxLength: Int? = nil,
                addBosToken: Bool = false, addEosToken: Bool = false, splitSpecialTokens: Bool = false) {
        self.eosToken = eosToken
        self.padToken = padToken
        self.bosToken = bosToken
        self.unkToken = unkToken
        self.chatTemplates = chatTemplates
        self.modelMaxLength = modelMaxLength
        self.addBosToken = addBosToken
        self.addEosToken = addEosToken
        self.splitSpecialTokens = splitSpecialTokens
    }

    /// The template with this name; nil name means the default one ("default", or the only one).
    public func chatTemplate(named name: String? = nil) -> String? {
        if let name { return chatTemplates[name] }
        if let t = chatTemplates["default"] { return t }
        return chatTemplates.count == 1 ? chatTemplates.values.first : nil
    }

    /// The names of the templates, sorted.
    public var chatTemplateNames: [String] { chatTemplates.keys.sorted() }

    /// Reads the config of a model folder. A folder with neither tokenizer_config.json nor
    /// chat_template.jinja gives an empty config.
    public static func load(folder: String) throws -> TokenizerConfig {
        let dir = URL(fileURLWithPath: folder)
        let path = dir.appendingPathComponent("tokenizer_config.json").path
        var config = TokenizerConfig()
        if FileManager.default.fileExists(atPath: path) {
            config = try parse(Data(try readFile(path)), path: path)
        }
        let extra = dir.appendingPathComponent("additional_chat_templates")
        if let names = try? FileManager.default.contentsOfDirectory(atPath: extra.path) {
            for file in names.sorted() where file.hasSuffix(".jinja") {
                let p = extra.appendingPathComponent(file).path
                config.chatTemplates[String(file.dropLast(6))] = try readText(p)
            }
        }
        let jinja = dir.appendingPathComponent("chat_template.jinja").path
        if FileManager.default.fileExists(atPath: jinja) {
            config.chatTemplates["default"] = try readText(jinja)
        }
        return config
    }

    /// Parses tokenizer_config.json's content (as Python's `json.loads` reads it).
    public static func parse(_ data: Data, path: String) throws -> TokenizerConfig {
        let root = try parseJSONFile([UInt8](data), path: path, options: .python)
        guard root.objectValue != nil else {
            throw TokenizerError.malformed(path: path, location: "top level", reason: "expected a JSON object")
        }
        func token(_ key: String) throws -> String? {
            switch root[key] {
            case nil, .null?: return nil
            case let .string(s)?: return s
            case let d? where d.objectValue != nil:
                if let s = d["content"]?.stringValue { return s }
                throw TokenizerError.malformed(path: path, location: key, reason: "expected a string or an object with \"content\"")
            default:
                throw TokenizerError.malformed(path: path, location: key, reason: "expected a string or an object with \"content\"")
            }
        }
        func flag(_ key: String) throws -> Bool {
            switch root[key] {
            case nil, .null?: return false
            case let .bool(b)?: return b
            default: throw TokenizerError.malformed(path: path, location: key, reason: "expected true or false")
            }
        }
        var config = TokenizerConfig(eosToken: try token("eos_token"), padToken: try token("pad_token"),
                                     bosToken: try token("bos_token"), unkToken: try token("unk_token"),
                                     addBosToken: try flag("add_bos_token"), addEosToken: try flag("add_eos_token"),
                                     splitSpecialTokens: try flag("split_special_tokens"))
        switch root["model_max_length"] {
        case let .int(n)?: config.modelMaxLength = Double(n) < 1e15 ? n : nil
        case let .double(d)?: config.modelMaxLength = d < 1e15 && d > -1e15 ? Int(d) : nil
        default: break
        }
        switch root["chat_template"] {
        case nil, .null?: break
        case let .string(s)?: config.chatTemplates["default"] = s
        case let .array(list)?:
            for (k, item) in list.enumerated() {
                guard let name = item["name"]?.stringValue, let t = item["template"]?.stringValue else {
                    throw TokenizerError.malformed(path: path, location: "chat_template[\(k)]",
                                                   reason: "expected an object with string \"name\" and \"template\"")
                }
                config.chatTemplates[name] = t
            }
        default:
            throw TokenizerError.malformed(path: path, location: "chat_template", reason: "expected a string or a list of {\"name\", \"template\"}")
        }
        return config
    }

    /// tokenizer_config.json for a Qwen2-style folder, as transformers writes it: the default
    /// template inline as "chat_template", laid out as `save_pretrained` does
    /// (`json.dumps(indent=2, sort_keys=True, ensure_ascii=False) + "\n"`).
    public func jsonData(addedTokens: [AddedToken] = QwenSpecialTokens.qwen2) -> Data {
        func text(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        let decoder: [(String, JSONValue)] = addedTokens.map { t in
            (String(t.id), .object([("content", .string(t.content)), ("lstrip", .bool(t.lstrip)), ("normalized", .bool(t.normalized)),
                                    ("rstrip", .bool(t.rstrip)), ("single_word", .bool(t.singleWord)), ("special", .bool(t.special))]))
        }
        let additional = addedTokens.filter(\.special).map(\.content).filter { $0 != eosToken && $0 != padToken }
        var obj: [(String, JSONValue)] = [
            ("add_bos_token", .bool(addBosToken)), ("add_prefix_space", .bool(false)), ("added_tokens_decoder", .object(decoder)),
            ("additional_special_tokens", .array(additional.map { .string($0) })),
            ("bos_token", text(bosToken)), ("clean_up_tokenization_spaces", .bool(false)),
            ("eos_token", text(eosToken)), ("errors", .string("replace")), ("pad_token", text(padToken)),
            ("split_special_tokens", .bool(splitSpecialTokens)), ("tokenizer_class", .string("Qwen2Tokenizer")), ("unk_token", text(unkToken)),
        ]
        if let m = modelMaxLength { obj.append(("model_max_length", .int(m))) }
        if chatTemplates.count == 1, let t = chatTemplates["default"] {
            obj.append(("chat_template", .string(t)))
        } else if !chatTemplates.isEmpty {
            obj.append(("chat_template", .array(chatTemplateNames.map { name in
                .object([("name", .string(name)), ("template", .string(chatTemplates[name] ?? ""))])
            })))
        }
        return Data((JSONValue.object(obj).text(.python(indent: 2, sortKeys: true, ensureASCII: false)) + "\n").utf8)
    }
}

private func readText(_ path: String) throws -> String {
    let bytes = try readFile(path)
    guard let s = String(validating: bytes, as: UTF8.self) else {
        throw TokenizerError.malformed(path: path, location: "content", reason: "not valid UTF-8")
    }
    return s
}
