import Foundation
import Qwen2
import Testing
@testable import Training

/// task_type dpo through the whole Trainer on the tiny preset model: logs with TRL's metric
/// names, evaluation, checkpoints and bit-identical resume, full fine-tuning, refused options.
@Suite(.serialized) struct DPOTrainerTests {
    static let pairs: [String] = {
        let questions = ["who are you", "What is 2+2?", "Name a colour.", "Say hello.", "你是谁", "Pick a number.", "Capital of France?", "Good morning!"]
        return questions.enumerated().map { k, q in
            let good = "Sure! Here is a careful answer to: \(q)"
            let bad = k % 2 == 0 ? "no" : "I refuse."
            return #"{"chosen": [{"role": "user", "content": "\#(q)"}, {"role": "assistant", "content": "\#(good)"}], "#
                + #""rejected": [{"role": "user", "content": "\#(q)"}, {"role": "assistant", "content": "\#(bad)"}]}"#
        }
    }()

    /// `withEval`: eval_file is the training file, evaluated every 2 steps.
    static func config(output: String, _ extra: [(String, JSONValue)] = [], withEval: Bool = false) throws -> TrainingConfig {
        let dir = try trainerTempDir()
        let data = dir + "/prefs.jsonl"
        try (pairs.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        var base: [(String, JSONValue)] = [("task_type", .string("dpo")), ("train_file", .string(data)), ("max_steps", .int(4)),
                                           ("learning_rate", .double(5e-3)), ("beta", .double(0.1))]
        if withEval { base += [("eval_file", .string(data)), ("eval_strategy", .string("steps")), ("eval_steps", .int(2))] }
        var merged = base
        for (k, v) in extra {
            if let i = merged.firstIndex(where: { $0.0 == k }) { merged[i].1 = v } else { merged.append((k, v)) }
        }
        return try TrainerFixture.config(output: output, merged)
    }

    static func logEntries(_ dir: String) throws -> [JSONValue] {
        try String(contentsOfFile: dir + "/trainer_log.jsonl", encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
    }

    @Test func logsTRLMetricsAndEvaluates() throws {
        let out = try trainerTempDir() + "/run"
        var notes: [String] = []
        let trainer = try Trainer(config: try Self.config(output: out, [("report_to", .string("tensorboard"))], withEval: true)) {
            if case .note(let n) = $0 { notes.append(n) }
        }
        _ = try trainer.train()
        #expect(notes.contains { $0.contains("8 preference pairs") })
        #expect(notes.contains { $0.contains("dpo: the reference is the base model") })
        let entries = try Self.logEntries(out)
        let steps = entries.filter { $0["loss"] != nil }
        #expect(steps.count == 4)
        for key in ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"] {
            #expect(steps.allSatisfy { $0[key] != nil }, "\(key) logged every step")
        }
        // Step 1: the policy is the reference (the new adapter is zero): rewards exactly 0, a tie.
        if case let .number(r, _)? = steps[0]["rewards/chosen"], case let .number(a, _)? = steps[0]["rewards/accuracies"] {
            #expect(r == 0 && a == 0)
        }
        let evals = entries.filter { $0["eval_loss"] != nil }
        #expect(evals.count == 2)
        #expect(evals.allSatisfy { $0["eval_rewards/accuracies"] != nil && $0["eval_token_accuracy"] == nil })
        // TensorBoard: the same values under transformers' tags (train/…, eval/…).
        let runs = out + "/runs"
        let folder = try #require(try FileManager.default.contentsOfDirectory(atPath: runs).first)
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: runs + "/" + folder).first { $0.hasPrefix("events.out.tfevents") })
        let bytes = try fileBytes(runs + "/" + folder + "/" + file)
        for tag in ["train/rewards/chosen", "train/rewards/accuracies", "train/logps/rejected", "eval/rewards/margins"] {
            #expect(bytes.range(of: Data(tag.utf8)) != nil, "TensorBoard tag \(tag)")
        }
    }

    @Test func resumeIsBitIdentical() throws {
        for mode in ["lora", "full"] {
            let straight = try trainerTempDir() + "/run"
            _ = try Trainer(config: try Self.config(output: straight, [("train_mode", .string(mode))])).train()
            let split = try trainerTempDir() + "/run"
            var steps = 0
            let first = try Trainer(config: try Self.config(output: split, [("train_mode", .string(mode)), ("save_steps", .int(100))])) { e in
                if case .step = e { steps += 1 }
            }
            _ = try first.train(shouldStop: { steps >= 2 })
            _ = try Trainer(config: try Self.config(output: split, [("train_mode", .string(mode)), ("resume_from_checkpoint", .bool(true))])).train()
            let a = try Self.logEntries(straight).filter { $0["loss"] != nil }.map { [$0["loss"], $0["rewards/margins"]] }
            let b = try Self.logEntries(split).filter { $0["loss"] != nil }.map { [$0["loss"], $0["rewards/margins"]] }
            #expect(a.count == 4 && a == b, "\(mode): logged losses and margins of the resumed run")
            let weights = mode == "lora" ? "/adapter_model.safetensors" : "/model.safetensors"
            #expect(try fileBytes(straight + weights) == fileBytes(split + weights), "\(mode): final weights")
        }
    }

    /// adapter_name_or_path: the reference is that adapter, frozen (TRL's "ref" copy), so step 1
    /// scores the policy against itself (rewards exactly 0) although the adapter is not zero.
    @Test func continuedAdapterIsTheReference() throws {
        let first = try trainerTempDir() + "/run"
        _ = try Trainer(config: try Self.config(output: first)).train()
        let out = try trainerTempDir() + "/run"
        var notes: [String] = []
        _ = try Trainer(config: try Self.config(output: out, [("adapter_name_or_path", .string(first))])) {
            if case .note(let n) = $0 { notes.append(n) }
        }.train()
        #expect(notes.contains { $0.contains("starting adapter, frozen") })
        let steps = try Self.logEntries(out).filter { $0["loss"] != nil }
        if case let .number(m, _)? = steps.first?["rewards/margins"] { #expect(m == 0) } else { Issue.record("no rewards/margins") }
        if case let .number(l, _)? = steps.first?["loss"] { #expect(abs(l - log(2.0)) < 1e-12) }
    }

    @Test func packingAndTrainOnPromptAreRefused() throws {
        let out = try trainerTempDir() + "/run"
        #expect(throws: TrainingError.self) { _ = try Self.config(output: out, [("packing", .bool(true))]) }
        #expect(throws: TrainingError.self) { _ = try Self.config(output: out, [("train_on_prompt", .bool(true))]) }
        #expect(throws: TrainingError.self) { _ = try Self.config(output: out, [("loss_type", .string("kto"))]) }
        do {
            _ = try Self.config(output: out, [("packing", .bool(true))])
        } catch {
            #expect("\(error)".contains("packing") && "\(error)".contains("dpo"))
        }
    }
}
