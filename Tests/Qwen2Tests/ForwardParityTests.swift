import Foundation
import Testing
@testable import Qwen2

/// Logits of the whole padded batch against transformers' Qwen2ForCausalLM (eager, fp32).
@Suite struct ForwardParityTests {
    static let models = ["tied-mha", "untied-gqa2", "gqa7-hd128"]

    func batchLogits(_ model: Qwen2Model, _ e: ModelExpectations) throws -> [Float] {
        let B = e.input_ids.count, T = e.input_ids[0].count
        let cache = KVCache(config: model.config, batch: B, capacity: T)
        let hidden = try model.forward(ids: e.input_ids.flatMap { $0 }, attentionMask: e.attention_mask.flatMap { $0 },
                                       B: B, T: T, cache: cache)
        return model.logits(hidden: hidden, rows: Array(0..<(B * T)))
    }

    @Test(arguments: models)
    func logitsMatchTransformers(name: String) throws {
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel(name)
        let want = try FixtureTensors(qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.safetensors"))
        let got = try batchLogits(model, e)
        let diff = maxAbsDiff(got, try want.floats("logits"))
        #expect(diff < 1e-4, "\(name): max |Δ| \(diff)")
    }
}
