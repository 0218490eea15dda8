import Foundation
import Testing
@testable import Qwen2

/// bf16 / f16 weights and PEFT LoRA adapters against transformers / peft on the same weights.
@Suite struct VariantParityTests {
    func logits(_ model: Qwen2Model, _ e: ModelExpectations) throws -> [Float] {
        let B = e.input_ids.count, T = e.input_ids[0].count
        let cache = KVCache(config: model.config, batch: B, capacity: T)
        let hidden = try model.forward(ids: e.input_ids.flatMap { $0 }, attentionMask: e.attention_mask.flatMap { $0 },
                                       B: B, T: T, cache: cache)
        return model.logits(hidden: hidden, rows: Array(0..<(B * T)))
    }

    @Test(arguments: ["tied-mha", "untied-gqa2"], ["bf16", "f16"])
    func halfPrecisionWeightsMatchTransformersInFloat32(name: String, dtype: String) throws {
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel("\(name)-\(dtype)")
        #expect(model.weights.embedding.dtype.rawValue == dtype.uppercased())
        let want = try SafeTensorsSource(path: qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.safetensors").path)
        let diff = maxAbsDiff(try logits(model, e), try want.floats("logits_\(dtype)"))
        #expect(diff < 1e-4, "\(name) \(dtype): max |Δ| \(diff)")
    }

    @Test(arguments: ["lora-plain", "lora-rs"])
    func loraMatchesPeft(adapter: String) throws {
        let name = "untied-gqa2"
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel(name)
        let dir = qwen2Fixtures.appendingPathComponent("\(name)-\(adapter)")
        model.adapter = try LoRAAdapter.load(configURL: dir.appendingPathComponent("adapter_config.json"),
                                            tensors: try SafeTensorsSource(path: dir.appendingPathComponent("adapter_model.safetensors").path),
                                            model: model.config)
        let want = try SafeTensorsSource(path: qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.safetensors").path)
        let got = try logits(model, e)
        let diff = maxAbsDiff(got, try want.floats("logits_\(adapter)"))
        #expect(diff < 1e-4, "\(adapter): max |Δ| \(diff)")
        // And the adapter changes the logits (non-zero B), so the test can fail.
        #expect(maxAbsDiff(got, try want.floats("logits")) > 1e-2)
    }

    /// Decoding one token at a time (the fused small-N kernels) with an adapter gives peft's logits.
    @Test func loraDecodingStepMatchesPeft() throws {
        let name = "untied-gqa2"
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel(name)
        let dir = qwen2Fixtures.appendingPathComponent("\(name)-lora-rs")
        model.adapter = try LoRAAdapter.load(configURL: dir.appendingPathComponent("adapter_config.json"),
                                            tensors: try SafeTensorsSource(path: dir.appendingPathComponent("adapter_model.safetensors").path),
                                            model: model.config)
        let ids = e.input_ids[0], T = ids.count, V = model.config.vocabSize
        let cache = KVCache(config: model.config, batch: 1, capacity: T)
        _ = try model.forward(ids: Array(ids[..<(T - 2)]), B: 1, T: T - 2, cache: cache)
        _ = try model.forward(ids: [ids[T - 2]], B: 1, T: 1, cache: cache)
        let got = model.logits(hidden: try model.forward(ids: [ids[T - 1]], B: 1, T: 1, cache: cache), rows: [0])
        let want = try SafeTensorsSource(path: qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.safetensors").path)
            .floats("logits_lora-rs")
        #expect(maxAbsDiff(got, Array(want[((T - 1) * V)..<(T * V)])) < 1e-4)
    }

    @Test func adapterForADifferentModelIsRefused() throws {
        let model = try fixtureModel("tied-mha")
        let dir = qwen2Fixtures.appendingPathComponent("untied-gqa2-lora-plain")
        #expect(throws: Qwen2Error.self) {
            try LoRAAdapter.load(configURL: dir.appendingPathComponent("adapter_config.json"),
                                 tensors: try SafeTensorsSource(path: dir.appendingPathComponent("adapter_model.safetensors").path),
                                 model: model.config)
        }
    }
}
