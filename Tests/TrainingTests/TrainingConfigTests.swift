import Foundation
import Testing
@testable import Training
import TestSupport

private let configFixtures = fixtureURL("configs").path
private let repoConfigs = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Configs").path

/// The message of the TrainingError `body` throws (fails the test if it throws none or another).
private func message(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        Issue.record("expected an error")
    } catch let e as TrainingError {
        return e.description
    } catch {
        Issue.record("unexpected error type: \(error)")
    }
    return ""
}

private let minimal: [(String, JSONValue)] = [
    ("model_name_or_path", .string("m")), ("train_file", .string("d.jsonl")), ("output_dir", .string("out")),
]

private func parse(_ extra: [(String, JSONValue)], overrides: [String] = []) throws -> TrainingConfig {
    try TrainingConfig.parse(.object(minimal + extra), source: "test.json",
                             overrides: TrainingConfig.parseOverrides(overrides), baseDirectory: configFixtures)
}

@Suite struct TrainingConfigTests {
    @Test func defaultsAreTransformersAndFireflys() throws {
        let c = try parse([])
        #expect(c.learningRate == 5e-5 && c.numTrainEpochs == 3 && c.maxSteps == -1)
        #expect(c.perDeviceTrainBatchSize == 8 && c.gradientAccumulationSteps == 1 && c.seed == 42)
        #expect(c.lrSchedulerType == .linear && c.warmupSteps == 0 && c.maxGradNorm == 1)
        #expect(c.adamW == AdamWHyperparameters(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0))
        #expect(c.loggingSteps == 500 && c.saveSteps == 500 && c.reportTo.isEmpty)
        #expect(c.trainMode == .qlora && c.loraRank == 64 && c.loraAlpha == 16 && c.loraDropout == 0.05)
        #expect(c.resolvedLoraTargetModules == TrainingConfig.loraModules)
        #expect(c.shuffle && !c.trainOnPrompt && !c.packing && c.onBadRecord == "error")
        #expect(c.resumeFromCheckpoint == .no && c.deepspeed == nil)
    }

