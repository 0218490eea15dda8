import Foundation
import QwenCore

/// A validated training config: `qwenft train --config FILE [--KEY VALUE …]`. Keys are
/// transformers' TrainingArguments / Firefly train_args names (see `ConfigKeys`); unknown keys,
/// wrong types and bad values are errors naming the key (and the closest known one).
public struct TrainingConfig: Sendable {
    public enum TrainMode: String, Sendable { case full, lora, qlora }
    public enum Strategy: String, Sendable { case no, steps, epoch }
    /// `resume_from_checkpoint`: false/absent, true (the latest checkpoint in output_dir), or a path.
    public enum Resume: Sendable, Equatable { case no, latest, path(String) }

    // Model, data, mode.
    public var modelNameOrPath: String
    public var outputDir: String
    public var trainFile: String
    public var evalFile: String?
    public var templateName: String?
    public var trainMode: TrainMode
    public var taskType: String
    public var maxSeqLength: Int
    public var adapterNameOrPath: String?
    public var trainOnPrompt: Bool
    public var packing: Bool
    public var groupByLength: Bool
    public var shuffle: Bool
    /// "error" (stop before training) or "skip" (count, report, continue).
    public var onBadRecord: String
    public var tokenizeNumWorkers: Int?
    // Steps and batches.
    public var numTrainEpochs: Double
    public var maxSteps: Int
    public var perDeviceTrainBatchSize: Int
    public var perDeviceEvalBatchSize: Int
    public var gradientAccumulationSteps: Int
    public var seed: Int
    public var dataSeed: Int?
    // Optimizer and schedule.
    public var learningRate: Double
    public var lrSchedulerType: LRSchedulerType
    public var lrSchedulerKwargs: LRSchedulerKwargs
    public var warmupSteps: Double
    public var warmupRatio: Double
    public var adamW: AdamWHyperparameters
    public var optim: String
    public var maxGradNorm: Double
    // Precision and memory.
    public var bf16: Bool
    public var fp16: Bool
    public var gradientCheckpointing: Bool
    /// With gradient checkpointing: how many layers, from the first, backward recomputes (the
    /// rest keep every activation); nil: all of them.
    public var recomputeNumLayers: Int?
    /// Where the math runs (`device`: cpu, cuda, cuda:N); `Backends.make` gives its backend.
    public var device: Device
    // LoRA.
    public var loraRank: Int
    public var loraAlpha: Double
    public var loraDropout: Double
    /// Module names (q_proj … down_proj), or ["all-linear"].
    public var loraTargetModules: [String]
    public var useRSLoRA: Bool
    // Logging, evaluation, saving.
    public var loggingSteps: Double
    public var loggingFirstStep: Bool
    public var loggingDir: String?
    /// [] or ["tensorboard"].
    public var reportTo: [String]
    public var disableTqdm: Bool?
    public var evalStrategy: Strategy
    public var evalSteps: Double?
    public var saveStrategy: Strategy
    public var saveSteps: Double
    public var saveTotalLimit: Int?
    public var saveOnlyModel: Bool
    public var loadBestModelAtEnd: Bool
    public var metricForBestModel: String?
    public var greaterIsBetter: Bool?
    public var overwriteOutputDir: Bool
    public var resumeFromCheckpoint: Resume
    /// ZeRO stage (0–3) when set without a DeepSpeed file; nil: the DeepSpeed file's, else 0.
    public var zeroStage: Int?
    /// Seconds a collective may wait under mpirun before the job is ended (transformers' ddp_timeout).
    public var ddpTimeout: Double
    /// The DeepSpeed config with "auto" resolved (step counts pending `finalized`), if given.
    public var deepspeed: DeepSpeedSettings?
    // DPO (task_type dpo).
    public var beta: Double
    /// sigmoid, ipo or hinge.
    public var lossType: String
    public var maxPromptLength: Int?
    public var precomputeRefLogProbs: Bool
    /// TRL's disable_dropout (default true): DPO trains with LoRA dropout off.
    public var disableDropout: Bool
    /// RPO: weight of the chosen responses' NLL added to the DPO loss (nil: none).
    public var rpoAlpha: Double?

