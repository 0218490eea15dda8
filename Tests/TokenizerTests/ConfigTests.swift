import Foundation
import Testing
@testable import Tokenizer

@Suite struct ConfigTests {
    func folder(_ files: [String: String]) throws -> String {
        let dir = try tempDir()
        for (name, content) in files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
        return dir.path
    }

    @Test func stringTemplateAndTokens() throws {
        let dir = try folder(["tokenizer_config.json": """
            {"eos_token": "<|im_end|>", "pad_token": {"__type": "AddedToken", "content": "<|endoftext|>"},
             "bos_token": null, "chat_template": "{{ messages }}", "model_max_length": 32768,
             "split_special_tokens": false}
            """])
        let c = try TokenizerConfig.load(folder: dir)
        #expect(c.eosToken == "<|im_end|>" && c.padToken == "<|endoftext|>" && c.bosToken == nil)
        #expect(c.chatTemplate() == "{{ messages }}")
        #expect(c.modelMaxLength == 32768)
    }

    /// Read through the JSON target as Python's json.loads reads it: U+FEFF inside a template
    /// survives (Foundation's reader drops it on Linux), a huge model_max_length means none, and a
    /// syntax error names the file, line and column.
    @Test func readsAsJsonLoadsAndNamesSyntaxErrors() throws {
        let dir = try folder(["tokenizer_config.json": "{\"chat_template\": \"\u{feff}{{ x }}\\ufeff\", \"model_max_length\": 1000000000000000019884624838656}"])
        let c = try TokenizerConfig.load(folder: dir)
        #expect(c.chatTemplate() == "\u{feff}{{ x }}\u{feff}" && c.modelMaxLength == nil)
        let bad = try folder(["tokenizer_config.json": "{\n  \"eos_token\": \"a\",\n  \"bos_token\" null\n}"])
        let path = URL(fileURLWithPath: bad).appendingPathComponent("tokenizer_config.json").path
        #expect(throws: TokenizerError.malformed(path: path, location: "line 3, column 15", reason: "invalid JSON: expected ':' after key \"bos_token\"")) {
            try TokenizerConfig.load(folder: bad)
        }
    }

    @Test func namedTemplates() throws {
        let dir = try folder(["tokenizer_config.json": """
            {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]}
            """])
        let c = try TokenizerConfig.load(folder: dir)
        #expect(c.chatTemplate() == "D" && c.chatTemplate(named: "tool_use") == "T")
        #expect(c.chatTemplate(named: "rag") == nil)
        #expect(c.chatTemplateNames == ["default", "tool_use"])
    }

    @Test func jinjaFileWins() throws {
        let dir = try folder(["tokenizer_config.json": "{\"chat_template\": \"old\"}",
                              "chat_template.jinja": "new\n",
                              "additional_chat_templates/rag.jinja": "R"])
        let c = try TokenizerConfig.load(folder: dir)
        #expect(c.chatTemplate() == "new\n")
        #expect(c.chatTemplate(named: "rag") == "R")
    }

    @Test func emptyFolderAndBadConfig() throws {
        #expect(try TokenizerConfig.load(folder: try folder([:])) == TokenizerConfig())
        let dir = try folder(["tokenizer_config.json": "{\"chat_template\": 5}"])
        let e = try #require(throws: TokenizerError.self) { try TokenizerConfig.load(folder: dir) }
        #expect(e.description.contains("chat_template") && e.description.contains("tokenizer_config.json"))
        let dir2 = try folder(["tokenizer_config.json": "{nope"])
        #expect(throws: TokenizerError.self) { try TokenizerConfig.load(folder: dir2) }
    }

    @Test func roundTripThroughJSON() throws {
        let c = TokenizerConfig(eosToken: "<|im_end|>", padToken: "<|endoftext|>", chatTemplates: ["default": "X"])
        let dir = try folder(["tokenizer_config.json": String(decoding: c.jsonData(), as: UTF8.self)])
        let back = try TokenizerConfig.load(folder: dir)
        #expect(back.eosToken == c.eosToken && back.padToken == c.padToken && back.chatTemplate() == "X")
        // Byte order marks and slashes stay as they are (Foundation dropped U+FEFF and wrote `<\/s>`);
        // several templates become a list, as transformers writes them.
        let many = TokenizerConfig(eosToken: "</s>", chatTemplates: ["default": "\u{feff}{{ x }}</s>", "tool_use": "é\n"])
        let text = String(decoding: many.jsonData(), as: UTF8.self)
        #expect(text.contains("\"eos_token\": \"</s>\"") && text.contains("\"é\\n\"") && text.hasSuffix("}\n"))
        let manyBack = try TokenizerConfig.load(folder: try folder(["tokenizer_config.json": text]))
        #expect(manyBack.chatTemplates == many.chatTemplates && manyBack.eosToken == "</s>")
    }
}
