import Foundation
import Qwen2
import QwenCore
import SafeTensors
import Testing
import Tokenizer
@testable import Training

/// NaN or Inf in the loss or the gradients: the step is skipped with a warning and the adapter is
/// left as it was; three such steps in a row stop the run with the step number.
/// The NaN comes from the model itself: an untied tiny model whose embedding row of one word is
/// NaN, so exactly the steps whose batch holds that word go bad.
@Suite(.serialized) struct NonFiniteStepTests {
    static let poisonedWord = " zebra"

    /// An untied `tiny` model with NaN in the embedding rows of `word`'s tokens, and a pretraining
    /// dataset of `texts` (one per step with batch size 1 and no shuffling).
    static func setup(texts: [String], poison word: String) throws -> (model: String, data: String) {
        let dir = try trainerTempDir()
        let model = dir + "/tiny-untied"
        var config = Qwen2Preset.tiny.config
        config.tieWordEmbeddings = false
        try initializeModelFolder(config: config, tokenizer: try trainerVocabulary(), out: model, seed: 11)
        let ids = try Tokenizer(modelFolder: model).encode(word)
        #expect(!ids.isEmpty)
        let path = model + "/model.safetensors"
        let file = try SafeTensorsFile(path: path)
        var tensors: [TensorToWrite] = []
        for view in file.tensors {
            guard view.name == "model.embed_tokens.weight" else {
                tensors.append(TensorToWrite(copying: view))
                continue
            }
            var table = try view.floats()
            let C = config.hiddenSize
            for id in ids { for c in 0..<C { table[id * C + c] = .nan } }
            tensors.append(TensorToWrite(name: view.name, shape: view.shape, floats: table))
        }
        let staging = path + ".new"
        try SafeTensorsWriter.write(tensors, to: staging)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: staging, toPath: path)
        let data = dir + "/data.jsonl"
        let lines = try texts.map { t -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["text": t]), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        return (model, data)
    }

    static func config(model: String, data: String, output: String, steps: Int) throws -> TrainingConfig {
        try TrainingConfig.parse(.object([
            ("model_name_or_path", .string(model)), ("train_file", .string(data)), ("output_dir", .string(output)),
            ("train_mode", .string("lora")), ("lora_rank", .int(4)), ("lora_alpha", .int(8)), ("lora_dropout", .double(0)),
            ("lora_target_modules", .string("all-linear")), ("task_type", .string("pretrain")),
            ("per_device_train_batch_size", .int(1)), ("gradient_accumulation_steps", .int(1)),
            ("max_steps", .int(steps)), ("learning_rate", .double(1e-2)), ("lr_scheduler_type", .string("constant")),
            ("logging_steps", .int(1)), ("save_strategy", .string("no")), ("shuffle", .bool(false)),
            ("max_seq_length", .int(32)), ("seed", .int(1)),
        ]))
    }

    /// One bad batch among good ones: that step alone is skipped (warning, no update, counted in
    /// the summary), training goes on and the final adapter is finite.
    @Test func aBadStepIsSkippedAndTrainingGoesOn() throws {
        let texts = ["the cat sat on the mat", "a" + Self.poisonedWord + " ran across the field",
                     "birds sing in the morning", "rain falls on the roof"]
        let (model, data) = try Self.setup(texts: texts, poison: Self.poisonedWord)
        let out = try trainerTempDir() + "/run"
        var warnings: [String] = []
        let trainer = try Trainer(config: try Self.config(model: model, data: data, output: out, steps: 4)) { e in
            if case .warning(let w) = e { warnings.append(w) }
        }
        let summary = try trainer.train()
        #expect(summary.globalStep == 4)
        #expect(summary.skippedSteps == 1)
        #expect(warnings.contains { $0.hasPrefix("step 2:") && $0.contains("not finite") && $0.contains("skipped") })
        let adapter = try SafeTensorsFile(path: out + "/adapter_model.safetensors")
        for view in adapter.tensors {
            #expect(try view.floats().allSatisfy(\.isFinite), "\(view.name)")
        }
        // The logged losses are those of the good steps only.
        let losses = try loggedLosses(out)
        let logged = losses.keys.sorted()
        #expect(logged == [1, 3, 4])
        #expect(losses.values.allSatisfy { $0.isFinite })
    }

    /// A skipped step changes nothing: the parameters and AdamW's moments and step count are
    /// bit-identical before and after it.
    @Test func aSkippedStepLeavesParametersAndMomentsUntouched() throws {
        let (model, data) = try Self.setup(texts: ["x"], poison: Self.poisonedWord)
        let trainer = try Trainer(config: try Self.config(model: model, data: data, output: try trainerTempDir() + "/run", steps: 1))
        let state = trainer.state, optimizer = trainer.optimizer
        // A good step first, so AdamW's moments are non-zero.
        let good = try Tokenizer(modelFolder: model).encodeIds("one two three")
        let first = try TrainingStep.run(pass: trainer.pass, optimizer: optimizer,
                                         batches: [TrainingBatch(ids: good, labels: good, B: 1, T: good.count)], lr: 1e-2, maxGradNorm: 1)
        #expect(!first.skipped && optimizer.stepCount == 1)
        let ids = try Tokenizer(modelFolder: model).encodeIds("one" + Self.poisonedWord + " two")
        let batch = TrainingBatch(ids: ids, labels: ids, B: 1, T: ids.count)

        func snapshot() -> [UInt32] {
            [state.params, optimizer.m, optimizer.v].flatMap { b in
                Array(UnsafeBufferPointer(start: b.host, count: b.count)).map(\.bitPattern)
            }
        }
        let params = snapshot()
        let r = try TrainingStep.run(pass: trainer.pass, optimizer: optimizer, batches: [batch], lr: 1e-2, maxGradNorm: 1)
        #expect(r.skipped && !r.loss.isFinite)
        #expect(optimizer.stepCount == 1)
        #expect(snapshot() == params)
    }

    /// Every batch bad: the run stops at step 3 with a clear error naming the step.
    @Test func repeatedBadStepsStopTheRun() throws {
        let texts = (0..<6).map { "line \($0) with a" + Self.poisonedWord }
        let (model, data) = try Self.setup(texts: texts, poison: Self.poisonedWord)
        let out = try trainerTempDir() + "/run"
        var warnings = 0
        let trainer = try Trainer(config: try Self.config(model: model, data: data, output: out, steps: 6)) { e in
            if case .warning = e { warnings += 1 }
        }
        #expect { _ = try trainer.train() } throws: { error in
            let text = "\(error)"
            return text.contains("training stopped at step 3") && text.contains("NaN or Inf")
        }
        #expect(warnings >= 3)
        #expect(!FileManager.default.fileExists(atPath: out + "/adapter_model.safetensors"))
    }
}