    /// The LoRA dropout the pass applies: lora_dropout, or 0 for DPO with disable_dropout (TRL).
    public var trainingLoRADropout: Double { taskType == "dpo" && disableDropout ? 0 : loraDropout }

    /// Every known key's effective value, in table order (what `resolvedJSON` prints).
    public internal(set) var values: [(String, JSONValue)]
    /// Keys accepted for compatibility that change nothing, with their values.
    public internal(set) var ignoredKeys: [(String, JSONValue)]
    /// Notes for the log: aliases used, ignored keys.
    public internal(set) var notes: [String]

    /// The LoRA projection names qwenft can target ("all-linear" expands to all seven).
    public static let loraModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
}

extension TrainingConfig {
    /// Reads `path` (JSON), applies `overrides` (from `parseOverrides`), validates, and resolves a
    /// DeepSpeed file named by `deepspeed` relative to the config's folder when not absolute.
    public static func load(path: String, overrides: [(key: String, value: String)] = [], worldSize: Int = 1) throws -> TrainingConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw TrainingError.unreadableConfig(path: path, message: "no such file or not UTF-8 text; check the --config path")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch let e {
            throw TrainingError.unreadableConfig(path: path, message: "not valid JSON at \(e)")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(root, source: path, overrides: overrides, baseDirectory: base, worldSize: worldSize)
    }

    /// Validates a config object. `source` names it in errors; `baseDirectory` resolves a
    /// relative DeepSpeed path (nil: the current directory).
    public static func parse(_ root: JSONValue, source: String = "config", overrides: [(key: String, value: String)] = [],
                             baseDirectory: String? = nil, worldSize: Int = 1) throws -> TrainingConfig {
        guard case let .object(pairs) = root else {
            throw TrainingError.wrongConfigType(key: "(top level)", source: source, expected: "a JSON object of keys", got: root.kindName)
        }
        var raw: [(String, JSONValue, String)] = pairs.map { ($0.0, $0.1, source) }
        for o in overrides {
            raw.append((o.key, try overrideValue(key: o.key, text: o.value), "command line"))
        }
        var notes: [String] = []
        var given: [String: (JSONValue, String)] = [:]
        var ignored: [(String, JSONValue)] = []
        var mode: [String: (JSONValue, String)] = [:]
        var setBy: [String: String] = [:]   // canonical key → the name that set it
        for (key, value, from) in raw {
            if let canonical = ConfigKeys.key(key)?.name ?? ConfigKeys.aliases[key] {
                // The same setting under two names in one place must agree; a later place
                // (the command line) overrides an earlier one (the file).
                if let prior = given[canonical], prior.1 == from, let name = setBy[canonical], name != key, !(prior.0 == value) {
                    throw TrainingError.badConfigValue(key: key, source: from,
                                                       message: "sets \"\(canonical)\", which \"\(name)\" also sets to a different value; keep one")
                }
                given[canonical] = (value, from)
                setBy[canonical] = key
                if key != canonical { notes.append("\"\(key)\" read as \"\(canonical)\"") }
            } else if ConfigKeys.modeKeys.contains(key) {
                mode[key] = (value, from)
            } else if ConfigKeys.ignored.contains(key) {
                ignored.removeAll { $0.0 == key }
                ignored.append((key, value))
            } else {
                let candidates = ConfigKeys.all.map(\.name) + ConfigKeys.aliases.keys.sorted() + ConfigKeys.modeKeys.sorted() + ConfigKeys.ignored.sorted()
                throw TrainingError.unknownConfigKey(key: key, source: from, suggestion: closestMatch(to: key, in: candidates))
            }
        }
        try applyModeKeys(mode, into: &given, notes: &notes)
        if !ignored.isEmpty { notes.append("ignored (no effect in qwenft): " + ignored.map(\.0).joined(separator: ", ")) }

        // Type-check every key and fill defaults.
        var values: [(String, JSONValue)] = []
        for k in ConfigKeys.all {
            let (v, from) = given[k.name] ?? (k.defaultValue, "default")
            values.append((k.name, try check(k, v, source: from)))
        }
        var c = try TrainingConfig(values: values, ignored: ignored, notes: notes)
        try c.validate(sources: given.mapValues(\.1))
        if let (ds, from) = given["deepspeed"], ds != .null {
            c.deepspeed = try loadDeepSpeed(ds, source: from, baseDirectory: baseDirectory, config: c, worldSize: worldSize)
        }
        return c
    }

