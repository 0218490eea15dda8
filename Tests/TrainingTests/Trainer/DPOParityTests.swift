import Foundation
import Qwen2
import QwenCore
import Testing
@testable import Training

// Ten DPO steps against trl.DPOTrainer 1.16 (Scripts/fixtures/dpo_parity.py): the tiny models of
// the SFT parity fixtures, batch 2 pairs, accumulation 2, cosine with 2 warm-up steps, clipping
// at 1.0, weight decay 0.01, f32 on the CPU; LoRA from a starting adapter (the reference is that
// adapter, frozen) and full fine-tuning (reference precomputed); sigmoid, ipo, hinge, and RPO
// (sigmoid + 0.5 × the chosen responses' NLL).

struct DPORun: Decodable {
    struct Pair: Decodable { let prompt_ids: [Int32]; let chosen_ids: [Int32]; let rejected_ids: [Int32] }
    struct Hyper: Decodable { let lr: Double; let warmup: Int; let weight_decay: Double; let max_grad_norm: Double }
    struct Case: Decodable {
        let name: String; let mode: String; let loss_type: String; let beta: Double; let rpo_alpha: Double?
        let metrics: [[String: Double]]
    }
    let hyper: Hyper
    let steps: Int
    let accumulation: Int
    let batch: Int
    let pairs: [Pair]
    let cases: [Case]
}

struct DPOParityTests {
    /// 1e-5 absolute; for values above 1 (ipo's loss, (Δ − 1/(2β))² ≈ 25 at β 0.1) 1e-5 relative:
    /// TRL computes it in f32, whose spacing at 25 is 1.9e-6.
    static func tolerance(_ expected: Double) -> Double { 1e-5 * max(1, abs(expected)) }

    func run(_ name: String) throws {
        let run = try JSONDecoder().decode(DPORun.self, from: Data(contentsOf: fixtureURL("dpo-parity/run.json")))
        let c = try #require(run.cases.first { $0.name == name })
        let lora = c.mode == "lora"
        let dir = fixtureURL(lora ? "train-lora" : "train-full")
        let config = try Qwen2Config.load(dir.appendingPathComponent("config.json"))
        let base = try StoredWeights(config: config, source: try SafeTensorsSource(path: dir.appendingPathComponent("model.safetensors").path))
        let (mode, state) = try parityFixtureState(dir: dir, config: config, base: base, lora: lora)
        let pass = try Qwen2TrainingPass(base: base, mode: mode, state: state)

        // The pairs as the dataset holds them: sample 2i prompt+chosen, 2i+1 prompt+rejected.
        var ids: [Int32] = [], labels: [Int32] = [], starts = [0]
        for p in run.pairs {
            for r in [p.chosen_ids, p.rejected_ids] {
                ids += p.prompt_ids + r
                labels += [Int32](repeating: -100, count: p.prompt_ids.count) + r
                starts.append(ids.count)
            }
        }
        let data = TokenizedDataset(ids: ids, labels: labels, starts: starts, report: DatasetReport())
        var options = BatchingOptions(batchSize: run.batch, maxSeqLength: 1024, shuffle: false, padId: 0)
        options.preference = true
        let loader = try DataLoader(dataset: data, options: options)
        let objective = DPOObjective(beta: c.beta, lossType: try #require(DPOLossType(rawValue: c.loss_type)), rpoAlpha: c.rpo_alpha)
        let dpo = try DPOContext(objective: objective, pass: pass, precompute: !lora, train: loader, eval: nil)

        let h = run.hyper
        let optimizer = AdamW(layout: state.layout, hyper: AdamWHyperparameters(weightDecay: h.weight_decay))
        let scheduler = LRScheduler(baseLR: h.lr, schedule: try LRSchedule.transformers(.cosine, warmupSteps: h.warmup,
                                                                                       totalSteps: run.steps, baseLR: h.lr))
        let plan = loader.plan(epoch: 0)
        var worst: [String: Double] = [:]
        for s in 0..<run.steps {
            let batches = plan[(s * run.accumulation)..<((s + 1) * run.accumulation)].map { loader.makeBatch($0) }
            let r = try dpo.step(pass: pass, optimizer: optimizer, batches: batches, lr: scheduler.learningRate(afterSteps: s),
                                 maxGradNorm: h.max_grad_norm, dropoutStream: UInt64(s * run.accumulation))
            let m = try #require(DPOMetrics.mean(r.metrics))
            let ours = [("loss", r.loss)] + m.named
            for (key, value) in ours {
                let expected = try #require(c.metrics[s][key], "\(key) missing")
                let d = abs(value - expected)
                worst[key] = max(worst[key] ?? 0, d)
                #expect(d <= Self.tolerance(expected), "\(name) step \(s + 1): \(key) \(value) vs TRL \(expected)")
            }
        }
        print("dpo parity \(name): worst absolute deltas over \(run.steps) steps: "
              + worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    @Test func loraSigmoidMatchesTRL() throws { try run("lora-sigmoid") }
    @Test func loraIPOMatchesTRL() throws { try run("lora-ipo") }
    @Test func loraHingeMatchesTRL() throws { try run("lora-hinge") }
    @Test func fullSigmoidMatchesTRL() throws { try run("full-sigmoid") }
    @Test func fullIPOMatchesTRL() throws { try run("full-ipo") }
    @Test func loraRPOMatchesTRL() throws { try run("lora-rpo") }
}
