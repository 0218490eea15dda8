import Foundation
import Testing
@testable import Training

/// Ids and labels against transformers' apply_chat_template(return_assistant_tokens_mask=True)
/// on the real Qwen vocabulary (Scripts/fixtures/data_labels.py).
@Suite struct LabelParityTests {
    @Test func mixedShapesMatchTransformers() throws {
        let expected = try expectedData()
        let data = try loadDataset([dataFixtures.appendingPathComponent("mixed.jsonl").path])
        try #require(data.count == expected.mixed.count)
        for (k, e) in expected.mixed.enumerated() {
            #expect(Array(data.ids(k)) == e.ids, "record \(k): ids")
            #expect(Array(data.labels(k)) == e.labels, "record \(k): labels")
        }
        #expect(data.report.problemCount == 0)
    }

    @Test func seed000RecordTemplate() throws {
        let expected = try expectedData()
        let data = try loadDataset([dataFixtures.appendingPathComponent("seed000.json").path], templateName: "Template")
        try #require(data.count == expected.seed000.count)
        for (k, e) in expected.seed000.enumerated() {
            #expect(Array(data.ids(k)) == e.ids, "record \(k): ids")
            #expect(Array(data.labels(k)) == e.labels, "record \(k): labels")
        }
    }

    @Test func namedQwenTemplateEqualsModelTemplate() throws {
        let path = dataFixtures.appendingPathComponent("mixed.jsonl").path
        let a = try loadDataset([path])
        let b = try loadDataset([path], templateName: "qwen")
        #expect(a.ids == b.ids && a.labels == b.labels)
    }

    @Test func trainOnPromptLabelsEverything() throws {
        let data = try loadDataset([dataFixtures.appendingPathComponent("mixed.jsonl").path],
                                   options: DatasetOptions(maxSeqLength: 4096, trainOnPrompt: true))
        #expect(data.labels == data.ids)
    }
}
