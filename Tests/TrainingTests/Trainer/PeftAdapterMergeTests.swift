import Foundation
import Testing
@testable import Qwen2
@testable import Training
import SafeTensors
import TestSupport

/// `qwenft merge` on adapters written by peft itself (the Qwen2 parity fixtures): the merged
/// folder's logits equal `PeftModel`'s on the unmerged adapter, as `merge_and_unload()` would.
@Suite struct PeftAdapterMergeTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Qwen2Tests").appendingPathComponent("Fixtures")

    struct Inputs: Decodable {
        let input_ids: [[Int32]]
        let attention_mask: [[Int32]]
    }

    @Test(arguments: ["lora-plain", "lora-rs"])
    func mergedPeftAdapterGivesPeftLogits(adapter: String) throws {
        let base = Self.fixtures.appendingPathComponent("untied-gqa2")
        let out = Scratch.file("qwenft-peft-merge")
        defer { try? FileManager.default.removeItem(at: out) }
        _ = try AdapterMerge.merge(base: base.path,
                                   adapter: Self.fixtures.appendingPathComponent("untied-gqa2-\(adapter)").path,
                                   out: out.path)
        let model = try ModelFolder.loadModel(path: out.path)
        let e = try JSONDecoder().decode(Inputs.self, from: Data(contentsOf: base.appendingPathComponent("expected.json")))
        let B = e.input_ids.count, T = e.input_ids[0].count
        let cache = KVCache(config: model.config, batch: B, capacity: T)
        let hidden = try model.forward(ids: e.input_ids.flatMap { $0 }, attentionMask: e.attention_mask.flatMap { $0 },
                                       B: B, T: T, cache: cache)
        let got = model.logits(hidden: hidden, rows: Array(0..<(B * T)))
        let want = try SafeTensorsStore(path: base.appendingPathComponent("expected.safetensors").path)
            .tensor("logits_\(adapter)").floats()
        let plain = try SafeTensorsStore(path: base.appendingPathComponent("expected.safetensors").path)
            .tensor("logits").floats()
        #expect(got.count == want.count)
        var diff: Float = 0, moved: Float = 0
        for i in 0..<min(got.count, want.count) {
            diff = max(diff, abs(got[i] - want[i]))
            moved = max(moved, abs(got[i] - plain[i]))
        }
        #expect(diff < 1e-4, "\(adapter): merged vs PeftModel max |Δ| \(diff)")
        #expect(moved > 1e-2, "the adapter must change the logits for this test to mean anything")
    }
}
