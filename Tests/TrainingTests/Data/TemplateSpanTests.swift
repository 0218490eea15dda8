import Foundation
import Testing
@testable import Training

/// Span finding on the real chat templates the Jinja target collects: every template either gives
/// labels that cover exactly the assistant answers, or reports the record — never wrong labels.
@Suite struct TemplateSpanTests {
    static let templates = repoRoot.appendingPathComponent("Tests/JinjaTests/Fixtures/templates")
    static let conversation = #"{"messages": [{"role": "user", "content": "What is 6 times 7?"}, {"role": "assistant", "content": "It is forty-two."}, {"role": "user", "content": "And 6 plus 7?"}, {"role": "assistant", "content": "That makes thirteen."}]}"#

    @Test func everyFixtureTemplateLabelsAnswersOrReports() throws {
        let (tok, cfg) = try qwen()
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(Self.conversation + "\n", "c.jsonl", in: dir)
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.templates.path).filter { $0.hasSuffix(".jinja") }.sorted()
        try #require(!names.isEmpty, "no templates in \(Self.templates.path)")
        var labelled: [String] = []
        for name in names {
            let source = try String(contentsOf: Self.templates.appendingPathComponent(name), encoding: .utf8)
            let template = ChatTemplateSource(source: source, origin: name)
            let data: TokenizedDataset
            do {
                data = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg, template: template,
                                                 options: DatasetOptions(maxSeqLength: 4096))
            } catch let TrainingError.badRecords(problems, _) {
                #expect([.templateFailed, .spansUnrecoverable].contains(problems[0].kind), "\(name): \(problems[0])")
                if ProcessInfo.processInfo.environment["QWENFT_SHOW_SPANS"] != nil { print(name, problems[0]) }
                continue
            }
            let ids = Array(data.ids(0)), labels = Array(data.labels(0))
            // Labelled runs, decoded: one per answer.
            var runs: [String] = []
            var k = 0
            while k < ids.count {
                if labels[k] == -100 { k += 1; continue }
                var e = k
                while e < ids.count && labels[e] != -100 { e += 1 }
                runs.append(try tok.decode(ids[k..<e].map { Int($0) }))
                k = e
            }
            #expect(runs.count == 2, "\(name): \(runs)")
            if runs.count == 2 {
                // A token that straddles the answer's edge is labelled, as transformers' masks do
                // (with the Qwen vocabulary other templates' markers are plain text: "<|assistant|>\n"
                // can end in a ">\n" token).
                // Around the answer only its end-of-turn marker (<|im_end|>, <|eot_id|>, </s>…).
                for (run, answer) in zip(runs, ["It is forty-two.", "That makes thirteen."]) {
                    let rest = run.replacingOccurrences(of: answer, with: "")
                    #expect(run.contains(answer) && rest.count <= 24, "\(name): \(run)")
                }
                #expect(!runs.joined().contains("6 plus 7"), "\(name)")
            }
            labelled.append(name)
            if ProcessInfo.processInfo.environment["QWENFT_SHOW_SPANS"] != nil { print(name, runs) }
        }
        for must in ["qwen2_5_instruct.jinja", "qwen2_instruct.jinja", "qwen1_5_chat.jinja", "qwen3.jinja", "llama3_1_instruct.jinja"] {
            #expect(labelled.contains(must), "\(must) should give labels")
        }
        // Every labelled answer ends the way generation must stop (an end-of-turn marker).
        print("templates with recoverable spans: \(labelled.count)/\(names.count)")
    }

    @Test func qwenAnswersEndWithImEndNotTheNewline() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(Self.conversation + "\n", "c.jsonl", in: dir)
        let data = try loadDataset([path])
        let (tok, _) = try qwen()
        let ids = Array(data.ids(0)), labels = Array(data.labels(0))
        let imEnd = Int32(tok.id(forToken: "<|im_end|>")!)
        // Every labelled run ends with <|im_end|>; the "\n" after it is not labelled.
        for k in 0..<(ids.count - 1) where labels[k] != -100 && labels[k + 1] == -100 {
            #expect(ids[k] == imEnd)
        }
        #expect(labels.last == imEnd || labels.last == -100)
    }

    @Test func weightZeroKeepsAnAnswerOutOfTheLoss() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "wrong", "weight": 0}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "right"}]}"# + "\n", "w.jsonl", in: dir)
        let data = try loadDataset([path])
        let (tok, _) = try qwen()
        let text = try tok.decode(zip(data.ids(0), data.labels(0)).filter { $0.1 != -100 }.map { Int($0.0) })
        #expect(text == "right<|im_end|>")
    }

    @Test func folderOfFilesAndMixedArrayAndLines() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = dir.appendingPathComponent("corpus")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try write(#"{"text": "one"}"# + "\n" + #"{"text": "two"}"#, "a.jsonl", in: folder)
        try write(#"[{"text": "three"}, {"instruction": "q", "output": "four"}]"#, "b.json", in: folder)
        try write("ignored", "notes.txt", in: folder)
        let data = try loadDataset([folder.path])
        #expect(data.count == 4)
        #expect(data.report.files.count == 2)
    }
}

@Suite struct StoppingTests {
    /// Qwen1.5's first template prints <|im_end|> after a message only when another follows:
    /// every answer must still end with a labelled <|im_end|>, or the model never learns to stop.
    @Test func everyAnswerEndsWithLabelledImEnd() throws {
        let source = try String(contentsOf: TemplateSpanTests.templates.appendingPathComponent("qwen1_5_chat.jinja"), encoding: .utf8)
        let (tok, cfg) = try qwen()
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(TemplateSpanTests.conversation + "\n", "c.jsonl", in: dir)
        let data = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg,
                                             template: ChatTemplateSource(source: source, origin: "qwen1.5"),
                                             options: DatasetOptions(maxSeqLength: 512))
        let text = try tok.decode(zip(data.ids(0), data.labels(0)).map { $0.1 == -100 ? 0 : Int($0.0) }.filter { $0 != 0 })
        #expect(text == "It is forty-two.<|im_end|>That makes thirteen.<|im_end|>")
        #expect(data.ids(0).last == Int32(tok.id(forToken: "<|im_end|>")!))
    }
}