    /// Splits `--KEY VALUE` / `--KEY=VALUE` arguments. A boolean key may stand alone (`--bf16`
    /// means true, as with HfArgumentParser).
    public static func parseOverrides(_ arguments: [String]) throws -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw TrainingError.badOverride(argument: arg, message: "expected --KEY VALUE (a config key such as --learning_rate 1e-4)")
            }
            let body = String(arg.dropFirst(2))
            if let eq = body.firstIndex(of: "=") {
                out.append((String(body[..<eq]), String(body[body.index(after: eq)...])))
                i += 1
                continue
            }
            let isBool = canonicalKey(body).flatMap(ConfigKeys.key).map { $0.kind == .bool } ?? ["use_lora", "q_lora"].contains(body)
            if i + 1 < arguments.count, !(isBool && arguments[i + 1].hasPrefix("--")) {
                out.append((body, arguments[i + 1]))
                i += 2
            } else if isBool {
                out.append((body, "true"))
                i += 1
            } else {
                throw TrainingError.badOverride(argument: arg, message: "has no value; write \(arg) VALUE")
            }
        }
        return out
    }

    /// The config as printed at start and saved to output_dir: every key's effective value,
    /// DeepSpeed with "auto" resolved, ignored keys kept (so the file loads again as a config).
    public func resolvedJSON() -> JSONValue {
        var pairs = values
        if let ds = deepspeed, let i = pairs.firstIndex(where: { $0.0 == "deepspeed" }) { pairs[i].1 = ds.resolved }
        return .object(pairs + ignoredKeys)
    }

    /// The number of optimizer steps, as transformers' Trainer computes it: max_steps if > 0,
    /// else ceil(epochs · updates per epoch), updates per epoch = ceil(batches / accumulation), ≥ 1.
    public func totalOptimizerSteps(batchesPerEpoch: Int) -> Int {
        if maxSteps > 0 { return maxSteps }
        let g = gradientAccumulationSteps
        let perEpoch = max(batchesPerEpoch / g + (batchesPerEpoch % g > 0 ? 1 : 0), 1)
        return Int((numTrainEpochs * Double(perEpoch)).rounded(.up))
    }

    /// Warmup steps for `totalSteps` (transformers' get_warmup_steps, warmup_ratio as 4.x).
    public func warmupSteps(totalSteps: Int) -> Int {
        LRScheduler.warmupSteps(warmupSteps: warmupSteps, warmupRatio: warmupRatio, totalSteps: totalSteps)
    }

    /// The LR schedule for `totalSteps`: DeepSpeed's scheduler when the DeepSpeed config has one
    /// (as with transformers + DeepSpeed), else `lr_scheduler_type`.
    public func learningRateScheduler(totalSteps: Int) throws -> LRScheduler {
        let warm = warmupSteps(totalSteps: totalSteps)
        if let ds = try deepspeed?.finalized(totalSteps: totalSteps, warmupSteps: warm), let s = ds.scheduler {
            let steps = s.warmupNumSteps ?? max(1, warm), total = s.totalNumSteps ?? totalSteps
            if s.type == "WarmupCosineLR" {
                let lr = ds.optimizer?.lr ?? learningRate
                let p = DeepSpeedWarmupCosine(totalSteps: total, warmupMinRatio: s.warmupMinRatio, warmupSteps: steps,
                                              cosMinRatio: s.cosMinRatio, kind: s.warmupType)
                return LRScheduler(baseLR: lr, schedule: .deepSpeedWarmupCosine(p))
            }
            let p = DeepSpeedWarmup(minLR: s.warmupMinLR, maxLR: s.warmupMaxLR, warmupSteps: steps, kind: s.warmupType)
            let schedule: LRSchedule = s.type == "WarmupDecayLR" ? .deepSpeedWarmupDecay(p, totalSteps: total) : .deepSpeedWarmup(p)
            return LRScheduler(baseLR: s.warmupMaxLR, schedule: schedule)
        }
        let schedule = try LRSchedule.transformers(lrSchedulerType, warmupSteps: warm, totalSteps: totalSteps,
                                                   baseLR: learningRate, kwargs: lrSchedulerKwargs)
        return LRScheduler(baseLR: learningRate, schedule: schedule)
    }

    /// AdamW settings in effect (DeepSpeed's optimizer section when present; it must agree).
    public var effectiveAdamW: AdamWHyperparameters {
        guard let o = deepspeed?.optimizer else { return adamW }
        return AdamWHyperparameters(beta1: o.betas.0, beta2: o.betas.1, eps: o.eps, weightDecay: o.weightDecay)
    }

    /// Clipping in effect: with DeepSpeed its `gradient_clipping` (0, no clipping, when absent).
    public var effectiveMaxGradNorm: Double { deepspeed.map(\.gradientClipping) ?? maxGradNorm }

    public enum StepEvent: Sendable { case logging, evaluation, saving }

    /// Every how many optimizer steps `event` happens, as transformers' `TrainerState.compute_steps`:
    /// a value below 1 is a fraction of `totalSteps`, rounded up; eval_steps defaults to
    /// logging_steps. nil when the event's strategy is not "steps" (saving/eval "no" or "epoch").
    public func interval(_ event: StepEvent, totalSteps: Int) -> Int? {
        let value: Double
        switch event {
        case .logging: value = loggingSteps
        case .evaluation:
            guard evalStrategy == .steps else { return nil }
            value = evalSteps ?? loggingSteps
        case .saving:
            guard saveStrategy == .steps else { return nil }
            value = saveSteps
        }
        return value < 1 ? max(1, Int((Double(totalSteps) * value).rounded(.up))) : Int(value)
    }

    /// The LoRA target modules with "all-linear" expanded.
    public var resolvedLoraTargetModules: [String] {
        loraTargetModules == ["all-linear"] ? Self.loraModules : loraTargetModules
    }
}

