import ArgumentParser
import Foundation
import Jinja

/// `qwenft template`: renders a conversation through a model's chat template, as transformers'
/// `apply_chat_template(…, tokenize=False)` does, and prints exactly the rendered text.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Render messages through a chat template (as transformers' apply_chat_template).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Model folder: chat_template.jinja, else tokenizer_config.json's chat_template; bos/eos tokens from tokenizer_config.json.")
    var model: String?

    @Option(name: .long, help: "A Jinja chat template file (overrides the model's).")
    var template: String?

    @Option(name: .long, help: "JSON file: an array of messages, or an object with \"messages\" (and \"tools\").")
    var messages: String

    @Option(name: .long, help: "JSON file: an array of tool schemas.")
    var tools: String?

    @Flag(name: .long, help: "End with the prompt that starts an assistant turn.")
    var addGenerationPrompt = false

    func validate() throws {
        if model == nil && template == nil {
            throw ValidationError("give --model DIR or --template FILE")
        }
    }

    func run() throws {
        global.apply()
        var context: [String: Value] = [:]
        var source: String?
        var templatePath = template ?? ""
        if let model {
            let config = try ModelTemplateConfig(folder: model)
            for (k, v) in config.specialTokens { context[k] = v }
            if template == nil {
                source = config.chatTemplate
                templatePath = config.chatTemplatePath
            }
        }
        if let template { source = try readText(template, what: "template") }
        guard let source else {
            throw CLIError("\(model ?? "") has no chat template: neither chat_template.jinja nor a \"chat_template\" in tokenizer_config.json; pass --template FILE")
        }

        let input = try readJSON(messages, what: "messages")
        var toolsValue = Value.none
        switch input {
        case .list:
            context["messages"] = input
        case .dict(let d):
            guard let m = d["messages"], case .list = m else {
                throw CLIError("\(messages): expected a JSON array of messages or an object with a \"messages\" array")
            }
            context["messages"] = m
            if let t = d["tools"] { toolsValue = t }
        default:
            throw CLIError("\(messages): expected a JSON array of messages or an object with a \"messages\" array, found \(input.typeName)")
        }
        if case .list(let list)? = context["messages"] {
            for (i, m) in list.items.enumerated() {
                guard case .dict = m else {
                    throw CLIError("\(messages): message \(i) is \(m.typeName == "str" ? "a string" : "a \(m.typeName)"), expected an object with \"role\" and \"content\"")
                }
            }
        }
        if let tools {
            toolsValue = try readJSON(tools, what: "tools")
            guard case .list = toolsValue else { throw CLIError("\(tools): expected a JSON array of tool schemas") }
        }
        context["tools"] = toolsValue
        context["documents"] = Value.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)

        let rendered: String
        do {
            let compiled = try Template(source)
            rendered = try compiled.render(context)
        } catch let e as JinjaError {
            throw CLIError("chat template \(templatePath): \(e)")
        }
        FileHandle.standardOutput.write(Data(rendered.utf8))
    }
}

private func readText(_ path: String, what: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CLIError("cannot read \(what) file \(path): no such file or not readable")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw CLIError("\(what) file \(path) is not valid UTF-8")
    }
    return text
}

private func readJSON(_ path: String, what: String) throws -> Value {
    let text = try readText(path, what: what)
    do {
        return try Value.parseJSON(text)
    } catch let e as JSONParseError {
        throw CLIError("\(what) file \(path): \(e)")
    }
}

/// What the template command needs from a model folder. Kept small and private to this command:
/// the tokenizer target owns the full tokenizer_config.json reader.
private struct ModelTemplateConfig {
    var chatTemplate: String?
    var chatTemplatePath = ""
    var specialTokens: [String: Value] = [:]

    init(folder: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("--model \(folder): no such folder")
        }
        let dir = URL(fileURLWithPath: folder)
        let configPath = dir.appendingPathComponent("tokenizer_config.json").path
        var config: DictBox?
        if FileManager.default.fileExists(atPath: configPath) {
            guard case .dict(let d) = try readJSON(configPath, what: "tokenizer config") else {
                throw CLIError("\(configPath): expected a JSON object")
            }
            config = d
        }
        let jinjaPath = dir.appendingPathComponent("chat_template.jinja").path
        if FileManager.default.fileExists(atPath: jinjaPath) {
            chatTemplate = try readText(jinjaPath, what: "chat template")
            chatTemplatePath = jinjaPath
        } else if let entry = config?["chat_template"] {
            chatTemplatePath = configPath + " (chat_template)"
            switch entry {
            case .string(let s): chatTemplate = s
            case .list(let l):
                // Several named templates: [{"name": "default", "template": "…"}, {"name": "tool_use", …}].
                var names: [String] = []
                for item in l.items {
                    guard case .dict(let t) = item, case .string(let name)? = t["name"], case .string(let text)? = t["template"] else {
                        throw CLIError("\(configPath): chat_template list entries must be {\"name\": …, \"template\": …}")
                    }
                    names.append(name)
                    if name == "default" { chatTemplate = text }
                }
                if chatTemplate == nil {
                    throw CLIError("\(configPath): chat_template has no \"default\" entry (has: \(names.joined(separator: ", "))); pass --template FILE")
                }
            case .none: break
            default:
                throw CLIError("\(configPath): chat_template must be a string or a list of {name, template}, found \(entry.typeName)")
            }
        }
        // Special tokens go into the context as transformers passes tokenizer.special_tokens_map.
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            switch config?[key] {
            case .string(let s)?: specialTokens[key] = .string(s)
            case .dict(let t)?: if case .string(let s)? = t["content"] { specialTokens[key] = .string(s) }
            default: break
            }
        }
    }
}
