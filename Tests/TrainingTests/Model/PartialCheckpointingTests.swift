import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// recompute_num_layers (partial gradient checkpointing): whichever layers backward recomputes,
// the loss and every gradient are those of the run that recomputes nothing, bit for bit, and the
// activations kept shrink as more layers are recomputed.

/// The untied-gqa2 fixture (hidden 64) with a third layer: layer 1's weights in reverse order.
func threeLayerModel() throws -> (config: Qwen2Config, base: StoredWeights, batch: TrainingBatch) {
    let f = try GradFixture("untied-gqa2")
    var config = f.config
    config.numHiddenLayers = 3
    let source = InMemoryTensorSource(path: "untied-gqa2-3-layers")
    for name in f.model.tensorNames {
        guard let t = f.model.tensor(named: name) else { continue }
        let v = try f.model.floats(name)
        source.add(name, shape: t.shape, values: v)
        if name.hasPrefix("model.layers.1.") {
            source.add(name.replacingOccurrences(of: "model.layers.1.", with: "model.layers.2."), shape: t.shape,
                       values: v.reversed())
        }
    }
    return (config, try StoredWeights(config: config, source: source), f.batch)
}

@Suite struct PartialCheckpointingTests {
    /// Loss and gradients of one micro-batch; `recompute` nil with `checkpointing`: all layers.
    static func run(_ m: (config: Qwen2Config, base: StoredWeights, batch: TrainingBatch), mode: String, dropout: Float,
                    checkpointing: Bool, recompute: Int?) throws -> (loss: Double, grads: [Float], pass: Qwen2TrainingPass) {
        let state: TrainableState
        let trainingMode: TrainingMode
        if mode == "full" {
            state = TrainableState(layout: try TrainableParameters.fullLayout(config: m.config))
            try TrainableParameters.copyWeights(from: m.base, into: state)
            trainingMode = .full
        } else {
            let spec = try LoRASpec(rank: 4, alpha: 8, dropout: dropout, targetModules: ["all-linear"])
            state = TrainableState(layout: try TrainableParameters.loraLayout(config: m.config, spec: spec))
            try TrainableParameters.initializeLoRA(state, config: m.config, spec: spec, seed: 3)
            for e in state.layout.entries where e.name.contains("lora_B") {
                for i in 0..<e.count { state.param(e)[i] = 0.01 * Float(i % 7 - 3) }
            }
            trainingMode = .lora(spec)
        }
        let pass = try Qwen2TrainingPass(base: m.base, mode: trainingMode, state: state, gradientCheckpointing: checkpointing,
                                         recomputedLayers: recompute, dropoutSeed: 11)
        state.zeroGrads()
        let loss = try pass.forwardBackward(m.batch, labelledTokens: 20, dropoutStream: 5).lossSum
        return (loss, Array(state.grads.buffer), pass)
    }

    @Test(arguments: [("lora", Float(0)), ("lora", 0.25), ("full", 0)])
    func everyRecomputedCountGivesTheSameBits(mode: String, dropout: Float) throws {
        let m = try threeLayerModel()
        let none = try Self.run(m, mode: mode, dropout: dropout, checkpointing: false, recompute: nil)
        #expect(none.grads.contains { $0 != 0 })
        for k in [nil, 0, 1, 2, 3] as [Int?] {
            let r = try Self.run(m, mode: mode, dropout: dropout, checkpointing: true, recompute: k)
            #expect(r.loss == none.loss, "recompute_num_layers \(k.map(String.init) ?? "null")")
            #expect(r.grads == none.grads, "recompute_num_layers \(k.map(String.init) ?? "null") must not change a bit")
        }
    }

    /// The last layer is never recomputed (its activations are still in the shared tape), and
    /// the activations kept, counted on the buffers, are what the static figure says.
    @Test func recomputedLayersAndTheActivationsKept() throws {
        let m = try threeLayerModel()
        let spec = try LoRASpec(rank: 4, alpha: 8, dropout: 0, targetModules: ["all-linear"])
        var kept: [Int] = []
        for (checkpointing, k, recomputed) in [(false, nil, 0), (true, 0, 0), (true, 1, 1), (true, 2, 2), (true, 3, 2), (true, nil, 2)] as [(Bool, Int?, Int)] {
            let r = try Self.run(m, mode: "lora", dropout: 0, checkpointing: checkpointing, recompute: k)
            #expect(r.pass.recomputedLayers == recomputed)
            let expected = Qwen2TrainingPass.savedActivationBytes(config: m.config, B: m.batch.B, T: m.batch.T, lora: spec,
                                                                  gradientCheckpointing: checkpointing, recomputedLayers: k)
            #expect(r.pass.savedActivationBytes == expected, "checkpointing \(checkpointing), recompute \(k.map(String.init) ?? "null")")
            kept.append(expected)
        }
        #expect(kept[0] == kept[1], "recomputing no layer keeps what no checkpointing keeps")
        #expect(kept[1] > kept[2] && kept[2] > kept[3], "each layer recomputed keeps less")
        #expect(kept[3] == kept[4] && kept[4] == kept[5], "recomputing the last layer too would save nothing")
    }

    @Test func aCountOutsideTheLayersIsRefused() throws {
        let m = try threeLayerModel()
        for k in [-1, 4] {
            #expect(throws: Qwen2Error.self) {
                _ = try Self.run(m, mode: "full", dropout: 0, checkpointing: true, recompute: k)
            }
        }
        // Without checkpointing the count is not used.
        #expect(try Self.run(m, mode: "full", dropout: 0, checkpointing: false, recompute: 4).pass.recomputedLayers == 0)
    }
}
