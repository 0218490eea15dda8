import Foundation
import Jinja
import Tokenizer

/// The template a dataset is rendered with, and how it is called.
public struct ChatTemplateSource: Sendable {
    /// The Jinja source.
    public var source: String
    /// Where it came from, for messages ("Templates/qwen.j2", "model chat template").
    public var origin: String
    /// A single-record template (seed 000's `Template.j2`): it receives the raw record as
    /// `messages` and reads `messages["instruction"]`, `messages['output']`… It is rendered as a
    /// plain `jinja2.Environment()` does (no trim_blocks/lstrip_blocks), its target is `output`.
    public var isRecordTemplate: Bool

    public init(source: String, origin: String, isRecordTemplate: Bool? = nil) {
        self.source = source
        self.origin = origin
        self.isRecordTemplate = isRecordTemplate ?? ChatTemplateSource.looksLikeRecordTemplate(source)
    }

    /// `template_name` → `<templatesFolder>/NAME.j2`, else a named template of the tokenizer
    /// config; no name → the model's own chat template.
    public static func resolve(templateName: String?, templatesFolder: String?, tokenizerConfig: TokenizerConfig) throws -> ChatTemplateSource {
        guard let name = templateName, !name.isEmpty else {
            guard let t = tokenizerConfig.chatTemplate() else {
                throw TrainingError.noTemplate(message: "the model has no chat template (no chat_template.jinja, no \"chat_template\" in "
                    + "tokenizer_config.json); set template_name to one of Templates/*.j2 (e.g. \"qwen\")")
            }
            return ChatTemplateSource(source: t, origin: "the model's chat template")
        }
        var available: [String] = []
        if let folder = templatesFolder {
            let path = URL(fileURLWithPath: folder).appendingPathComponent("\(name).j2").path
            if FileManager.default.fileExists(atPath: path) {
                guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                    throw TrainingError.badTemplate(path: path, message: "cannot be read as UTF-8 text")
                }
                return ChatTemplateSource(source: text, origin: path)
            }
            available = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
                .filter { $0.hasSuffix(".j2") }.map { String($0.dropLast(3)) }.sorted()
        }
        if let t = tokenizerConfig.chatTemplates[name] {
            return ChatTemplateSource(source: t, origin: "the model's chat template \"\(name)\"")
        }
        throw TrainingError.unknownTemplate(name: name, folder: templatesFolder ?? "(no template folder)",
                                           available: available + tokenizerConfig.chatTemplateNames)
    }

    /// A template that indexes `messages` with a string key (`messages["instruction"]`) or reads
    /// Alpaca fields off it treats `messages` as one record, not a list of messages.
    static func looksLikeRecordTemplate(_ source: String) -> Bool {
        let patterns = [#"messages\s*\[\s*["']"#, #"messages\.(instruction|input|output|history)\b"#]
        return patterns.contains { source.range(of: $0, options: .regularExpression) != nil }
    }
}
