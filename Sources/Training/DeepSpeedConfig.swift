import Foundation

/// What qwenft takes from a DeepSpeed config: the ZeRO stage and offload devices (recorded for the
/// MPI/ZeRO work), and the optimizer, scheduler, clipping and batch values — with "auto" filled
/// in from the training arguments exactly as transformers' `HfTrainerDeepSpeedConfig` does
/// (`trainer_config_process`, then `trainer_config_finalize` once the step count is known), and
/// explicit values that contradict the training arguments rejected as transformers rejects them.
public struct DeepSpeedSettings: Sendable, Equatable {
    public enum OffloadDevice: String, Sendable { case none, cpu, nvme }

    public struct Optimizer: Sendable, Equatable {
        public var type: String
        public var lr: Double
        public var betas: (Double, Double)
        public var eps: Double
        public var weightDecay: Double
        public static func == (a: Self, b: Self) -> Bool {
            a.type == b.type && a.lr == b.lr && a.betas == b.betas && a.eps == b.eps && a.weightDecay == b.weightDecay
        }
    }

    public struct Scheduler: Sendable, Equatable {
        /// "WarmupLR", "WarmupDecayLR" or "WarmupCosineLR".
        public var type: String
        public var warmupMinLR: Double
        public var warmupMaxLR: Double
        /// nil while "auto" (filled by `finalized(totalSteps:warmupSteps:)`).
        public var warmupNumSteps: Int?
        public var totalNumSteps: Int?
        public var warmupType: DeepSpeedWarmup.Kind
        /// WarmupCosineLR only.
        public var warmupMinRatio: Double = 0
        public var cosMinRatio: Double = 0.0001
    }

    /// The file it came from, or "inline".
    public var source: String
    public var zeroStage: Int
    public var offloadOptimizer: OffloadDevice
    public var offloadParam: OffloadDevice
    public var trainMicroBatchSizePerGPU: Int
    public var gradientAccumulationSteps: Int
    public var trainBatchSize: Int
    /// DeepSpeed clips only when this is > 0 (its default is 0: no clipping).
    public var gradientClipping: Double
    public var optimizer: Optimizer?
    public var scheduler: Scheduler?
    /// The config with every "auto" we can resolve replaced, for output_dir.
    public var resolved: JSONValue

    /// The training-argument values "auto" resolves from.
    public struct Arguments: Sendable {
        public var microBatchSize: Int
        public var gradientAccumulationSteps: Int
        public var worldSize: Int
        public var maxGradNorm: Double
        public var learningRate: Double
        public var beta1: Double, beta2: Double, eps: Double, weightDecay: Double
        public var fp16: Bool, bf16: Bool
    }