extension TrainingConfig {
    static func canonicalKey(_ name: String) -> String? {
        if ConfigKeys.key(name) != nil { return name }
        return ConfigKeys.aliases[name]
    }

    /// Types an override string by its key.
    static func overrideValue(key: String, text: String) throws -> JSONValue {
        let name = canonicalKey(key)
        guard let name, let k = ConfigKeys.key(name) else {
            if ConfigKeys.modeKeys.contains(key) || ConfigKeys.ignored.contains(key) {
                if let b = parseBool(text) { return .bool(b) }
                if let x = Double(text) { return Int(text).map { .int($0) } ?? .double(x) }
                return .string(text)
            }
            let candidates = ConfigKeys.all.map(\.name) + ConfigKeys.aliases.keys.sorted()
            throw TrainingError.unknownConfigKey(key: key, source: "command line", suggestion: closestMatch(to: key, in: candidates))
        }
        if k.nullable, text == "null" || text == "None" { return .null }
        func bad(_ expected: String) -> TrainingError {
            .badOverride(argument: "--\(key) \(text)", message: "\(key) must be \(expected)")
        }
        switch k.kind {
        case .string, .choice, .stringList: return .string(text)
        case .int:
            guard let n = Int(text) else { throw bad("an integer") }
            return .int(n)
        case .double:
            guard let x = Double(text), x.isFinite else { throw bad("a number") }
            return Int(text).map { .int($0) } ?? .double(x)
        case .bool:
            guard let b = parseBool(text) else { throw bad("true or false") }
            return .bool(b)
        case .boolOrString:
            return parseBool(text).map(JSONValue.bool) ?? .string(text)
        case .pathOrObject, .object:
            if text.hasPrefix("{") {
                do { return try JSONValue.parse(text) } catch { throw bad("a JSON object (\(error))") }
            }
            if k.kind == .object { throw bad("a JSON object such as {\"min_lr_rate\": 0.1}") }
            return .string(text)
        }
    }

