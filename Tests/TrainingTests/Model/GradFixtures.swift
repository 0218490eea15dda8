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

/// A whole safetensors file read into memory (fixtures are small), as a TensorSource.
final class SafeTensorsFixture: TensorSource {
    let path: String
    private let bytes: UnsafeMutableRawPointer
    private var table: [String: StoredTensor] = [:]
    private(set) var tensorNames: [String] = []

    init(_ url: URL) throws {
        path = url.path
        let data = try Data(contentsOf: url)
        bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, data.count), alignment: 64)
        data.copyBytes(to: bytes.assumingMemoryBound(to: UInt8.self), count: data.count)
        let headerLength = Int(bytes.loadUnaligned(as: UInt64.self))
        let header = Data(bytes: bytes + 8, count: headerLength)
        guard let json = try JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw GradFixtureError(description: "\(url.path): bad header")
        }
        for (name, value) in json where name != "__metadata__" {
            guard let v = value as? [String: Any], let d = v["dtype"] as? String, let dtype = DType(safetensorsName: d),
                  let shape = v["shape"] as? [Int], let offsets = v["data_offsets"] as? [Int] else {
                throw GradFixtureError(description: "\(url.path): bad entry \(name)")
            }
            table[name] = StoredTensor(dtype: dtype, shape: shape, data: UnsafeRawPointer(bytes + 8 + headerLength + offsets[0]))
            tensorNames.append(name)
        }
    }

    deinit { bytes.deallocate() }

    func tensor(named name: String) -> StoredTensor? { table[name] }

    func floats(_ name: String) throws -> [Float] {
        guard let t = table[name], t.dtype == .f32 else {
            throw GradFixtureError(description: "\(path): no f32 tensor \(name)")
        }
        var out = [Float](repeating: 0, count: t.count)
        out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: t.data, count: t.count * 4)) }
        return out
    }
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
    let model: SafeTensorsFixture
    let base: StoredWeights
    let grads: SafeTensorsFixture
    let expected: GradCase
    let batch: TrainingBatch

    init(_ name: String) throws {
        self.name = name
        let dir = fixtureURL("grad-\(name)")
        config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
        model = try SafeTensorsFixture(dir.appendingPathComponent("model.safetensors"))
        base = try StoredWeights(config: config, source: model)
        grads = try SafeTensorsFixture(dir.appendingPathComponent("grads.safetensors"))
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