    @Test func everyShippedConfigParses() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoConfigs).filter { $0.hasSuffix(".json") }.sorted()
        #expect(files.count >= 9)
        for f in files {
            let c = try TrainingConfig.load(path: repoConfigs + "/" + f)
            #expect(c.outputDir.contains(f.replacingOccurrences(of: ".json", with: "")), "\(f)")
            let steps = c.totalOptimizerSteps(batchesPerEpoch: 1000)
            _ = try c.learningRateScheduler(totalSteps: steps)
            // The printed config loads again and means the same.
            let again = try TrainingConfig.parse(try JSONValue.parse(c.resolvedJSON().prettyText), baseDirectory: repoConfigs)
            #expect(again.resolvedJSON() == c.resolvedJSON(), "\(f) does not round-trip")
        }
        let q = try TrainingConfig.load(path: repoConfigs + "/qwen2.5-14b-lora.json")
        #expect(q.deepspeed?.zeroStage == 3 && q.deepspeed?.offloadOptimizer == .cpu && q.deepspeed?.offloadParam == .cpu)
    }

    /// Firefly's QLoRA train_args (seed 004) as published.
    @Test func fireflySeedConfig() throws {
        let c = try TrainingConfig.load(path: configFixtures + "/seed004-firefly-qwen1.5-14b-sft-qlora.json")
        #expect(c.trainMode == .qlora && c.templateName == "qwen" && c.optim == "paged_adamw_32bit")
        #expect(c.lrSchedulerType == .constantWithWarmup && c.warmupSteps == 3000 && c.maxGradNorm == 0.3)
        #expect(c.loraRank == 64 && c.fp16 && c.reportTo == ["tensorboard"] && c.disableTqdm == false)
        #expect(c.ignoredKeys.map(\.0).sorted() == ["dataloader_num_workers", "remove_unused_columns"])
        let s = try c.learningRateScheduler(totalSteps: 10_000)
        #expect(s.learningRate(afterSteps: 1500) == 1e-4 * (1500.0 / 3000.0))
    }

    /// transformers TrainingArguments + seed 000's DeepSpeed ZeRO-3 offload file with "auto"s.
    @Test func deepSpeedSeedConfig() throws {
        let c = try TrainingConfig.load(path: configFixtures + "/seed000-train-args.json")
        #expect(c.evalStrategy == .steps && c.loadBestModelAtEnd && c.resumeFromCheckpoint == .latest)
        #expect(c.loraRank == 8 && c.resolvedLoraTargetModules == ["q_proj", "k_proj", "v_proj", "o_proj"])
        #expect(c.notes.contains { $0.contains("evaluation_strategy") })
        let ds = try #require(c.deepspeed)
        #expect(ds.zeroStage == 3 && ds.offloadOptimizer == .cpu && ds.offloadParam == .cpu)
        #expect(ds.trainMicroBatchSizePerGPU == 2 && ds.gradientAccumulationSteps == 8 && ds.trainBatchSize == 16)
        #expect(ds.resolved["train_batch_size"] == .int(16) && ds.resolved["optimizer"]?["params"]?["lr"] == .double(1e-4))
        #expect(ds.optimizer?.weightDecay == 0.01 && ds.gradientClipping == 1)
        let total = c.totalOptimizerSteps(batchesPerEpoch: 100)   // ceil(100 / 8) = 13 per epoch, 3 epochs
        #expect(total == 39)
        let s = try c.learningRateScheduler(totalSteps: total)
        #expect(s.schedule == .deepSpeedWarmupDecay(DeepSpeedWarmup(minLR: 0, maxLR: 1e-4, warmupSteps: 50, kind: .log), totalSteps: 39))
        #expect(s.learningRate(afterSteps: 0) == 0 && s.learningRate(afterSteps: 1) == 0)
        #expect(s.learningRate(afterSteps: 2) == 0 + 1e-4 * ((1.0 / log(50.0)) * log(2.0)))
        let fin = try ds.finalized(totalSteps: total, warmupSteps: c.warmupSteps(totalSteps: total))
        #expect(fin.resolved["scheduler"]?["params"]?["total_num_steps"] == .int(39))
    }

    /// Qwen's finetune.sh command line (seed 001) as overrides, with its ds_config_zero3.json.
    @Test func qwenFinetuneCommandLine() throws {
        let args = ["--model_name_or_path", "Qwen/Qwen2-7B", "--data_path", "example_data.jsonl", "--bf16", "True",
                    "--output_dir", "output_qwen", "--num_train_epochs", "5", "--per_device_train_batch_size", "2",
                    "--per_device_eval_batch_size", "1", "--gradient_accumulation_steps", "8",
                    "--evaluation_strategy", "no", "--save_strategy", "steps", "--save_steps", "10",
                    "--save_total_limit", "10", "--learning_rate", "3e-4", "--weight_decay", "0.01",
                    "--adam_beta2", "0.95", "--warmup_ratio", "0.01", "--lr_scheduler_type", "cosine",
                    "--logging_steps", "1", "--report_to", "none", "--model_max_length", "512",
                    "--lazy_preprocess", "True", "--use_lora", "False", "--q_lora", "False",
                    "--gradient_checkpointing", "--deepspeed", "qwen-ds_config_zero3.json"]
        let c = try TrainingConfig.parse(.object([]), overrides: TrainingConfig.parseOverrides(args), baseDirectory: configFixtures)
        #expect(c.trainMode == .full && c.trainFile == "example_data.jsonl" && c.maxSeqLength == 512)
        #expect(c.bf16 && c.gradientCheckpointing && c.adamW.beta2 == 0.95 && c.warmupRatio == 0.01)
        let ds = try #require(c.deepspeed)
        #expect(ds.resolved["bf16"]?["enabled"] == .bool(true) && ds.resolved["fp16"]?["enabled"] == .bool(false))
        #expect(ds.optimizer?.betas.0 == 0.9 && ds.optimizer?.betas.1 == 0.95 && ds.gradientClipping == 1.0)
        let total = c.totalOptimizerSteps(batchesPerEpoch: 250)   // 32 per epoch, 5 epochs
        let s = try c.learningRateScheduler(totalSteps: total)
        #expect(s.schedule == .deepSpeedWarmup(DeepSpeedWarmup(minLR: 0, maxLR: 3e-4, warmupSteps: 2, kind: .log)))
    }

    @Test func deepSpeedWarmupCosine() throws {
        let sched: JSONValue = .object([("scheduler", .object([("type", .string("WarmupCosineLR")), ("params", .object([
            ("warmup_min_ratio", .double(0.1)), ("cos_min_ratio", .double(0.05)), ("warmup_num_steps", .string("auto")),
            ("total_num_steps", .string("auto")), ("warmup_type", .string("linear"))]))]))])
        let c = try parse([("deepspeed", sched), ("learning_rate", .double(2e-4)), ("warmup_steps", .int(4))])
        let s = try c.learningRateScheduler(totalSteps: 20)
        #expect(s.schedule == .deepSpeedWarmupCosine(DeepSpeedWarmupCosine(totalSteps: 20, warmupMinRatio: 0.1, warmupSteps: 4, cosMinRatio: 0.05, kind: .linear)))
        #expect(s.baseLR == 2e-4 && s.learningRate(afterSteps: 0) == 0)
    }

    @Test func llamaFactoryConfigs() throws {
        let lora = try TrainingConfig.load(path: configFixtures + "/llamafactory-qwen2-7b-lora-sft.json")
        #expect(lora.trainMode == .lora && lora.loraTargetModules == ["all-linear"] && lora.maxSeqLength == 1024)
        #expect(lora.templateName == "qwen" && lora.trainFile == "data/qwen_train_data.jsonl" && lora.taskType == "sft")
        #expect(lora.warmupSteps(totalSteps: 95) == 10)
        let q = try TrainingConfig.load(path: configFixtures + "/llamafactory-qwen2-7b-qlora-sft.json")
        #expect(q.trainMode == .qlora)
        let seed2 = try TrainingConfig.load(path: configFixtures + "/seed002-self-llm-qwen2.5-7b-lora.json")
        #expect(seed2.trainMode == .lora && seed2.loraAlpha == 32 && seed2.ignoredKeys.map(\.0) == ["save_on_each_node"])
    }

    @Test func overridesAreTypedByKey() throws {
        let c = try parse([("learning_rate", .double(1e-3))],
                          overrides: ["--learning_rate", "2e-4", "--max_steps=7", "--packing", "--shuffle", "false",
                                      "--lora_target_modules", "q_proj, v_proj", "--resume_from_checkpoint", "out/checkpoint-5",
                                      "--lr_scheduler_type", "cosine_with_min_lr", "--lr_scheduler_kwargs", "{\"min_lr_rate\": 0.1}",
                                      "--deepspeed", "{\"zero_optimization\": {\"stage\": 2}}", "--eval_file", "null"])
        #expect(c.learningRate == 2e-4 && c.maxSteps == 7 && c.packing && !c.shuffle)
        #expect(c.loraTargetModules == ["q_proj", "v_proj"] && c.resumeFromCheckpoint == .path("out/checkpoint-5"))
        #expect(c.lrSchedulerKwargs.minLRRate == 0.1 && c.deepspeed?.zeroStage == 2 && c.evalFile == nil)
        let r = try parse([], overrides: ["--resume_from_checkpoint", "true"])
        #expect(r.resumeFromCheckpoint == .latest)
    }

    @Test func resolvedConfigPrintsEveryKeyInOrder() throws {
        let c = try parse([("learning_rate", .double(2e-5)), ("dataloader_num_workers", .int(4))])
        let text = c.resolvedJSON().prettyText
        #expect(text.hasPrefix("{\n  \"model_name_or_path\": \"m\",\n  \"output_dir\": \"out\","))
        #expect(text.contains("\"learning_rate\": 2e-05") && text.contains("\"dataloader_num_workers\": 4"))
        guard case let .object(pairs) = c.resolvedJSON() else { Issue.record("not an object"); return }
        #expect(pairs.count == ConfigKeys.all.count + 1)
    }

    @Test func stepIntervalsAsTransformers() throws {
        let c = try parse([("logging_steps", .double(0.1)), ("save_steps", .int(25)),
                           ("eval_file", .string("e.jsonl")), ("eval_strategy", .string("steps"))])
        #expect(c.interval(.logging, totalSteps: 95) == 10 && c.interval(.saving, totalSteps: 95) == 25)
        #expect(c.interval(.evaluation, totalSteps: 95) == 10)   // eval_steps falls back to logging_steps
        let d = try parse([("save_strategy", .string("epoch"))])
        #expect(d.interval(.saving, totalSteps: 10) == nil && d.interval(.evaluation, totalSteps: 10) == nil)
        #expect(message { try parse([("logging_steps", .double(7.5))]) }.contains("logging_steps"))
    }

    // MARK: bad input

    @Test func unknownKeySuggestsClosest() {
        let m = message { try parse([("learning_rat", .double(1e-4))]) }
        #expect(m.contains("test.json") && m.contains("unknown key \"learning_rat\"") && m.contains("Did you mean \"learning_rate\"?"))
        #expect(!m.contains("line"))
        let m2 = message { try parse([("per_device_batch_size", .int(2))]) }
        #expect(m2.contains("Did you mean \"per_device_train_batch_size\"?") || m2.contains("per_device_eval_batch_size"))
        let m3 = message { try parse([("zzzzqqq", .int(2))]) }
        #expect(m3.contains("unknown key \"zzzzqqq\"") && !m3.contains("Did you mean"))
    }

    @Test func wrongTypesNameTheKey() {
        let m = message { try parse([("per_device_train_batch_size", .string("4"))]) }
        #expect(m.contains("\"per_device_train_batch_size\" must be an integer, got the string \"4\""))
        #expect(message { try parse([("gradient_accumulation_steps", .double(1.5))]) }.contains("gradient_accumulation_steps"))
        #expect(message { try parse([("gradient_checkpointing", .string("true"))]) }.contains("must be true or false"))
        #expect(message { try parse([("learning_rate", .null)]) }.contains("\"learning_rate\" must be a number, got null"))
        #expect(message { try parse([("lora_target_modules", .int(3))]) }.contains("lora_target_modules"))
        #expect(message { try parse([("deepspeed", .bool(true))]) }.contains("\"deepspeed\" must be a path"))
    }

    @Test func recomputeNumLayers() throws {
        #expect(try parse([]).recomputeNumLayers == nil)
        let c = try parse([("gradient_checkpointing", .bool(true)), ("recompute_num_layers", .int(10))])
        #expect(c.recomputeNumLayers == 10)
        #expect(try parse([("gradient_checkpointing", .bool(true))], overrides: ["--recompute_num_layers", "0"]).recomputeNumLayers == 0)
        let negative = message { try parse([("gradient_checkpointing", .bool(true)), ("recompute_num_layers", .int(-1))]) }
        #expect(negative.contains("test.json") && negative.contains("\"recompute_num_layers\"") && negative.contains("must be ≥ 0")
                && negative.contains("got -1"))
        let off = message { try parse([("recompute_num_layers", .int(4))]) }
        #expect(off.contains("\"recompute_num_layers\"") && off.contains("gradient_checkpointing is false"))
        #expect(message { try parse([("gradient_checkpointing", .bool(true)), ("recompute_num_layers", .double(2.5))]) }
            .contains("\"recompute_num_layers\" must be an integer"))
    }

    @Test func badValuesNameTheKey() throws {
        let m = message { try parse([("lr_scheduler_type", .string("cosin"))]) }
        #expect(m.contains("lr_scheduler_type") && m.contains("Did you mean \"cosine\"?"))
        #expect(message { try parse([("train_mode", .string("qlor"))]) }.contains("Did you mean \"qlora\"?"))
        #expect(message { try parse([("on_bad_record", .string("ignore"))]) }.contains("on_bad_record"))
        #expect(message { try parse([("optim", .string("adamw_8bit"))]) }.contains("optim"))
        #expect(message { try parse([("lora_target_modules", .string("q_prj"))]) }.contains("Did you mean \"q_proj\"?"))
        #expect(message { try parse([("report_to", .string("wandb"))]) }.contains("report_to"))
        #expect(message { try parse([("per_device_train_batch_size", .int(0))]) }.contains("at least 1"))
        #expect(message { try parse([("warmup_ratio", .double(1.5))]) }.contains("warmup_ratio"))
        #expect(message { try parse([("bf16", .bool(true)), ("fp16", .bool(true))]) }.contains("choose one"))
        #expect(message { try parse([("eval_strategy", .string("steps"))]) }.contains("eval_file"))
        #expect(message { try parse([("lr_scheduler_type", .string("cosine_with_min_lr"))]) }.contains("min_lr"))
        #expect(message { try parse([("lr_scheduler_kwargs", .object([("min_lr_rat", .double(0.1))]))]) }.contains("Did you mean \"min_lr_rate\"?"))
        #expect(message { try parse([("train_mode", .string("full")), ("use_lora", .bool(true))]) }.contains("train_mode"))
        #expect(message { try parse([("quantization_bit", .int(8))]) }.contains("quantization_bit"))
        #expect(message { try parse([("lora_r", .int(8)), ("lora_rank", .int(16))]) }.contains("\"lora_r\" also sets"))
        #expect(try parse([("lora_r", .int(8))], overrides: ["--lora_rank", "16"]).loraRank == 16)
        #expect(message { try TrainingConfig.parse(.object(Array(minimal.dropLast()))) }.contains("\"output_dir\": is required"))
    }

    @Test func badOverridesNameTheArgument() {
        #expect(message { try TrainingConfig.parseOverrides(["--learning_rate"]) }.contains("has no value"))
        #expect(message { try TrainingConfig.parseOverrides(["learning_rate", "1"]) }.contains("expected --KEY VALUE"))
        #expect(message { try parse([], overrides: ["--learning_rate", "fast"]) }.contains("learning_rate must be a number"))
        #expect(message { try parse([], overrides: ["--max_steps", "1.5"]) }.contains("max_steps must be an integer"))
        #expect(message { try parse([], overrides: ["--packing", "maybe"]) }.contains("packing must be true or false"))
        let m = message { try parse([], overrides: ["--lerning_rate", "1e-4"]) }
        #expect(m.contains("command line") && m.contains("Did you mean \"learning_rate\"?"))
    }

    @Test func deepSpeedProblemsNameTheKeys() {
        let clip: JSONValue = .object([("gradient_clipping", .double(1.0))])
        let m = message { try parse([("max_grad_norm", .double(0.3)), ("deepspeed", clip)]) }
        #expect(m.contains("gradient_clipping=1") && m.contains("max_grad_norm=0.3"))
        let stage: JSONValue = .object([("zero_optimization", .object([("stage", .int(5))]))])
        #expect(message { try parse([("deepspeed", stage)]) }.contains("zero_optimization.stage"))
        let sched: JSONValue = .object([("scheduler", .object([("type", .string("OneCycle"))]))])
        #expect(message { try parse([("deepspeed", sched)]) }.contains("OneCycle"))
        #expect(message { try parse([("deepspeed", .string("missing.json"))]) }.contains("missing.json"))
        let off: JSONValue = .object([("zero_optimization", .object([("offload_param", .object([("device", .string("gpu"))]))]))])
        #expect(message { try parse([("deepspeed", off)]) }.contains("offload_param.device"))
    }

    @Test func unreadableFilesNameThePath() throws {
        let dir = try Scratch.folder("qwenft-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.json").path
        try "{\n  \"learning_rate\": 1e-4,\n  \"seed\": 1,\n}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let m = message { try TrainingConfig.load(path: bad) }
        #expect(m.contains(bad) && m.contains("line 4"))
        let dup = dir.appendingPathComponent("dup.json").path
        try "{\"seed\": 1, \"seed\": 2}".write(toFile: dup, atomically: true, encoding: .utf8)
        #expect(message { try TrainingConfig.load(path: dup) }.contains("duplicate key \"seed\""))
        #expect(message { try TrainingConfig.load(path: dir.appendingPathComponent("none.json").path) }.contains("none.json"))
        let arr = dir.appendingPathComponent("arr.json").path
        try "[1, 2]".write(toFile: arr, atomically: true, encoding: .utf8)
        #expect(message { try TrainingConfig.load(path: arr) }.contains("a JSON object of keys"))
    }
}
