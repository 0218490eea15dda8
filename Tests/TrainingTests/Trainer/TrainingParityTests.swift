import Foundation
import Qwen2
import QwenCore
import Testing
@testable import Training

// Twenty optimizer steps against PyTorch (Scripts/fixtures/train_parity.py): transformers + peft
// + torch.optim.AdamW + get_scheduler("cosine", warmup 3), gradient accumulation 2, clipping at
// 1.0, weight decay 0.01 except biases and norms, on tiny random Qwen2 models in f32.

struct TrainRun: Decodable {
    struct Step: Decodable { let loss: Double; let grad_norm: Double; let lr: Double }
    struct Batch: Decodable { let input_ids: [[Int32]]; let attention_mask: [[Int32]]; let labels: [[Int32]] }
    struct Hyper: Decodable {
        let lr: Double; let betas: [Double]; let eps: Double; let weight_decay: Double; let max_grad_norm: Double; let warmup: Int
    }
    let steps: [Step]
    let accumulation: Int
    let hyper: Hyper
    let batches: [Batch]
}

struct TrainingParityTests {
    func run(_ name: String, lora: Bool) throws {
        let dir = fixtureURL("train-\(name)")
        let config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
        let model = try SafeTensorsSource(path: dir.appendingPathComponent("model.safetensors").path)
        let base = try StoredWeights(config: config, source: model)
        let run = try JSONDecoder().decode(TrainRun.self, from: Data(contentsOf: dir.appendingPathComponent("run.json")))
        let final = try SafeTensorsSource(path: dir.appendingPathComponent("final.safetensors").path)

        let (mode, state) = try parityFixtureState(dir: dir, config: config, base: base, lora: lora)
        let pass = try Qwen2TrainingPass(base: base, mode: mode, state: state)
        let h = run.hyper
        let optimizer = AdamW(layout: state.layout, hyper: AdamWHyperparameters(beta1: h.betas[0], beta2: h.betas[1], eps: h.eps, weightDecay: h.weight_decay))
        let total = run.steps.count
        let scheduler = LRScheduler(baseLR: h.lr, schedule: try LRSchedule.transformers(.cosine, warmupSteps: h.warmup, totalSteps: total, baseLR: h.lr))
        var worstLoss = 0.0, worstNorm = 0.0
        for s in 0..<total {
            let batches = run.batches[(s * run.accumulation)..<((s + 1) * run.accumulation)].map { b in
                TrainingBatch(ids: b.input_ids.flatMap { $0 }, labels: b.labels.flatMap { $0 }, attentionMask: b.attention_mask.flatMap { $0 },
                              B: b.input_ids.count, T: b.input_ids[0].count)
            }
            let lr = scheduler.learningRate(afterSteps: s)
            #expect(relativeError(lr, run.steps[s].lr) < 1e-12, "step \(s + 1) lr")
            let r = try TrainingStep.run(pass: pass, optimizer: optimizer, batches: batches, lr: lr, maxGradNorm: h.max_grad_norm)
            worstLoss = max(worstLoss, relativeError(r.loss, run.steps[s].loss))
            worstNorm = max(worstNorm, relativeError(Double(r.gradNorm), run.steps[s].grad_norm))
            #expect(relativeError(r.loss, run.steps[s].loss) < 1e-4, "step \(s + 1): loss \(r.loss) vs torch \(run.steps[s].loss)")
            #expect(relativeError(Double(r.gradNorm), run.steps[s].grad_norm) < 1e-4, "step \(s + 1): grad norm \(r.gradNorm) vs \(run.steps[s].grad_norm)")
        }
        var worstParam = 0.0
        for e in state.layout.entries {
            let expected = try final.floats(e.name)
            let err = relativeL2(UnsafeBufferPointer(start: state.param(e), count: e.count), expected)
            worstParam = max(worstParam, err)
            #expect(err < 1e-4, "\(e.name): relative error \(err) after \(total) steps")
        }
        print("train parity \(name): worst step loss rel \(worstLoss), grad norm rel \(worstNorm), final parameters rel L2 \(worstParam)")
    }

    @Test func loraTwentyStepsMatchPyTorch() throws { try run("lora", lora: true) }
    @Test func fullTwentyStepsMatchPyTorch() throws { try run("full", lora: false) }
}

/// The starting point of a parity fixture: its initial PEFT adapter (`adapter/`, LoRA) or the
/// base's weights widened to f32 (full fine-tuning).
func parityFixtureState(dir: URL, config: Qwen2Config, base: WeightProvider, lora: Bool) throws -> (TrainingMode, TrainableState) {
    if lora {
        let adapter = try ModelFolder.loadAdapter(dir.appendingPathComponent("adapter").path, config: config)
        let spec = try LoRASpec(rank: adapter.rank, alpha: adapter.alpha, useRSLoRA: adapter.useRSLoRA, targetModules: ["all-linear"])
        let state = TrainableState(layout: try TrainableParameters.loraLayout(config: config, spec: spec))
        try TrainableParameters.loadLoRA(state, from: adapter, config: config, spec: spec)
        return (.lora(spec), state)
    }
    let state = TrainableState(layout: try TrainableParameters.fullLayout(config: config))
    try TrainableParameters.copyWeights(from: base, into: state)
    return (.full, state)
}
