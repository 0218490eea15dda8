import Foundation
import QwenCore
import Testing
@testable import Qwen2

let qwen2Fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
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
    let source = try SafeTensorsSource(path: dir.appendingPathComponent("model.safetensors").path)
    return Qwen2Model(weights: try StoredWeights(config: config, source: source))
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}
