import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Bad input: clear messages naming the culprit, and nothing accumulated.

@Suite struct TrainingInputTests {
    @Test func unknownTargetModuleNamesTheClosest() {
        #expect {
            _ = try LoRASpec(rank: 8, alpha: 16, targetModules: ["q_proj", "v_prj"])
        } throws: { e in
            let s = "\(e)"
            return s.contains("lora_target_modules") && s.contains("v_prj") && s.contains("v_proj")
        }
    }

    @Test func rankZeroAndBadValues() {
        #expect { _ = try LoRASpec(rank: 0, alpha: 16, targetModules: ["q_proj"]) } throws: { "\($0)".contains("lora_rank") }
        #expect { _ = try LoRASpec(rank: 4, alpha: 0, targetModules: ["q_proj"]) } throws: { "\($0)".contains("lora_alpha") }
        #expect { _ = try LoRASpec(rank: 4, alpha: 8, dropout: 1, targetModules: ["q_proj"]) } throws: { "\($0)".contains("lora_dropout") }
        #expect { _ = try LoRASpec(rank: 4, alpha: 8, targetModules: []) } throws: { "\($0)".contains("lora_target_modules") }
    }

    @Test func allLinearAndOrder() throws {
        let spec = try LoRASpec(rank: 2, alpha: 4, targetModules: ["down_proj", "q_proj"])
        #expect(spec.targets == [.q, .down])
        #expect(try LoRASpec(rank: 2, alpha: 4, targetModules: ["all-linear"]).targets == Projection.allCases)
        #expect(try LoRASpec(rank: 4, alpha: 16, useRSLoRA: true, targetModules: ["q_proj"]).scale == 8)
    }

    @Test func adapterOfTheWrongShapeIsRefused() throws {
        let f = try GradFixture("gqa7")
        let spec = try LoRASpec(rank: 2, alpha: 4, targetModules: ["q_proj"])
        let state = TrainableState(layout: try TrainableParameters.loraLayout(config: f.config, spec: spec))
        let wrong = LoRAAdapter(rank: 3, alpha: 4, useRSLoRA: false, layerCount: f.config.numHiddenLayers)
        wrong.layers[0][.q] = LoRAWeights(rank: 3, inFeatures: f.config.hiddenSize, outFeatures: f.config.qDim, scale: 1)
        #expect { try TrainableParameters.loadLoRA(state, from: wrong, config: f.config, spec: spec, source: "old-adapter") }
            throws: { "\($0)".contains("old-adapter") && "\($0)".contains("q_proj") }
        let missing = LoRAAdapter(rank: 2, alpha: 4, useRSLoRA: false, layerCount: f.config.numHiddenLayers)
        #expect { try TrainableParameters.loadLoRA(state, from: missing, config: f.config, spec: spec) }
            throws: { "\($0)".contains("no LoRA weights") }
    }

    @Test func badBatchesThrowBeforeAnyGradient() throws {
        let f = try GradFixture("tied-mha")
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        state.zeroGrads()
        var badId = f.batch
        badId.ids[5] = Int32(f.config.vocabSize)
        #expect { _ = try pass.forwardBackward(badId, labelledTokens: 10) } throws: { "\($0)".contains("outside the vocabulary") }
        var badLabel = f.batch
        badLabel.labels[7] = 100_000
        #expect { _ = try pass.forwardBackward(badLabel, labelledTokens: 10) } throws: { "\($0)".contains("100000") }
        var short = f.batch
        short.labels.removeLast()
        #expect { _ = try pass.forwardBackward(short, labelledTokens: 10) } throws: { "\($0)".contains("labels") }
        #expect(state.grads.buffer.allSatisfy { $0 == 0 })
    }

    @Test func batchWithNoLabelledTokenGivesZeroGradients() throws {
        let f = try GradFixture("tied-mha")
        let state = TrainableState(layout: try TrainableParameters.fullLayout(config: f.config))
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state)
        state.zeroGrads()
        var none = f.batch
        none.labels = none.labels.map { _ in ignoreIndex }
        let l = try pass.forwardBackward(none, labelledTokens: 0)
        #expect(l == BatchLoss(lossSum: 0, tokens: 0))
        #expect(state.grads.buffer.allSatisfy { $0 == 0 })
    }
}
