import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Fixtures of Scripts/fixtures/grad_model.py: a tiny model folder, a batch, and PyTorch's
// gradients (full fine-tuning and LoRA) in grads.safetensors.

struct GradFixtureError: Error, CustomStringConvertible {
    let description: String
}

/// case.json
struct GradCase: Decodable {
    struct LoRA: Decodable {
        let r: Int
        let lora_alpha: Double
        let use_rslora: Bool
        let target_modules: TargetModules
    }
    enum TargetModules: Decodable {
        case all(String), list([String])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .all(s) } else { self = .list(try c.decode([String].self)) }
        }
        var names: [String] {
            switch self {
            case .all(let s): return [s]
            case .list(let l): return l
            }
        }
    }
    let input_ids: [[Int32]]
    let attention_mask: [[Int32]]
    let labels: [[Int32]]
    let num_items: Int
    let loss: Double
    let lora_loss: Double
    let lora: LoRA
    let full_names: [String]
    let lora_names: [String]
}

/// One fixture folder loaded: config, base weights, batch, gradients.
struct GradFixture {
    let name: String
    let config: Qwen2Config
    let model: SafeTensorsSource
    let base: StoredWeights
    let grads: SafeTensorsSource
    let expected: GradCase
    let batch: TrainingBatch

    init(_ name: String) throws {
        self.name = name
        let dir = fixtureURL("grad-\(name)")
        config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
        model = try SafeTensorsSource(path: dir.appendingPathComponent("model.safetensors").path)
        base = try StoredWeights(config: config, source: model)
        grads = try SafeTensorsSource(path: dir.appendingPathComponent("grads.safetensors").path)
        expected = try JSONDecoder().decode(GradCase.self, from: Data(contentsOf: dir.appendingPathComponent("case.json")))
        let B = expected.input_ids.count, T = expected.input_ids[0].count
        batch = TrainingBatch(ids: expected.input_ids.flatMap { $0 }, labels: expected.labels.flatMap { $0 },
                              attentionMask: expected.attention_mask.flatMap { $0 }, B: B, T: T)
    }

    var loraSpec: LoRASpec {
        get throws {
            try LoRASpec(rank: expected.lora.r, alpha: expected.lora.lora_alpha, useRSLoRA: expected.lora.use_rslora,
                         targetModules: expected.lora.target_modules.names)
        }
    }
}

/// ‖a − b‖₂ / ‖b‖₂ in Double: the relative error norm every gradient parity test uses.
func relativeL2(_ a: UnsafeBufferPointer<Float>, _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for i in b.indices {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    return (num / max(den, 1e-300)).squareRoot()
}
