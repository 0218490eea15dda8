import Foundation
import Qwen2
import QwenCore
import Testing
@testable import Training

// QLoRA against transformers + bitsandbytes 0.50 (CPU, NF4, double quantisation, float32
// compute) + peft (Scripts/fixtures/qlora_parity.py): logits of the saved 4-bit folder with and
// without an adapter, and twelve optimizer steps of LoRA over that 4-bit base.

struct QLoRAParityTests {
    let dir = fixtureURL("qlora")

    func nf4Base() throws -> (Qwen2Config, NF4Weights) {
        let q = dir.appendingPathComponent("base-4bit")
        let config = try Qwen2Config.load(q.appendingPathComponent("config.json"))
        return (config, try NF4Weights(config: config, source: try SafeTensorsSource(path: q.appendingPathComponent("model.safetensors").path)))
    }

    @Test func logitsMatchBitsandbytesWithAndWithoutLoRA() throws {
        let expected = try SafeTensorsSource(path: dir.appendingPathComponent("logits.safetensors").path)
        guard let idsT = expected.tensor(named: "ids") else { throw TrainingError.badConfigValue(key: "ids", source: "fixture", message: "missing") }
        let B = idsT.shape[0], T = idsT.shape[1]
        let ids = (0..<(B * T)).map { idsT.data.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
        for (name, adapter) in [("plain", nil), ("lora", dir.appendingPathComponent("adapter").path)] {
            let model = try ModelFolder.loadModel(path: dir.appendingPathComponent("base-4bit").path, adapter: adapter)
            #expect(model.weights is NF4Weights)
            let cache = KVCache(config: model.config, batch: B, capacity: T)
            let hidden = try model.forward(ids: ids, B: B, T: T, cache: cache)
            let got = model.logits(hidden: hidden, rows: Array(0..<(B * T)))
            let want = try expected.floats(name)
            var worst: Float = 0
            for i in want.indices { worst = max(worst, abs(got[i] - want[i])) }
            print("qlora logits \(name): max abs diff \(worst) (logits up to \(want.map(abs).max() ?? 0))")
            #expect(worst < 1e-4, "\(name): max abs diff \(worst)")
        }
    }

    /// Quantising the float32 base ourselves gives bitsandbytes' packed codes bit for bit; the
    /// 8-bit absmax codes agree except where its CPU lookup table rounds differently.
    @Test func quantisingTheBaseMatchesTheSavedFolder() throws {
        let (config, saved) = try nf4Base()
        let fp = dir.appendingPathComponent("base")
        let ours = try NF4Weights(config: config, source: try SafeTensorsSource(path: fp.appendingPathComponent("model.safetensors").path),
                                  quantizing: NF4Options())
        var blocks = 0, differing = 0
        for l in 0..<config.numHiddenLayers {
            for p in Projection.allCases {
                let a = try #require(ours.tensors[l][p]), b = try #require(saved.tensors[l][p])
                #expect(Array(UnsafeBufferPointer(start: a.packed, count: a.packedCount))
                        == Array(UnsafeBufferPointer(start: b.packed, count: b.packedCount)), "layer \(l) \(p)")
                // The offset is the absmax mean: ours sums in double and rounds once, torch's
                // fp32 reduction order depends on the CPU's vector width; a last-bit difference
                // there moves every nested absmax by as little.
                let sa = try #require(a.nestedState), sb = try #require(b.nestedState)
                #expect(abs(Int(sa.offset.bitPattern) - Int(sb.offset.bitPattern)) <= 2, "layer \(l) \(p) offset \(sa.offset) vs \(sb.offset)")
                blocks += sa.codes.count
                differing += zip(sa.codes, sb.codes).filter { $0 != $1 }.count
            }
        }
        print("qlora quantise: 8-bit absmax codes differing from bitsandbytes' CPU kernel: \(differing) of \(blocks)")
        #expect(differing * 100 <= blocks)
    }

    @Test func twelveStepsMatchPeftOverBitsandbytes() throws {
        let (config, base) = try nf4Base()
        let run = try JSONDecoder().decode(TrainRun.self, from: Data(contentsOf: dir.appendingPathComponent("run.json")))
        let final = try SafeTensorsSource(path: dir.appendingPathComponent("final.safetensors").path)
        let adapter = try ModelFolder.loadAdapter(dir.appendingPathComponent("adapter").path, config: config)
        let spec = try LoRASpec(rank: adapter.rank, alpha: adapter.alpha, useRSLoRA: adapter.useRSLoRA, targetModules: ["all-linear"])
        let state = TrainableState(layout: try TrainableParameters.loraLayout(config: config, spec: spec))
        try TrainableParameters.loadLoRA(state, from: adapter, config: config, spec: spec)
        let pass = try Qwen2TrainingPass(base: base, mode: .lora(spec), state: state)
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
            let r = try TrainingStep.run(pass: pass, optimizer: optimizer, batches: batches, lr: scheduler.learningRate(afterSteps: s),
                                         maxGradNorm: h.max_grad_norm)
            worstLoss = max(worstLoss, relativeError(r.loss, run.steps[s].loss))
            worstNorm = max(worstNorm, relativeError(Double(r.gradNorm), run.steps[s].grad_norm))
            #expect(relativeError(r.loss, run.steps[s].loss) < 1e-4, "step \(s + 1): loss \(r.loss) vs \(run.steps[s].loss)")
            #expect(relativeError(Double(r.gradNorm), run.steps[s].grad_norm) < 1e-4, "step \(s + 1): grad norm \(r.gradNorm) vs \(run.steps[s].grad_norm)")
        }
        var worstParam = 0.0
        for e in state.layout.entries {
            let err = relativeL2(UnsafeBufferPointer(start: state.param(e), count: e.count), try final.floats(e.name))
            worstParam = max(worstParam, err)
            #expect(err < 1e-4, "\(e.name): relative error \(err) after \(total) steps")
        }
        print("qlora parity: worst step loss rel \(worstLoss), grad norm rel \(worstNorm), final parameters rel L2 \(worstParam)")
    }
}
