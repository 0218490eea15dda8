import Foundation
import QwenCore
import Qwen2
import Testing
@testable import Training

// Every gradient against PyTorch autograd (transformers Qwen2ForCausalLM eager f32 + peft) on
// tiny random models: tied and untied, GQA 1/2/7, right and left padding, prompts at −100, the
// loss divided by a step-wide token count. Metric: per tensor ‖ours − torch‖₂ / ‖torch‖₂ ≤ 1e-4.

let gradCases = ["tied-mha", "untied-gqa2", "gqa7"]
let gradTolerance = 1e-4

@Suite struct GradParityTests {
    @Test(arguments: gradCases, [false, true])
    func fullFineTuning(name: String, checkpointing: Bool) throws {
        let f = try GradFixture(name)
        let layout = try TrainableParameters.fullLayout(config: f.config)
        #expect(layout.entries.map(\.name) == f.expected.full_names, "layout in PyTorch's parameter order")
        let state = TrainableState(layout: layout)
        try TrainableParameters.copyWeights(from: f.base, into: state)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .full, state: state, gradientCheckpointing: checkpointing)
        state.zeroGrads()
        let loss = try pass.forwardBackward(f.batch, labelledTokens: f.expected.num_items)
        let stepLoss = loss.lossSum / Double(f.expected.num_items)
        #expect(relativeError(stepLoss, f.expected.loss) < 1e-5, "\(name): loss \(stepLoss) vs torch \(f.expected.loss)")
        #expect(loss.tokens == f.batch.labelledTokens)
        var worst = (0.0, "")
        for entry in layout.entries {
            let want = try f.grads.floats("full_grad.\(entry.name)")
            let got = UnsafeBufferPointer(try state.grad(entry.name))
            let err = relativeL2(got, want)
            if err > worst.0 { worst = (err, entry.name) }
            #expect(err < gradTolerance, "\(name) full: \(entry.name) relative error \(err)")
        }
        print("grad parity \(name) full\(checkpointing ? " +ckpt" : ""): loss rel \(relativeError(stepLoss, f.expected.loss)), \(layout.entries.count) tensors, worst ‖Δ‖/‖g‖ \(worst.0) (\(worst.1))")
    }

    @Test(arguments: gradCases, [false, true])
    func lora(name: String, checkpointing: Bool) throws {
        let f = try GradFixture(name)
        let spec = try f.loraSpec
        let layout = try TrainableParameters.loraLayout(config: f.config, spec: spec)
        #expect(layout.entries.map(\.name) == f.expected.lora_names, "layout in PEFT's parameter order")
        let state = TrainableState(layout: layout)
        for e in layout.entries {
            let v = try f.grads.floats("lora_init.\(e.name)")
            state.param(e).update(from: v, count: v.count)
        }
        let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state, gradientCheckpointing: checkpointing)
        state.zeroGrads()
        let loss = try pass.forwardBackward(f.batch, labelledTokens: f.expected.num_items)
        let stepLoss = loss.lossSum / Double(f.expected.num_items)
        #expect(relativeError(stepLoss, f.expected.lora_loss) < 1e-5, "\(name): LoRA loss \(stepLoss) vs torch \(f.expected.lora_loss)")
        var worst = (0.0, "")
        for entry in layout.entries {
            let want = try f.grads.floats("lora_grad.\(entry.name)")
            let got = UnsafeBufferPointer(try state.grad(entry.name))
            let err = relativeL2(got, want)
            if err > worst.0 { worst = (err, entry.name) }
            #expect(err < gradTolerance, "\(name) LoRA: \(entry.name) relative error \(err)")
        }
        print("grad parity \(name) lora\(checkpointing ? " +ckpt" : ""): loss rel \(relativeError(stepLoss, f.expected.lora_loss)), \(layout.entries.count) tensors, worst ‖Δ‖/‖g‖ \(worst.0) (\(worst.1))")
    }
}

extension GradParityTests {
    /// Continuing from a PEFT adapter folder: ModelFolder.loadAdapter → TrainableParameters.loadLoRA
    /// gives the same gradients as PyTorch from that adapter.
    @Test(arguments: gradCases)
    func loraFromPEFTAdapterFolder(name: String) throws {
        let f = try GradFixture(name)
        let spec = try f.loraSpec
        let adapter = try ModelFolder.loadAdapter(fixtureURL("grad-\(name)/adapter").path, config: f.config)
        let state = TrainableState(layout: try TrainableParameters.loraLayout(config: f.config, spec: spec))
        try TrainableParameters.loadLoRA(state, from: adapter, config: f.config, spec: spec)
        let pass = try Qwen2TrainingPass(base: f.base, mode: .lora(spec), state: state)
        state.zeroGrads()
        _ = try pass.forwardBackward(f.batch, labelledTokens: f.expected.num_items)
        for entry in state.layout.entries {
            let err = relativeL2(UnsafeBufferPointer(try state.grad(entry.name)), try f.grads.floats("lora_grad.\(entry.name)"))
            #expect(err < gradTolerance, "\(name) from adapter folder: \(entry.name) relative error \(err)")
        }
    }
}
