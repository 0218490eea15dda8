import Foundation
import QwenCore

extension TrainingConfig {
    /// Builds the typed fields from type-checked values (every key present, in table order).
    init(values: [(String, JSONValue)], ignored: [(String, JSONValue)], notes: [String]) throws {
        var map: [String: JSONValue] = [:]
        for (k, v) in values { map[k] = v }
        func str(_ k: String) -> String? { if case let .string(s) = map[k] { return s }; return nil }
        func num(_ k: String) -> Double? { map[k]?.doubleValue }
        func int(_ k: String) -> Int? { num(k).map { Int($0) } }
        func bool(_ k: String) -> Bool? { if case let .bool(b) = map[k] { return b }; return nil }
        func list(_ k: String) -> [String] {
            if case let .array(items) = map[k] { return items.compactMap { if case let .string(s) = $0 { return s }; return nil } }
            return []
        }
        func required(_ k: String) throws -> String {
            guard let s = str(k), !s.isEmpty else {
                throw TrainingError.badConfigValue(key: k, source: "config", message: "is required; add \"\(k)\": \"…\" to the config or --\(k) on the command line")
            }
            return s
        }
        modelNameOrPath = try required("model_name_or_path")
        outputDir = try required("output_dir")
        trainFile = try required("train_file")
        evalFile = str("eval_file").flatMap { $0.isEmpty ? nil : $0 }   // Firefly's default is ""
        templateName = str("template_name")
        trainMode = TrainMode(rawValue: str("train_mode") ?? "qlora") ?? .qlora
        taskType = str("task_type") ?? "sft"
        maxSeqLength = int("max_seq_length") ?? 1024
        adapterNameOrPath = str("adapter_name_or_path")
        trainOnPrompt = bool("train_on_prompt") ?? false
        packing = bool("packing") ?? false
        groupByLength = bool("group_by_length") ?? false
        shuffle = bool("shuffle") ?? true
        onBadRecord = str("on_bad_record") ?? "error"
        tokenizeNumWorkers = int("tokenize_num_workers")
        numTrainEpochs = num("num_train_epochs") ?? 3
        maxSteps = int("max_steps") ?? -1
        perDeviceTrainBatchSize = int("per_device_train_batch_size") ?? 8
        perDeviceEvalBatchSize = int("per_device_eval_batch_size") ?? 8
        gradientAccumulationSteps = int("gradient_accumulation_steps") ?? 1
        seed = int("seed") ?? 42
        dataSeed = int("data_seed")
        learningRate = num("learning_rate") ?? 5e-5
        lrSchedulerType = LRSchedulerType(rawValue: str("lr_scheduler_type") ?? "linear") ?? .linear
        lrSchedulerKwargs = LRSchedulerKwargs()
        warmupSteps = num("warmup_steps") ?? 0
        warmupRatio = num("warmup_ratio") ?? 0
        adamW = AdamWHyperparameters(beta1: num("adam_beta1") ?? 0.9, beta2: num("adam_beta2") ?? 0.999,
                                     eps: num("adam_epsilon") ?? 1e-8, weightDecay: num("weight_decay") ?? 0)
        optim = str("optim") ?? "adamw_torch"
        maxGradNorm = num("max_grad_norm") ?? 1
        bf16 = bool("bf16") ?? false
        fp16 = bool("fp16") ?? false
        gradientCheckpointing = bool("gradient_checkpointing") ?? false
        recomputeNumLayers = int("recompute_num_layers")
        do { device = try Device(parsing: str("device") ?? "cpu") } catch {
            throw TrainingError.badConfigValue(key: "device", source: "config", message: "\(error)")
        }
        loraRank = int("lora_rank") ?? 64
        loraAlpha = num("lora_alpha") ?? 16
        loraDropout = num("lora_dropout") ?? 0.05
        loraTargetModules = list("lora_target_modules")
        useRSLoRA = bool("use_rslora") ?? false
        loggingSteps = num("logging_steps") ?? 500
        loggingFirstStep = bool("logging_first_step") ?? false
        loggingDir = str("logging_dir")
        reportTo = list("report_to")
        disableTqdm = bool("disable_tqdm")
        evalStrategy = Strategy(rawValue: str("eval_strategy") ?? "no") ?? .no
        evalSteps = num("eval_steps")
        saveStrategy = Strategy(rawValue: str("save_strategy") ?? "steps") ?? .steps
        saveSteps = num("save_steps") ?? 500
        saveTotalLimit = int("save_total_limit")
        saveOnlyModel = bool("save_only_model") ?? false
        loadBestModelAtEnd = bool("load_best_model_at_end") ?? false
        metricForBestModel = str("metric_for_best_model")
        greaterIsBetter = bool("greater_is_better")
        overwriteOutputDir = bool("overwrite_output_dir") ?? false
        zeroStage = int("zero_stage")
        ddpTimeout = num("ddp_timeout") ?? 1800
        beta = num("beta") ?? 0.1
        lossType = str("loss_type") ?? "sigmoid"
        maxPromptLength = int("max_prompt_length")
        precomputeRefLogProbs = bool("precompute_ref_log_probs") ?? false
        disableDropout = bool("disable_dropout") ?? true
        rpoAlpha = num("rpo_alpha")
        switch map["resume_from_checkpoint"] {
        case .bool(true)?: resumeFromCheckpoint = .latest
        case let .string(p)?: resumeFromCheckpoint = p.isEmpty ? .no : .path(p)
        default: resumeFromCheckpoint = .no
        }
        deepspeed = nil
        self.values = values
        self.ignoredKeys = ignored
        self.notes = notes
    }