    /// `trainer_config_process`: fills "auto" and checks explicit values against `args`.
    public static func resolve(_ raw: JSONValue, source: String, args: Arguments) throws -> DeepSpeedSettings {
        guard case .object = raw else {
            throw TrainingError.wrongConfigType(key: "deepspeed", source: source, expected: "a JSON object", got: raw.kindName)
        }
        var cfg = raw
        var r = Resolver(source: source)
        try r.fillMatch(&cfg, "train_micro_batch_size_per_gpu", .int(args.microBatchSize), "per_device_train_batch_size")
        try r.fillMatch(&cfg, "gradient_accumulation_steps", .int(args.gradientAccumulationSteps), "gradient_accumulation_steps")
        try r.fillMatch(&cfg, "train_batch_size", .int(args.worldSize * args.microBatchSize * args.gradientAccumulationSteps),
                        "train_batch_size (calculated)")
        try r.fillMatch(&cfg, "gradient_clipping", .double(args.maxGradNorm), "max_grad_norm")
        try r.fillMatch(&cfg, "optimizer.params.lr", .double(args.learningRate), "learning_rate")
        try r.fillMatch(&cfg, "optimizer.params.betas", .array([.double(args.beta1), .double(args.beta2)]), "adam_beta1+adam_beta2")
        try r.fillMatch(&cfg, "optimizer.params.eps", .double(args.eps), "adam_epsilon")
        try r.fillMatch(&cfg, "optimizer.params.weight_decay", .double(args.weightDecay), "weight_decay")
        r.fillOnly(&cfg, "scheduler.params.warmup_min_lr", .int(0))
        try r.fillMatch(&cfg, "scheduler.params.warmup_max_lr", .double(args.learningRate), "learning_rate")
        try r.fillMatch(&cfg, "fp16.enabled", .bool(args.fp16), "fp16")
        try r.fillMatch(&cfg, "bf16.enabled", .bool(args.bf16), "bf16")

        var s = DeepSpeedSettings(source: source, zeroStage: 0, offloadOptimizer: .none, offloadParam: .none,
                                  trainMicroBatchSizePerGPU: args.microBatchSize,
                                  gradientAccumulationSteps: args.gradientAccumulationSteps,
                                  trainBatchSize: args.worldSize * args.microBatchSize * args.gradientAccumulationSteps,
                                  gradientClipping: 0, optimizer: nil, scheduler: nil, resolved: cfg)
        if let stage = Resolver.get(cfg, "zero_optimization.stage") {
            let n = try r.int(stage, "zero_optimization.stage")
            guard (0 ... 3).contains(n) else {
                throw TrainingError.badConfigValue(key: "deepspeed.zero_optimization.stage", source: source, message: "must be 0, 1, 2 or 3, got \(n)")
            }
            s.zeroStage = n
        }
        s.offloadOptimizer = try r.device(cfg, "zero_optimization.offload_optimizer.device")
        s.offloadParam = try r.device(cfg, "zero_optimization.offload_param.device")
        if let v = Resolver.get(cfg, "gradient_clipping") { s.gradientClipping = try r.double(v, "gradient_clipping") }
        if let opt = Resolver.get(cfg, "optimizer") {
            let type = try r.string(opt["type"] ?? .null, "optimizer.type")
            guard ["adam", "adamw"].contains(type.lowercased()) else {
                throw TrainingError.badConfigValue(key: "deepspeed.optimizer.type", source: source,
                                                   message: "\"\(type)\" is not supported; qwenft runs AdamW (use \"AdamW\" or remove the optimizer section)")
            }
            var betas = (args.beta1, args.beta2)
            if let b = Resolver.get(cfg, "optimizer.params.betas") {
                guard case let .array(items) = b, items.count == 2 else {
                    throw TrainingError.wrongConfigType(key: "deepspeed.optimizer.params.betas", source: source, expected: "a list of two numbers", got: b.kindName)
                }
                betas = (try r.double(items[0], "optimizer.params.betas"), try r.double(items[1], "optimizer.params.betas"))
            }
            func param(_ name: String, _ fallback: Double) throws -> Double {
                try Resolver.get(cfg, "optimizer.params.\(name)").map { try r.double($0, "optimizer.params.\(name)") } ?? fallback
            }
            s.optimizer = Optimizer(type: type, lr: try param("lr", args.learningRate), betas: betas,
                                    eps: try param("eps", args.eps), weightDecay: try param("weight_decay", args.weightDecay))
        }
        if let sch = Resolver.get(cfg, "scheduler") {
            let type = try r.string(sch["type"] ?? .null, "scheduler.type")
            guard ["WarmupLR", "WarmupDecayLR", "WarmupCosineLR"].contains(type) else {
                throw TrainingError.badConfigValue(key: "deepspeed.scheduler.type", source: source,
                                                   message: "\"\(type)\" is not supported; use \"WarmupLR\", \"WarmupDecayLR\" or \"WarmupCosineLR\", or remove the scheduler section to use lr_scheduler_type")
            }
            func num(_ name: String) throws -> Double? {
                guard let v = Resolver.get(cfg, "scheduler.params.\(name)"), v != .string("auto") else { return nil }
                return try r.double(v, "scheduler.params.\(name)")
            }
            func int(_ name: String) throws -> Int? {
                guard let v = Resolver.get(cfg, "scheduler.params.\(name)"), v != .string("auto") else { return nil }
                return try r.int(v, "scheduler.params.\(name)")
            }
            var kind = DeepSpeedWarmup.Kind.log
            if let t = Resolver.get(cfg, "scheduler.params.warmup_type") {
                let name = try r.string(t, "scheduler.params.warmup_type")
                guard let k = DeepSpeedWarmup.Kind(rawValue: name) else {
                    throw TrainingError.badConfigValue(key: "deepspeed.scheduler.params.warmup_type", source: source, message: "must be \"log\" or \"linear\", got \"\(name)\"")
                }
                kind = k
            }
            s.scheduler = Scheduler(type: type, warmupMinLR: try num("warmup_min_lr") ?? 0,
                                    warmupMaxLR: try num("warmup_max_lr") ?? args.learningRate,
                                    warmupNumSteps: try int("warmup_num_steps"), totalNumSteps: try int("total_num_steps"),
                                    warmupType: kind,
                                    warmupMinRatio: try num("warmup_min_ratio") ?? 0,
                                    cosMinRatio: try num("cos_min_ratio") ?? 0.0001)
        }
        return s
    }

