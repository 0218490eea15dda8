import Testing
@testable import Training

@Suite struct ParameterLayoutTests {
    @Test func decayRuleIsTransformers() {
        let noDecay = ["model.layers.0.self_attn.q_proj.bias", "model.layers.3.input_layernorm.weight",
                       "model.layers.3.post_attention_layernorm.weight", "model.norm.weight",
                       "model.final_norm.weight", "x.RMSNorm.weight"]
        let decay = ["model.embed_tokens.weight", "lm_head.weight", "model.layers.0.mlp.down_proj.weight",
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                     "model.normalizer.weight", "model.norms.weight"]
        for n in noDecay { #expect(!ParameterLayout.appliesWeightDecay(name: n), "\(n)") }
        for n in decay { #expect(ParameterLayout.appliesWeightDecay(name: n), "\(n)") }
    }

    @Test func offsetsAlignedAndViewsByName() throws {
        let layout = try ParameterLayout([("a.weight", [3, 5]), ("a.bias", [3]), ("b.weight", [16])])
        #expect(layout.entries.map(\.offset) == [0, 16, 32])
        #expect(layout.count == 48 && layout.parameterCount == 34)
        #expect(layout.entries.map(\.decay) == [true, false, true])
        let state = TrainableState(layout: layout)
        let b = try state.param("a.bias")
        b[0] = 1; b[2] = 3
        #expect(state.params[16] == 1 && state.params[18] == 3)
        let g = try state.grad("b.weight")
        for i in 0 ..< g.count { g[i] = 2 }
        state.zeroGrads()
        #expect(state.grads.toArray().allSatisfy { $0 == 0 })
        #expect(Int(bitPattern: state.param(layout.entries[2])) % 64 == 0)
    }

    @Test func segmentsCutEntriesAtShardEdges() throws {
        let layout = try ParameterLayout([("a.weight", [20]), ("a.bias", [5]), ("c.weight", [7])])
        // offsets 0, 32, 48; count 64
        let s = layout.segments(in: 10 ..< 50)
        #expect(s.map(\.range) == [10 ..< 20, 32 ..< 37, 48 ..< 50])
        #expect(s.map(\.decay) == [true, false, true])
        #expect(layout.segments(in: 20 ..< 32).isEmpty)
    }

    @Test func shardsAreEqualAlignedAndCover() throws {
        let layout = try ParameterLayout([("w", [1000]), ("b", [3])])
        for n in 1 ... 5 {
            let total = layout.storageCount(worldSize: n)
            #expect(total >= layout.count && total % (n * ParameterLayout.alignment) == 0)
            var next = 0
            for r in 0 ..< n {
                let range = layout.shardRange(rank: r, worldSize: n)
                #expect(range.lowerBound == next && range.count == total / n && range.lowerBound % 16 == 0)
                next = range.upperBound
            }
            #expect(next == total)
        }
    }

    @Test func badNamesAndShapesThrow() throws {
        var layout = try ParameterLayout([("model.layers.0.self_attn.q_proj.lora_A.weight", [4, 8])])
        #expect(throws: TrainingError.duplicateParameter(name: "model.layers.0.self_attn.q_proj.lora_A.weight")) {
            try layout.append("model.layers.0.self_attn.q_proj.lora_A.weight", shape: [4, 8])
        }
        #expect(throws: TrainingError.self) { try layout.append("z", shape: [0, 3]) }
        #expect(throws: TrainingError.self) { try layout.append("z", shape: []) }
        do {
            _ = try layout.require("model.layers.0.self_attn.q_proj.lora_a.weight")
            Issue.record("expected an error")
        } catch let e as TrainingError {
            #expect(e.description.contains("Did you mean \"model.layers.0.self_attn.q_proj.lora_A.weight\""))
        }
    }
}