    static func parseBool(_ s: String) -> Bool? {
        switch s.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: return nil
        }
    }

    /// LLaMA-Factory's finetuning_type / quantization_bit / stage and Qwen finetune.py's
    /// use_lora / q_lora, mapped onto train_mode and task_type.
    static func applyModeKeys(_ mode: [String: (JSONValue, String)], into given: inout [String: (JSONValue, String)],
                              notes: inout [String]) throws {
        func bool(_ key: String) throws -> Bool? {
            guard let (v, from) = mode[key] else { return nil }
            guard case let .bool(b) = v else { throw TrainingError.wrongConfigType(key: key, source: from, expected: "true or false", got: v.kindName) }
            return b
        }
        var derived: String?
        var from = "config"
        if let (v, src) = mode["finetuning_type"] {
            guard case let .string(t) = v, ["lora", "full"].contains(t) else {
                throw TrainingError.badConfigValue(key: "finetuning_type", source: src, message: "must be \"lora\" or \"full\" (got \(v.kindName))")
            }
            derived = t
            from = src
        }
        if let useLora = try bool("use_lora") {
            derived = useLora ? "lora" : "full"
            from = mode["use_lora"]!.1
        }
        if let (v, src) = mode["quantization_bit"] {
            guard v.doubleValue == 4 else {
                throw TrainingError.badConfigValue(key: "quantization_bit", source: src, message: "only 4 (NF4, QLoRA) is supported, got \(v.kindName)")
            }
            derived = "qlora"
            from = src
        }
        if try bool("q_lora") == true { derived = "qlora"; from = mode["q_lora"]!.1 }
        if let d = derived {
            if let (v, src) = given["train_mode"], !(v == .string(d)) {
                throw TrainingError.badConfigValue(key: "train_mode", source: src,
                                                   message: "is \(v.compactText) but \(mode.keys.sorted().joined(separator: "/")) say \"\(d)\"; keep one")
            }
            given["train_mode"] = (.string(d), from)
            notes.append("train_mode \"\(d)\" from " + mode.keys.filter { $0 != "stage" }.sorted().joined(separator: ", "))
        }
        if let (v, src) = mode["stage"] {
            guard case let .string(st) = v, ["sft", "pt", "dpo"].contains(st) else {
                throw TrainingError.badConfigValue(key: "stage", source: src, message: "only \"sft\", \"pt\" and \"dpo\" are supported (got \(v.kindName))")
            }
            given["task_type"] = (.string(st == "pt" ? "pretrain" : st), src)
        }
    }

    /// Type-checks one value against its key; normalises lists and integral numbers.
    static func check(_ k: ConfigKey, _ v: JSONValue, source: String) throws -> JSONValue {
        if v == .null {
            if k.nullable { return .null }
            throw TrainingError.wrongConfigType(key: k.name, source: source, expected: k.expected, got: "null")
        }
        func wrong() -> TrainingError { .wrongConfigType(key: k.name, source: source, expected: k.expected, got: v.kindName) }
        switch k.kind {
        case .string:
            guard case .string = v else { throw wrong() }
            return v
        case .int:
            guard let x = v.doubleValue else { throw wrong() }
            guard x.rounded() == x, abs(x) < 1e15 else { throw wrong() }
            return .int(Int(x))
        case .double:
            guard let x = v.doubleValue, x.isFinite else { throw wrong() }
            return v
        case .bool:
            guard case .bool = v else { throw wrong() }
            return v
        case let .choice(options):
            guard case let .string(s) = v else { throw wrong() }
            guard options.contains(s) else {
                let hint = closestMatch(to: s, in: options).map { " Did you mean \"\($0)\"?" } ?? ""
                throw TrainingError.badConfigValue(key: k.name, source: source, message: "\"\(s)\" is not \(k.expected).\(hint)")
            }
            return v
        case .stringList:
            switch v {
            case let .string(s):
                let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                return .array(parts.map(JSONValue.string))
            case let .array(items):
                guard items.allSatisfy({ if case .string = $0 { return true }; return false }) else { throw wrong() }
                return v
            default: throw wrong()
            }
        case .boolOrString:
            switch v {
            case .bool, .string: return v
            default: throw wrong()
            }
        case .pathOrObject:
            switch v {
            case .string, .object: return v
            default: throw wrong()
            }
        case .object:
            guard case .object = v else { throw wrong() }
            return v
        }
    }
}