    /// `trainer_config_finalize`: the step counts. `warmupSteps` is the training arguments' warmup
    /// (transformers passes max(1, it)); explicit values that differ are an error.
    public func finalized(totalSteps: Int, warmupSteps: Int) throws -> DeepSpeedSettings {
        var s = self
        var r = Resolver(source: source)
        try r.fillMatch(&s.resolved, "scheduler.params.total_num_steps", .int(totalSteps), "num_training_steps (calculated)")
        try r.fillMatch(&s.resolved, "scheduler.params.warmup_num_steps", .int(max(1, warmupSteps)), "warmup_steps")
        if var sch = s.scheduler {
            sch.totalNumSteps = sch.totalNumSteps ?? totalSteps
            sch.warmupNumSteps = sch.warmupNumSteps ?? max(1, warmupSteps)
            s.scheduler = sch
        }
        return s
    }
}

/// Dotted-path access and transformers' fill_match / fill_only over a JSON object tree.
private struct Resolver {
    let source: String

    static func get(_ v: JSONValue, _ path: String) -> JSONValue? {
        var cur = v
        for part in path.split(separator: ".") {
            guard let next = cur[String(part)] else { return nil }
            cur = next
        }
        return cur
    }

    static func set(_ v: inout JSONValue, _ path: [Substring], _ value: JSONValue) {
        guard case var .object(pairs) = v, let first = path.first else { return }
        guard let idx = pairs.firstIndex(where: { $0.0 == first }) else { return }
        if path.count == 1 { pairs[idx].1 = value } else { Self.set(&pairs[idx].1, Array(path.dropFirst()), value) }
        v = .object(pairs)
    }

    /// "auto" → hf value; an explicit value must equal it; an absent key stays absent.
    mutating func fillMatch(_ cfg: inout JSONValue, _ path: String, _ hf: JSONValue, _ hfKey: String) throws {
        guard let cur = Self.get(cfg, path) else { return }
        if cur == .string("auto") { Self.set(&cfg, path.split(separator: "."), hf); return }
        if cur == .null { return }
        if !Self.sameValue(cur, hf) {
            throw TrainingError.deepSpeedMismatch(source: source, dsKey: path, dsValue: cur.compactText, hfKey: hfKey, hfValue: hf.compactText)
        }
    }

    mutating func fillOnly(_ cfg: inout JSONValue, _ path: String, _ hf: JSONValue) {
        if Self.get(cfg, path) == .string("auto") { Self.set(&cfg, path.split(separator: "."), hf) }
    }

    static func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        switch (a, b) {
        case let (.array(x), .array(y)): return x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
        case let (.bool(x), _) where b.doubleValue != nil: return (x ? 1.0 : 0.0) == b.doubleValue
        case let (_, .bool(x)) where a.doubleValue != nil: return (x ? 1.0 : 0.0) == a.doubleValue
        default: return a == b
        }
    }

    func double(_ v: JSONValue, _ key: String) throws -> Double {
        if let x = v.doubleValue { return x }
        // DeepSpeed configs often write numbers as strings ("0", "1e9").
        if case let .string(s) = v, let x = Double(s) { return x }
        throw TrainingError.wrongConfigType(key: "deepspeed.\(key)", source: source, expected: "a number", got: v.kindName)
    }

    func int(_ v: JSONValue, _ key: String) throws -> Int {
        let x = try double(v, key)
        guard x.rounded() == x, abs(x) < 1e15 else {
            throw TrainingError.wrongConfigType(key: "deepspeed.\(key)", source: source, expected: "an integer", got: v.kindName)
        }
        return Int(x)
    }

    func string(_ v: JSONValue, _ key: String) throws -> String {
        if case let .string(s) = v { return s }
        throw TrainingError.wrongConfigType(key: "deepspeed.\(key)", source: source, expected: "a string", got: v.kindName)
    }

    func device(_ cfg: JSONValue, _ path: String) throws -> DeepSpeedSettings.OffloadDevice {
        guard let v = Self.get(cfg, path), v != .null else { return .none }
        let name = try string(v, path)
        guard let d = DeepSpeedSettings.OffloadDevice(rawValue: name) else {
            throw TrainingError.badConfigValue(key: "deepspeed.\(path)", source: source, message: "must be \"none\", \"cpu\" or \"nvme\", got \"\(name)\"")
        }
        return d
    }
}
