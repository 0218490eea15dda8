import Foundation
import QwenCore
import Testing
@testable import Qwen2

let qwen2Fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Reads a whole safetensors file into memory (fixtures are small): tensors as a TensorSource.
final class FixtureTensors: TensorSource {
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
            throw FixtureError("\(url.path): bad header")
        }
        for (name, value) in json where name != "__metadata__" {
            guard let v = value as? [String: Any], let d = v["dtype"] as? String, let dtype = DType(safetensorsName: d),
                  let shape = v["shape"] as? [Int], let offsets = v["data_offsets"] as? [Int] else {
                throw FixtureError("\(url.path): bad entry \(name)")
            }
            table[name] = StoredTensor(dtype: dtype, shape: shape, data: UnsafeRawPointer(bytes + 8 + headerLength + offsets[0]))
            tensorNames.append(name)
        }
    }

    deinit { bytes.deallocate() }

    func tensor(named name: String) -> StoredTensor? { table[name] }

    func floats(_ name: String) throws -> [Float] {
        guard let t = table[name] else { throw FixtureError("\(path): no tensor \(name)") }
        var out = [Float](repeating: 0, count: t.count)
        out.withUnsafeMutableBufferPointer { widen(t, into: $0.baseAddress!) }
        return out
    }
}

/// expected.json of a model fixture.
struct ModelExpectations: Decodable {
    struct Greedy: Decodable {
        let prompt: [Int32]
        let new_tokens: [Int32]
        let new_tokens_repetition_penalty_1_05: [Int32]
    }
    struct Eval: Decodable {
        let loss: Double
        let token_accuracy: Double
        let tokens: Int
    }
    let input_ids: [[Int32]]
    let attention_mask: [[Int32]]
    let greedy: Greedy
    let eval: Eval
    let adapters: [String]?

    static func load(_ name: String) throws -> ModelExpectations {
        let data = try Data(contentsOf: qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(ModelExpectations.self, from: data)
    }
}

/// Loads a fixture folder's config and weights (without the model-folder loader).
func fixtureModel(_ name: String) throws -> Qwen2Model {
    let dir = qwen2Fixtures.appendingPathComponent(name)
    let config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
    let source = try FixtureTensors(dir.appendingPathComponent("model.safetensors"))
    return Qwen2Model(weights: try StoredWeights(config: config, source: source))
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}