    /// Range and consistency checks, each naming its key; normalises report_to and the LoRA
    /// target list in `values` so the printed config shows what runs.
    mutating func validate(sources: [String: String]) throws {
        func fail(_ key: String, _ message: String) -> TrainingError {
            .badConfigValue(key: key, source: sources[key] ?? "config", message: message)
        }
        func positive(_ key: String, _ v: Int) throws { if v < 1 { throw fail(key, "must be at least 1, got \(v)") } }
        try positive("per_device_train_batch_size", perDeviceTrainBatchSize)
        try positive("per_device_eval_batch_size", perDeviceEvalBatchSize)
        try positive("gradient_accumulation_steps", gradientAccumulationSteps)
        if let z = zeroStage, !(0...3).contains(z) { throw fail("zero_stage", "must be 0, 1, 2 or 3, got \(z)") }
        if !(ddpTimeout > 0) { throw fail("ddp_timeout", "must be a positive number of seconds, got \(ddpTimeout)") }
        try positive("lora_rank", loraRank)
        if maxSeqLength < 2 { throw fail("max_seq_length", "must be at least 2 (one input and one target token), got \(maxSeqLength)") }
        if maxSteps <= 0 && !(numTrainEpochs > 0) {
            throw fail("num_train_epochs", "must be > 0 when max_steps is not set, got \(numTrainEpochs)")
        }
        if maxSteps == 0 || maxSteps < -1 { throw fail("max_steps", "must be a positive step count or -1 (use num_train_epochs), got \(maxSteps)") }
        if !(learningRate >= 0) { throw fail("learning_rate", "must be ≥ 0, got \(learningRate)") }
        if !(warmupSteps >= 0) { throw fail("warmup_steps", "must be ≥ 0 (a count, or a ratio below 1), got \(warmupSteps)") }
        if !(0 ... 1).contains(warmupRatio) { throw fail("warmup_ratio", "must be within [0, 1], got \(warmupRatio)") }
        if !(adamW.weightDecay >= 0) { throw fail("weight_decay", "must be ≥ 0, got \(adamW.weightDecay)") }
        if !(0 ..< 1).contains(adamW.beta1) { throw fail("adam_beta1", "must be within [0, 1), got \(adamW.beta1)") }
        if !(0 ..< 1).contains(adamW.beta2) { throw fail("adam_beta2", "must be within [0, 1), got \(adamW.beta2)") }
        if !(adamW.eps > 0) { throw fail("adam_epsilon", "must be > 0, got \(adamW.eps)") }
        if !(maxGradNorm >= 0) { throw fail("max_grad_norm", "must be ≥ 0 (0 turns clipping off), got \(maxGradNorm)") }
        if !(0 ..< 1).contains(loraDropout) { throw fail("lora_dropout", "must be within [0, 1), got \(loraDropout)") }
        if !(loraAlpha > 0) { throw fail("lora_alpha", "must be > 0, got \(loraAlpha)") }
        func interval(_ key: String, _ v: Double) throws {
            guard v > 0, v < 1 || v.rounded() == v else {
                throw fail(key, "must be a whole number of steps ≥ 1, or a fraction of the total steps below 1, got \(v)")
            }
        }
        try interval("logging_steps", loggingSteps)
        try interval("save_steps", saveSteps)
        if let e = evalSteps { try interval("eval_steps", e) }
        if let l = saveTotalLimit, l < 1 { throw fail("save_total_limit", "must be at least 1 (or null for no limit), got \(l)") }
        if let w = tokenizeNumWorkers, w < 1 { throw fail("tokenize_num_workers", "must be at least 1, got \(w)") }
        if bf16 && fp16 { throw fail("fp16", "bf16 and fp16 are both true; choose one") }
        if let n = recomputeNumLayers {
            if n < 0 {
                throw fail("recompute_num_layers", "must be ≥ 0 (how many layers, from the first, backward recomputes; null: all), got \(n)")
            }
            if !gradientCheckpointing {
                throw fail("recompute_num_layers", "is \(n) but gradient_checkpointing is false; set gradient_checkpointing to true, or remove recompute_num_layers")
            }
        }
        if evalStrategy != .no && evalFile == nil {
            throw fail("eval_strategy", "is \"\(evalStrategy.rawValue)\" but no eval_file is given; add eval_file or set eval_strategy to \"no\"")
        }
        if loadBestModelAtEnd && evalStrategy == .no {
            throw fail("load_best_model_at_end", "needs evaluation: set eval_strategy (\"steps\" or \"epoch\") and eval_file")
        }
        if loadBestModelAtEnd && saveStrategy != evalStrategy {
            throw fail("load_best_model_at_end", "needs save_strategy equal to eval_strategy (\"\(evalStrategy.rawValue)\"), as transformers requires")
        }
        if taskType == "dpo" {
            if packing { throw fail("packing", "cannot be used with task_type dpo: each preference pair is scored as whole sequences; set packing to false") }
            if trainOnPrompt { throw fail("train_on_prompt", "cannot be used with task_type dpo: DPO scores the responses only; set it to false") }
            if !(beta > 0) { throw fail("beta", "must be > 0, got \(beta)") }
            if let a = rpoAlpha, !(a >= 0) { throw fail("rpo_alpha", "must be ≥ 0 (or null), got \(a)") }
            if let m = maxPromptLength, m < 1 { throw fail("max_prompt_length", "must be at least 1 (or null), got \(m)") }
        }
        if trainMode == .full && adapterNameOrPath != nil {
            throw fail("adapter_name_or_path", "continues a LoRA adapter, but train_mode is \"full\"; use \"lora\" or \"qlora\"")
        }

        // LoRA targets: names from the seven projections, or all-linear (LLaMA-Factory's "all").
        var modules: [String] = []
        for m in loraTargetModules {
            let name = m == "all" ? "all-linear" : m
            if name == "all-linear" || Self.loraModules.contains(name) {
                if !modules.contains(name) { modules.append(name) }
                continue
            }
            let hint = closestMatch(to: name, in: Self.loraModules + ["all-linear"]).map { " Did you mean \"\($0)\"?" } ?? ""
            throw fail("lora_target_modules", "\"\(m)\" is not a Qwen2 linear layer (\(Self.loraModules.joined(separator: ", ")) or all-linear).\(hint)")
        }
        if modules.isEmpty { throw fail("lora_target_modules", "is empty; name at least one module or use \"all-linear\"") }
        loraTargetModules = modules.contains("all-linear") ? ["all-linear"] : modules
        setValue("lora_target_modules", loraTargetModules.count == 1 && loraTargetModules[0] == "all-linear"
                 ? .string("all-linear") : .array(loraTargetModules.map(JSONValue.string)))

        // report_to: "none" or "tensorboard" ("all" is every integration we have: tensorboard).
        var reporters: [String] = []
        for r in reportTo {
            switch r {
            case "none": continue
            case "tensorboard", "all": if !reporters.contains("tensorboard") { reporters.append("tensorboard") }
            default:
                throw fail("report_to", "\"\(r)\" is not available; qwenft writes TensorBoard event files (\"tensorboard\") "
                    + "and output_dir/trainer_log.jsonl always. Use \"tensorboard\" or \"none\".")
            }
        }
        reportTo = reporters
        setValue("report_to", reporters.isEmpty ? .string("none") : .array(reporters.map(JSONValue.string)))

        // lr_scheduler_kwargs: the keys the schedules take, numbers only.
        var kw = LRSchedulerKwargs()
        if case let .object(pairs)? = values.first(where: { $0.0 == "lr_scheduler_kwargs" })?.1 {
            for (k, v) in pairs {
                guard let x = v.doubleValue else {
                    throw TrainingError.wrongConfigType(key: "lr_scheduler_kwargs.\(k)", source: sources["lr_scheduler_kwargs"] ?? "config",
                                                        expected: "a number", got: v.kindName)
                }
                switch k {
                case "num_cycles": kw.numCycles = x
                case "min_lr": kw.minLR = x
                case "min_lr_rate": kw.minLRRate = x
                case "warmup_lr_rate": kw.warmupLRRate = x
                default:
                    let hint = closestMatch(to: k, in: ["num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"]).map { " Did you mean \"\($0)\"?" } ?? ""
                    throw fail("lr_scheduler_kwargs", "unknown key \"\(k)\".\(hint)")
                }
            }
        }
        lrSchedulerKwargs = kw
        // The schedule must be buildable now, not after an hour of tokenising.
        _ = try LRSchedule.transformers(lrSchedulerType, warmupSteps: 0, totalSteps: 1, baseLR: max(learningRate, 1e-30), kwargs: kw)
    }

