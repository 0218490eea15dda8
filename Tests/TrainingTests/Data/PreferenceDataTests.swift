import Foundation
import Testing
@testable import Training

let dpoFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/dpo")

struct ExpectedPair: Decodable {
    let prompt: [Int32]
    let chosen: [Int32]
    let rejected: [Int32]
}

struct ExpectedPairs: Decodable { let pairs: [ExpectedPair] }

func preferenceOptions(maxSeqLength: Int = 4096, maxPromptLength: Int? = nil, onBadRecord: BadRecordPolicy = .error) -> DatasetOptions {
    var o = DatasetOptions(maxSeqLength: maxSeqLength, onBadRecord: onBadRecord)
    o.preference = true
    o.maxPromptLength = maxPromptLength
    return o
}

/// Preference pairs (task_type dpo) against TRL 1.16's DPOTrainer tokenisation
/// (Scripts/fixtures/dpo_data.py): every record shape, then truncation and bad records.
@Suite struct PreferenceDataTests {
    static func expected() throws -> [ExpectedPair] {
        try JSONDecoder().decode(ExpectedPairs.self, from: Data(contentsOf: dpoFixtures.appendingPathComponent("expected.json"))).pairs
    }

    @Test func everyShapeMatchesTRL() throws {
        let expected = try Self.expected()
        let data = try loadDataset([dpoFixtures.appendingPathComponent("pairs.jsonl").path], options: preferenceOptions())
        try #require(data.count == 2 * expected.count)
        #expect(data.report.preference && data.report.problemCount == 0)
        for (k, e) in expected.enumerated() {
            #expect(Array(data.ids(2 * k)) == e.prompt + e.chosen, "record \(k): prompt+chosen ids")
            #expect(Array(data.ids(2 * k + 1)) == e.prompt + e.rejected, "record \(k): prompt+rejected ids")
            let mask = [Int32](repeating: -100, count: e.prompt.count)
            #expect(Array(data.labels(2 * k)) == mask + e.chosen, "record \(k): chosen labels")
            #expect(Array(data.labels(2 * k + 1)) == mask + e.rejected, "record \(k): rejected labels")
        }
    }

    /// TRL: prompt+response keeps its first max_length tokens; a prompt that alone reaches it is
    /// dropped. Firefly's max_prompt_length first keeps the prompt's last tokens.
    @Test func truncationAsTRL() throws {
        let expected = try Self.expected()
        let path = dpoFixtures.appendingPathComponent("pairs.jsonl").path
        let limit = 30
        let data = try loadDataset([path], options: preferenceOptions(maxSeqLength: limit))
        let kept = expected.filter { $0.prompt.count < limit }
        try #require(data.count == 2 * kept.count)
        #expect(data.report.droppedNoTargets == expected.count - kept.count)
        for (k, e) in kept.enumerated() {
            #expect(Array(data.ids(2 * k)) == Array((e.prompt + e.chosen).prefix(limit)))
            #expect(Array(data.ids(2 * k + 1)) == Array((e.prompt + e.rejected).prefix(limit)))
        }
        let cut = try loadDataset([path], options: preferenceOptions(maxSeqLength: limit, maxPromptLength: 10))
        try #require(cut.count == 2 * expected.count)
        for (k, e) in expected.enumerated() {
            let p = Array(e.prompt.suffix(10))
            #expect(Array(cut.ids(2 * k)) == Array((p + e.chosen).prefix(limit)))
            #expect(Array(cut.labels(2 * k + 1)) == Array(([Int32](repeating: -100, count: p.count) + e.rejected).prefix(limit)))
        }
    }

    static let good = #"{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]}"#
    static let lines: [(String, RecordProblemKind?)] = [
        (good, nil),
        (#"{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "hey"}, {"role": "assistant", "content": "b"}]}"#, .differentPrompts),
        (#"{"chosen": [{"role": "user", "content": "hi"}], "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "b"}]}"#, .noAssistantTurn),
        (#"{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "b"}]}"#, .empty),
        (#"{"chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "same"}], "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "same"}]}"#, .identicalResponses),
        (#"{"prompt": "p", "chosen": "same", "rejected": "same"}"#, .identicalResponses),
        (#"{"prompt": "p", "chosen": "", "rejected": "x"}"#, .empty),
        (#"{"chosen": "a", "rejected": "b"}"#, .badField),
        (#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}"#, .badField),
        (#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#, .unknownShape),
        (#"{"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#, .roleOutOfPlace),
        (good, nil),
    ]

    @Test func badRecordsNamedByFileAndLine() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try write(Self.lines.map(\.0).joined(separator: "\n") + "\n", "bad.jsonl", in: dir)
        let bad = Self.lines.enumerated().filter { $0.element.1 != nil }
        do {
            _ = try loadDataset([path], options: preferenceOptions())
            Issue.record("expected badRecords")
        } catch let DatasetError.badRecords(problems, total) {
            #expect(total == bad.count)
            for (p, (k, line)) in zip(problems, bad) {
                #expect(p.location.file == path && p.location.line == k + 1, "\(p)")
                #expect(p.kind == line.1, "line \(k + 1): \(p)")
            }
        }
        let skipped = try loadDataset([path], options: preferenceOptions(onBadRecord: .skip))
        #expect(skipped.count == 4)
        #expect(skipped.report.problemCount == bad.count)
        #expect(skipped.report.summary.first?.contains("2 preference pairs") == true)
    }
}
