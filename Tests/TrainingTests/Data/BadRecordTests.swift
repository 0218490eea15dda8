import Foundation
import Testing
@testable import Training

@Suite struct BadRecordTests {
    static let good = #"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#

    /// One bad record of every kind, each on a known line, between good ones.
    static let lines: [(String, RecordProblemKind?)] = [
        (good, nil),
        (#"{"messages": [{"role": "user", "content": "hi"}"#, .badJSON),
        (#"{"question": "hi", "answer": "hello"}"#, .unknownShape),
        (#"{"messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}]}"#, .roleOutOfPlace),
        (#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}"#, .noAssistantTurn),
        (#"{"messages": []}"#, .empty),
        (#"{}"#, .empty),
        (#"[1, 2]"#, .unknownShape),
        (#"{"conversations": [{"from": "human", "value": "a"}, {"from": "robot", "value": "b"}]}"#, .badField),
        (#"{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}, {"role": "assistant", "content": "b"}]}"#, .roleOutOfPlace),
        (#"{"conversation": [{"human": "q"}]}"#, .noAssistantTurn),
        (#"{"instruction": "", "input": "", "output": "x"}"#, .empty),
        (#"{"text": ""}"#, .empty),
        (#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}]}"#, .roleOutOfPlace),
        (#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}"#, .roleOutOfPlace),
        (#"{"instruction": "q", "output": "a", "history": [["only one"]]}"#, .badField),
        (good, nil),
    ]

    func writeFile() throws -> (String, URL) {
        let dir = try dataTempDir()
        // A blank line in the middle: not a record, lines still counted.
        var text = Self.lines.prefix(3).map(\.0).joined(separator: "\n") + "\n\n"
        text += Self.lines.dropFirst(3).map(\.0).joined(separator: "\n") + "\n"
        return (try write(text, "bad.jsonl", in: dir), dir)
    }

    func expectedLine(_ k: Int) -> Int { k < 3 ? k + 1 : k + 2 }

    @Test func errorListsEveryProblemWithFileAndLine() throws {
        let (path, dir) = try writeFile()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = Self.lines.enumerated().filter { $0.element.1 != nil }
        do {
            _ = try loadDataset([path])
            Issue.record("expected badRecords")
        } catch let TrainingError.badRecords(problems, total) {
            #expect(total == bad.count)
            #expect(problems.count == bad.count)
            for (p, (k, line)) in zip(problems, bad) {
                #expect(p.location.file == path)
                #expect(p.location.line == expectedLine(k), "\(p)")
                #expect(p.kind == line.1!, "line \(expectedLine(k)): \(p)")
            }
            let text = TrainingError.badRecords(problems: problems, total: total).description
            #expect(text.contains("\(path):2: bad JSON"))
            #expect(text.contains("on_bad_record: skip"))
        }
    }

    @Test func skipCountsByKindAndKeepsTheRest() throws {
        let (path, dir) = try writeFile()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try loadDataset([path], options: DatasetOptions(maxSeqLength: 512, onBadRecord: .skip))
        #expect(data.count == 2)
        #expect(data.report.records == Self.lines.count)
        #expect(data.report.problemCount == Self.lines.count - 2)
        var byKind: [RecordProblemKind: Int] = [:]
        for case let (_, kind?) in Self.lines { byKind[kind, default: 0] += 1 }
        #expect(data.report.skipped == byKind)
        let summary = data.report.summary.joined(separator: "\n")
        #expect(summary.contains("skipped \(Self.lines.count - 2) bad records"))
        #expect(summary.contains("4 role out of place"))
        #expect(summary.contains("message 0 is an assistant message at the start"))
        #expect(summary.contains("\(path):2: bad JSON"))
    }

    @Test func problemListIsCapped() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(String(repeating: "{\"x\": 1}\n", count: 50) + Self.good + "\n", "many.jsonl", in: dir)
        do {
            _ = try loadDataset([path])
            Issue.record("expected badRecords")
        } catch let e as TrainingError {
            guard case let .badRecords(problems, total) = e else { Issue.record("\(e)"); return }
            #expect(total == 50 && problems.count == TrainingError.shownLimit)
            #expect(e.description.contains("… and 30 more"))
        }
    }

    @Test func jsonArrayNamesRecordIndexAndLine() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Seed 000's own data has a full-width comma and a missing comma.
        let text = """
        [
          {
            "input":"who are you",
            "output":"I'm 888888"
            }，
          {
          "instruction":"you are a helpful assistant"
          "input":"who are you",
          "output":"I'm 888888"
          },
          {"input": "ok", "output": "fine"}
        ]
        """
        let path = try write(text, "seed.json", in: dir)
        let data = try loadDataset([path], templateName: "Template", options: DatasetOptions(maxSeqLength: 512, onBadRecord: .skip))
        #expect(data.count == 1)
        #expect(data.report.problemCount == 1)
        let p = try #require(data.report.problems.first)
        #expect(p.kind == .badJSON)
        #expect(p.location.line == 2 && p.location.index == 0 && p.location.isArrayElement)
        #expect(p.description.hasPrefix("\(path):2 (record 0): bad JSON"))
    }

    @Test func unclosedArrayIsReported() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write("[\(Self.good),\n\(Self.good)", "cut.json", in: dir)
        let data = try loadDataset([path], options: DatasetOptions(maxSeqLength: 512, onBadRecord: .skip))
        #expect(data.count == 2)
        #expect(data.report.problems.map(\.kind) == [.badJSON])
        #expect(data.report.problems.first?.message.contains("not closed") == true)
    }

    @Test func templateThatBreaksSpansIsReported() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Prints the conversation in reverse: a prefix is never the start of the whole.
        try write("{% for m in messages|reverse %}<{{ m.role }}>{{ m.content }}<|im_end|>{% endfor %}"
                  + "{% if add_generation_prompt %}<assistant>{% endif %}", "reversed.j2", in: dir)
        let path = try write(#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}"# + "\n", "d.jsonl", in: dir)
        let (tok, cfg) = try qwen()
        let template = try ChatTemplateSource.resolve(templateName: "reversed", templatesFolder: dir.path, tokenizerConfig: cfg)
        #expect(throws: TrainingError.self) {
            _ = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg, template: template,
                                          options: DatasetOptions(maxSeqLength: 512))
        }
        do {
            _ = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg, template: template, options: DatasetOptions(maxSeqLength: 512))
        } catch let TrainingError.badRecords(problems, _) {
            #expect(problems.first?.kind == .spansUnrecoverable)
            #expect(problems.first?.message.contains("train_on_prompt") == true)
        }
        // train_on_prompt needs no spans.
        let all = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg, template: template,
                                            options: DatasetOptions(maxSeqLength: 512, trainOnPrompt: true))
        #expect(all.count == 1)
    }

    @Test func templateErrorsAndMissingThings() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try write("{{ raise_exception('only user turns, please') }}", "raises.j2", in: dir)
        let path = try write(Self.good + "\n", "d.jsonl", in: dir)
        let (tok, cfg) = try qwen()
        let raising = try ChatTemplateSource.resolve(templateName: "raises", templatesFolder: dir.path, tokenizerConfig: cfg)
        do {
            _ = try TokenizedDataset.load(files: [path], tokenizer: tok, tokenizerConfig: cfg, template: raising, options: DatasetOptions(maxSeqLength: 64))
            Issue.record("expected an error")
        } catch let TrainingError.badRecords(problems, _) {
            #expect(problems.first?.kind == .templateFailed)
            #expect(problems.first?.message.contains("only user turns, please") == true)
        }
        #expect(throws: TrainingError.self) {
            _ = try ChatTemplateSource.resolve(templateName: "nope", templatesFolder: dir.path, tokenizerConfig: cfg)
        }
        do {
            _ = try ChatTemplateSource.resolve(templateName: "nope", templatesFolder: templatesFolder, tokenizerConfig: cfg)
        } catch let e as TrainingError {
            #expect(e.description.contains("qwen"))
        }
        #expect(throws: TrainingError.self) {
            _ = try ChatTemplateSource.resolve(templateName: nil, templatesFolder: nil, tokenizerConfig: .init())
        }
        do {
            _ = try loadDataset([dir.appendingPathComponent("missing.jsonl").path])
            Issue.record("expected an error")
        } catch let e as TrainingError {
            #expect(e.description.contains("missing.jsonl"))
        }
        let empty = try write("\n\n", "empty.jsonl", in: dir)
        #expect(throws: TrainingError.self) { _ = try loadDataset([empty]) }
    }
}
