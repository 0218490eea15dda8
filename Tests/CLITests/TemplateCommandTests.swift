import Foundation
import Testing

/// `qwenft template` against renders from transformers' jinja2 setup (Scripts/fixtures/template_cli.py).
@Suite struct TemplateCommandTests {
    let dir = cliFixtures.appendingPathComponent("template")

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func expected(_ name: String) throws -> Data {
        try Data(contentsOf: dir.appendingPathComponent(name))
    }

    @Test func rendersTheModelsTemplateFromTokenizerConfig() throws {
        let r = try runQwenft(["template", "--model", path("qwen25"), "--messages", path("conversation.json")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutData == (try expected("expected_qwen25.txt")))
        let g = try runQwenft(["template", "--model", path("qwen25"), "--messages", path("conversation.json"), "--add-generation-prompt"])
        #expect(g.stdoutData == (try expected("expected_qwen25_gen.txt")))
    }

    @Test func messagesObjectCarriesToolsAndToolCalls() throws {
        let r = try runQwenft(["template", "--model", path("qwen25"), "--messages", path("tool_conversation.json"), "--add-generation-prompt"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutData == (try expected("expected_qwen25_tools.txt")))
    }

    @Test func toolsFileAndTemplateFile() throws {
        let r = try runQwenft(["template", "--template", path("qwen25/../../../../JinjaTests/Fixtures/templates/qwen2_5_instruct.jinja"),
                               "--messages", path("conversation.json"), "--tools", path("tools.json")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutData == (try expected("expected_qwen25_tools_file.txt")))
    }

    @Test func chatTemplateJinjaAndObjectTokens() throws {
        let r = try runQwenft(["template", "--model", path("llama31"), "--messages", path("llama_conversation.json"), "--add-generation-prompt"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutData == (try expected("expected_llama31.txt")))
    }

    @Test func namedTemplateListTakesDefault() throws {
        let r = try runQwenft(["template", "--model", path("named"), "--messages", path("conversation.json"), "--add-generation-prompt"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutData == (try expected("expected_named.txt")))
    }

    // MARK: - Bad inputs: status 1, a message naming the culprit, no crash.

    func expectFailure(_ args: [String], mentions: [String]) throws {
        let r = try runQwenft(["template"] + args)
        #expect(r.status == 1, "\(args): status \(r.status), stderr \(r.stderr)")
        #expect(r.stderr.hasPrefix("qwenft: error:"), "\(r.stderr)")
        for m in mentions { #expect(r.stderr.contains(m), "\(r.stderr) should mention \(m)") }
        #expect(r.stdout.isEmpty)
    }

    @Test func badInputs() throws {
        let tmp = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: tmp) }
        func write(_ name: String, _ text: String) throws -> String {
            let p = tmp.appendingPathComponent(name).path
            try text.write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }
        try expectFailure(["--messages", path("conversation.json")], mentions: ["--model", "--template"])
        try expectFailure(["--model", path("notemplate"), "--messages", path("conversation.json")], mentions: ["chat_template", "--template"])
        try expectFailure(["--model", tmp.appendingPathComponent("nope").path, "--messages", path("conversation.json")], mentions: ["nope"])
        try expectFailure(["--model", path("qwen25"), "--messages", tmp.appendingPathComponent("missing.json").path], mentions: ["missing.json"])
        let badJSON = try write("bad.json", "[{\"role\": \"user\", \"content\": \"hi\"},\n  {\"role\": }]")
        try expectFailure(["--model", path("qwen25"), "--messages", badJSON], mentions: ["bad.json", "line 2"])
        let notMessages = try write("scalar.json", "42")
        try expectFailure(["--model", path("qwen25"), "--messages", notMessages], mentions: ["scalar.json", "messages"])
        let stringMessage = try write("strings.json", "[\"hello\"]")
        try expectFailure(["--model", path("qwen25"), "--messages", stringMessage], mentions: ["strings.json", "message 0"])
        let badTools = try write("tools.json", "{\"not\": \"a list\"}")
        try expectFailure(["--model", path("qwen25"), "--messages", path("conversation.json"), "--tools", badTools], mentions: ["tools.json"])
        let syntax = try write("syntax.jinja", "line one\n{% for m in messages %}{{ m.content }")
        try expectFailure(["--template", syntax, "--messages", path("conversation.json")], mentions: ["syntax.jinja", "line 2"])
        let raising = try write("raise.jinja", "{{ raise_exception('System role not supported') }}")
        try expectFailure(["--template", raising, "--messages", path("conversation.json")], mentions: ["System role not supported"])
        let unsupported = try write("include.jinja", "{% include 'other.j2' %}")
        try expectFailure(["--template", unsupported, "--messages", path("conversation.json")], mentions: ["include"])
        let runaway = try write("runaway.jinja", "{% for i in range(10**9) %}x{% endfor %}")
        try expectFailure(["--template", runaway, "--messages", path("conversation.json")], mentions: ["range"])
        let invalidUTF8 = tmp.appendingPathComponent("latin1.json")
        try Data([0x5B, 0x22, 0xE9, 0x22, 0x5D]).write(to: invalidUTF8)
        try expectFailure(["--template", raising, "--messages", invalidUTF8.path], mentions: ["UTF-8"])
    }
}