    mutating func setValue(_ key: String, _ v: JSONValue) {
        if let i = values.firstIndex(where: { $0.0 == key }) { values[i].1 = v }
    }

    static func loadDeepSpeed(_ v: JSONValue, source: String, baseDirectory: String?, config c: TrainingConfig,
                              worldSize: Int) throws -> DeepSpeedSettings {
        var raw = v
        var dsSource = "deepspeed (inline)"
        if case let .string(path) = v {
            let full = path.hasPrefix("/") || baseDirectory == nil ? path : baseDirectory! + "/" + path
            let resolvedPath = FileManager.default.fileExists(atPath: full) ? full : path
            guard let text = try? String(contentsOfFile: resolvedPath, encoding: .utf8) else {
                throw TrainingError.badConfigValue(key: "deepspeed", source: source,
                                                   message: "cannot read the DeepSpeed config \"\(path)\" (looked at \(full)); check the path")
            }
            do { raw = try JSONValue.parse(text) } catch {
                throw TrainingError.unreadableConfig(path: resolvedPath, message: "the DeepSpeed config is not valid JSON at \(error)")
            }
            dsSource = resolvedPath
        }
        let args = DeepSpeedSettings.Arguments(
            microBatchSize: c.perDeviceTrainBatchSize, gradientAccumulationSteps: c.gradientAccumulationSteps,
            worldSize: worldSize, maxGradNorm: c.maxGradNorm, learningRate: c.learningRate,
            beta1: c.adamW.beta1, beta2: c.adamW.beta2, eps: c.adamW.eps, weightDecay: c.adamW.weightDecay,
            fp16: c.fp16, bf16: c.bf16)
        return try DeepSpeedSettings.resolve(raw, source: dsSource, args: args)
    }
}
