import Foundation
import Testing
@testable import Training

// `mpirun -np 2 qwenft train` against DeepSpeed 0.19's ZeRO on the CPU (gloo): the per-step
// losses and grad norms that Scripts/fixtures/deepspeed_zero.py recorded for stages 1, 2, 3 (full
// fine-tuning) and 3 with LoRA, on the tiny model TrainerFixture builds, the same records in the
// same order (no shuffling), the same initial adapter and the same DeepSpeed JSON files.

@Suite(.serialized) struct DeepSpeedParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/deepspeed-zero").path

    static func number(_ v: JSONValue?) -> Double? {
        if let x = v?.doubleValue { return x }
        return nil
    }

    /// Losses and grad norms within 1e-5 relative at every step. They differ only in summation
    /// order (fp32 GEMMs, reductions over 2 ranks); measured: at most 1e-7 relative (full, 4
    /// steps at lr 1e-3; LoRA at lr 1e-2).
    @Test func lossesEqualDeepSpeedZeRO() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let golden = try JSONValue.parse(String(contentsOfFile: Self.fixtures + "/losses.json", encoding: .utf8))
        let model = try TrainerFixture.folders().model
        let dir = try trainerTempDir()
        for (name, stage, lora) in [("zero1", 1, false), ("zero2", 2, false), ("zero3", 3, false), ("zero3-lora", 3, true)] {
            let run = try #require(golden["cases"]?[name], "losses.json has no case \(name)")
            guard case let .array(steps)? = run["steps"], let lr = Self.number(run["learning_rate"]) else {
                Issue.record("losses.json case \(name) has no steps or learning_rate")
                continue
            }
            var pairs: [(String, JSONValue)] = [
                ("model_name_or_path", .string(model)), ("train_file", .string(Self.fixtures + "/records.jsonl")),
                ("output_dir", .string(dir + "/" + name)), ("task_type", .string("pretrain")),
                ("train_mode", .string(lora ? "lora" : "full")), ("per_device_train_batch_size", .int(1)),
                ("gradient_accumulation_steps", .int(1)), ("max_steps", .int(steps.count)), ("learning_rate", .double(lr)),
                ("lr_scheduler_type", .string("constant")), ("warmup_steps", .int(0)), ("weight_decay", .double(0)),
                ("shuffle", .bool(false)), ("max_seq_length", .int(64)), ("logging_steps", .int(1)), ("save_steps", .int(1000)),
                ("deepspeed", .string(Self.fixtures + "/zero\(stage).json")), ("lora_dropout", .double(0)),
            ]
            if lora { pairs.append(("adapter_name_or_path", .string(Self.fixtures + "/adapter"))) }
            let config = dir + "/\(name).json"
            try JSONValue.object(pairs).prettyText.write(toFile: config, atomically: true, encoding: .utf8)
            let r = try MPIRun.train(np: 2, config: config, [])
            #expect(r.status == 0, "\(name): \(r.output)")
            let ours = try loggedSteps(dir + "/" + name)
            #expect(ours.count == steps.count, "\(name): \(ours.count) logged steps, DeepSpeed \(steps.count)")
            for (i, s) in steps.enumerated() {
                guard let loss = Self.number(s["loss"]), let norm = Self.number(s["grad_norm"]), let mine = ours[i + 1] else { continue }
                #expect(abs(mine.loss - loss) <= 1e-5 * abs(loss), "\(name) step \(i + 1): loss \(mine.loss), DeepSpeed \(loss)")
                #expect(abs(mine.norm - norm) <= 1e-5 * abs(norm), "\(name) step \(i + 1): grad_norm \(mine.norm), DeepSpeed \(norm)")
            }
        }
    }
}
