import Foundation
import QwenCore
import SafeTensors
import Testing
@testable import Qwen2
import TestSupport

@Suite struct ConfigTests {
    func decode(_ json: String) throws -> Qwen2Config {
        try JSONDecoder().decode(Qwen2Config.self, from: Data(json.utf8))
    }
    let base = #""vocab_size": 32, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 4"#

    @Test func oldAndNewRopeThetaSpellings() throws {
        #expect(try decode("{\(base), \"rope_theta\": 5000.0}").ropeTheta == 5000)
        #expect(try decode("{\(base), \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 7000.0}}").ropeTheta == 7000)
    }

    @Test func headDimDefaultsToHiddenOverHeadsAndKvHeadsToHeads() throws {
        let c = try decode("{\(base)}")
        #expect(c.headDim == 4 && c.numKeyValueHeads == 4 && !c.tieWordEmbeddings)
        #expect(try decode("{\(base), \"head_dim\": 8}").headDim == 8)
    }

    @Test func eosMayBeAnIdOrAList() throws {
        #expect(try decode("{\(base), \"eos_token_id\": 7}").eosTokenIds == [7])
        #expect(try decode("{\(base), \"eos_token_id\": [7, 8]}").eosTokenIds == [7, 8])
    }

    @Test func slidingWindowIsRefusedUnlessOff() throws {
        #expect(try decode("{\(base), \"use_sliding_window\": false, \"sliding_window\": 4096}").hiddenSize == 16)
        let dir = try tempDir()
        let url = dir.appendingPathComponent("config.json")
        try "{\(base), \"use_sliding_window\": true}".write(to: url, atomically: true, encoding: .utf8)
        #expect {
            try Qwen2Config.load(url)
        } throws: { e in
            "\(e)".contains("use_sliding_window") && "\(e)".contains(url.path)
        }
    }

    @Test func otherModelTypesAndRopeScalingAreRefused() throws {
        #expect(throws: DecodingError.self) { try decode("{\(base), \"model_type\": \"llama\"}") }
        #expect(throws: DecodingError.self) { try decode("{\(base), \"rope_scaling\": {\"rope_type\": \"yarn\"}}") }
    }

    @Test func badShapesAreRefusedWithTheKey() throws {
        let c = try decode("{\(base), \"num_key_value_heads\": 3}")
        #expect { try c.validate() } throws: { "\($0)".contains("num_key_value_heads") }
    }

    @Test func encodesWhatItDecodes() throws {
        let c = Qwen2Preset.qwen25_05b.config
        let again = try JSONDecoder().decode(Qwen2Config.self, from: JSONEncoder().encode(c))
        #expect(again == c)
    }
}

@Suite struct WeightLoadingTests {
    @Test func everyTensorProblemIsListedInOneError() throws {
        let dir = qwen2Fixtures.appendingPathComponent("tied-mha")
        let config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
        let good = try SafeTensorsSource(path: dir.appendingPathComponent("model.safetensors").path)
        let source = InMemoryTensorSource(path: "broken.safetensors")
        for name in good.tensorNames where name != "model.layers.1.mlp.up_proj.weight" {
            let t = good.tensor(named: name)!
            let values = try good.floats(name)
            if name == "model.layers.0.self_attn.k_proj.bias" {
                source.add(name, shape: [t.count + 1], values: values + [0])
            } else {
                source.add(name, shape: t.shape, values: values)
            }
        }
        source.add("model.layers.9.extra.weight", shape: [1], values: [0])
        #expect {
            try StoredWeights(config: config, source: source)
        } throws: { e in
            let s = "\(e)"
            return s.contains("broken.safetensors") && s.contains("missing model.layers.1.mlp.up_proj.weight")
                && s.contains("model.layers.0.self_attn.k_proj.bias: shape [65]") && s.contains("unexpected model.layers.9.extra.weight")
                && s.contains("3 problems")
        }
    }

    @Test func shardedAndMixedDtypeFoldersLoadAndAgree() throws {
        let name = "untied-gqa2"
        let src = qwen2Fixtures.appendingPathComponent(name)
        let single = try SafeTensorsSource(path: src.appendingPathComponent("model.safetensors").path)
        let dir = try tempDir()
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        // Norms in bf16, everything else f32, split over several shards.
        let tensors = try single.tensorNames.map { n -> TensorToWrite in
            let t = single.tensor(named: n)!
            let v = try single.floats(n)
            return TensorToWrite(name: n, shape: t.shape, floats: n.contains("norm") ? v.map { floatFromBF16(bf16Bits(fromFloat: $0)) } : v,
                                 as: n.contains("norm") ? .bf16 : .f32)
        }
        let result = try SafeTensorsWriter.writeSharded(tensors, toFolder: dir.path, maxShardSize: 100_000)
        #expect(result.files.count > 2)
        let sharded = try ModelFolder.loadModel(path: dir.path)
        let reference = try fixtureModel(name)
        let e = try ModelExpectations.load(name)
        let ids = e.input_ids[0]
        func run(_ m: Qwen2Model) throws -> [Float] {
            let cache = KVCache(config: m.config, batch: 1, capacity: ids.count)
            return m.logits(hidden: try m.forward(ids: ids, B: 1, T: ids.count, cache: cache), rows: Array(0..<ids.count))
        }
        let a = try run(sharded), b = try run(reference)
        #expect(maxAbsDiff(a, b) < 0.05)   // only the bf16 rounding of the norms differs
        #expect(maxAbsDiff(a, b) > 0)
    }

    @Test func bf16WeightsStayTwoBytesResident() throws {
        let f32 = try fixtureModel("untied-gqa2"), bf16 = try fixtureModel("untied-gqa2-bf16")
        #expect(bf16.weights.residentBytes < f32.weights.residentBytes * 6 / 10)
    }

    @Test func outOfVocabularyIdsAreRefused() throws {
        let m = try fixtureModel("tied-mha")
        let cache = KVCache(config: m.config, batch: 1, capacity: 4)
        #expect(throws: Qwen2Error.self) { try m.forward(ids: [1, 999], B: 1, T: 2, cache: cache) }
    }
}

func tempDir() throws -> URL {
    try Scratch.folder("qwen2-test")
}

@Suite struct ChatTemplateTests {
    @Test func qwen25TemplateRendersChatML() throws {
        let t = try ChatTemplate(source: ChatTemplate.qwen25, eosToken: "<|im_end|>")
        let text = try t.render([ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi")],
                                addGenerationPrompt: true)
        #expect(text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let noSystem = try t.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: false)
        #expect(noSystem.hasPrefix("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud."))
        #expect(noSystem.hasSuffix("<|im_start|>user\nHi<|im_end|>\n"))
    }

    @Test func templatesSeeTheSpecialTokens() throws {
        let t = try ChatTemplate(source: "{{ bos_token is none }}|{{ eos_token }}", bosToken: nil, eosToken: "</s>")
        #expect(try t.render([], addGenerationPrompt: false) == "True|</s>")
    }
}
