import Foundation

/// A learning-rate schedule: transformers' `get_scheduler` kinds (a `LambdaLR` factor times the
/// base LR) and DeepSpeed's `WarmupLR` / `WarmupDecayLR` (absolute LRs from their own min/max).
/// All arithmetic in double, in the same order as the Python, so the LRs are the same doubles.
public enum LRSchedule: Sendable, Equatable {
    case constant
    case constantWithWarmup(warmupSteps: Int)
    case linear(warmupSteps: Int, totalSteps: Int)
    case cosine(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5)
    /// `cosine_with_min_lr`: decays to `minLRRate · base` instead of 0.
    case cosineWithMinLR(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5, minLRRate: Double)
    /// `cosine_warmup_with_min_lr`: the variant whose warmup starts at 1/warmup and whose decay is
    /// shifted by one step (transformers' `..._lr_rate_lambda`).
    case cosineWarmupWithMinLR(warmupSteps: Int, totalSteps: Int, numCycles: Double = 0.5,
                               minLRRate: Double, warmupLRRate: Double? = nil)
    /// DeepSpeed `WarmupLR`: min → max over the warmup, then max.
    case deepSpeedWarmup(DeepSpeedWarmup)
    /// DeepSpeed `WarmupDecayLR`: min → max over the warmup, then linear decay to 0 at total.
    case deepSpeedWarmupDecay(DeepSpeedWarmup, totalSteps: Int)
    /// DeepSpeed `WarmupCosineLR`: ratios of the optimizer's LR, warmup_min_ratio → 1 over the
    /// warmup, then a half cosine down to cos_min_ratio at total.
    case deepSpeedWarmupCosine(DeepSpeedWarmupCosine)
}

/// DeepSpeed `WarmupCosineLR`'s parameters.
public struct DeepSpeedWarmupCosine: Sendable, Equatable {
    public var totalSteps: Int
    public var warmupMinRatio: Double
    public var warmupSteps: Int
    public var cosMinRatio: Double
    public var kind: DeepSpeedWarmup.Kind
    public init(totalSteps: Int, warmupMinRatio: Double = 0, warmupSteps: Int = 1000, cosMinRatio: Double = 0.0001,
                kind: DeepSpeedWarmup.Kind = .log) {
        self.totalSteps = totalSteps
        self.warmupMinRatio = warmupMinRatio
        self.warmupSteps = warmupSteps
        self.cosMinRatio = cosMinRatio
        self.kind = kind
    }
}

/// DeepSpeed's warmup parameters (`scheduler.params` of a DeepSpeed config).
public struct DeepSpeedWarmup: Sendable, Equatable {
    public enum Kind: String, Sendable { case log, linear }
    public var minLR: Double
    public var maxLR: Double
    public var warmupSteps: Int
    public var kind: Kind
    public init(minLR: Double = 0, maxLR: Double = 0.001, warmupSteps: Int = 1000, kind: Kind = .log) {
        self.minLR = minLR
        self.maxLR = maxLR
        self.warmupSteps = warmupSteps
        self.kind = kind
    }
}

/// The LR for each optimizer step. `learningRate(afterSteps: k)` is the LR in the optimizer after
/// k scheduler steps (torch's `last_epoch = k`): update number k+1 (1-based) uses it, and it is
/// what transformers logs as `learning_rate` at global step k (it logs after stepping).
public struct LRScheduler: Sendable, Equatable {
    public var baseLR: Double
    public var schedule: LRSchedule

    public init(baseLR: Double, schedule: LRSchedule) {
        self.baseLR = baseLR
        self.schedule = schedule
    }

    public func learningRate(afterSteps k: Int) -> Double {
        switch schedule {
        case .constant:
            return baseLR * 1
        case let .constantWithWarmup(w):
            if k < w { return baseLR * (Double(k) / Double(max(1, w))) }
            return baseLR * 1.0
        case let .linear(w, total):
            if k < w { return baseLR * (Double(k) / Double(max(1, w))) }
            return baseLR * max(0.0, Double(total - k) / Double(max(1, total - w)))
        case let .cosine(w, total, cycles):
            if k < w { return baseLR * (Double(k) / Double(max(1, w))) }
            let progress = Double(k - w) / Double(max(1, total - w))
            return baseLR * max(0.0, 0.5 * (1.0 + cos(Double.pi * cycles * 2.0 * progress)))
        case let .cosineWithMinLR(w, total, cycles, rate):
            if k < w { return baseLR * (Double(k) / Double(max(1, w))) }
            let progress = Double(k - w) / Double(max(1, total - w))
            var factor = 0.5 * (1.0 + cos(Double.pi * cycles * 2.0 * progress))
            factor = factor * (1 - rate) + rate
            return baseLR * max(0, factor)
        case let .cosineWarmupWithMinLR(w, total, cycles, rate, warmupRate):
            let step = Double(k), warm = Double(w), tot = Double(total)
            if step < warm {
                guard let wr = warmupRate else { return baseLR * ((step + 1.0) / max(1.0, warm)) }
                return baseLR * (wr + (1.0 - wr) * step / Double(max(1, w - 1)))
            }
            let progress = (step - warm + 1.0) / max(1.0, tot - warm)
            var factor = 0.5 * (1.0 + cos(Double.pi * cycles * 2.0 * progress))
            factor = factor * (1 - rate) + rate
            return baseLR * max(0, factor)
        case let .deepSpeedWarmup(p):
            return Self.deepSpeed(p, total: nil, iteration: k - 1)
        case let .deepSpeedWarmupDecay(p, total):
            return Self.deepSpeed(p, total: total, iteration: k - 1)
        case let .deepSpeedWarmupCosine(p):
            return baseLR * Self.deepSpeedCosine(p, iteration: k - 1)
        }
    }

    /// DeepSpeed's `last_batch_iteration` starts at -1 (the LR set at construction is min_lr) and
    /// is stepped after each optimizer step, so after k steps it is k - 1.
    static func deepSpeed(_ p: DeepSpeedWarmup, total: Int?, iteration it: Int) -> Double {
        if it < 0 { return p.minLR }
        let w = max(2, p.warmupSteps)
        let delta = p.maxLR - p.minLR
        var gamma: Double
        if it < w {
            switch p.kind {
            case .log: gamma = (1.0 / log(Double(w))) * log(Double(it + 1))
            case .linear: gamma = Double(it) / Double(w)
            }
        } else if let total {
            gamma = max(0.0, Double(total - it) / max(1.0, Double(total - w)))
        } else {
            gamma = 1.0
        }
        return p.minLR + delta * gamma
    }
}

extension LRScheduler {
    /// WarmupCosineLR.get_lr_ratio; before the first step DeepSpeed sets the LR to 0.
    static func deepSpeedCosine(_ p: DeepSpeedWarmupCosine, iteration it: Int) -> Double {
        if it < 0 { return 0.0 }
        let w = max(2, p.warmupSteps)
        if it < w {
            var ratio: Double
            switch p.kind {
            case .log: ratio = (1.0 / log(Double(w))) * log(Double(it + 1))
            case .linear: ratio = Double(it) / Double(w)
            }
            let delta = 1.0 - p.warmupMinRatio
            ratio = p.warmupMinRatio + ratio * delta
            return ratio
        }
        let realLast = it - w + 1
        let realTotal = max(1, p.totalSteps - w)
        let progress = min(1.0, Double(realLast) / Double(realTotal))
        let delta = 1.0 - p.cosMinRatio
        var ratio = (1 + cos(Double.pi * progress)) / 2
        ratio = max(0.0, p.cosMinRatio + delta * ratio)
        return ratio
    }

    /// Warmup steps as transformers' `TrainingArguments.get_warmup_steps`: `warmup_steps` ≥ 1 is a
    /// count (truncated), 0 < `warmup_steps` < 1 a ratio, else `ceil(total · warmup_ratio)`
    /// (transformers 4.x's `warmup_ratio`, used when warmup_steps is 0).
    public static func warmupSteps(warmupSteps: Double, warmupRatio: Double, totalSteps: Int) -> Int {
        if warmupSteps >= 1 { return Int(warmupSteps) }
        if warmupSteps > 0 { return Int((Double(totalSteps) * warmupSteps).rounded(.up)) }
        return Int((Double(totalSteps) * warmupRatio).rounded(.up))
    }
}

/// transformers' `lr_scheduler_type` names that qwenft runs.
public enum LRSchedulerType: String, CaseIterable, Sendable, Codable {
    case linear, cosine, constant
    case constantWithWarmup = "constant_with_warmup"
    case cosineWithMinLR = "cosine_with_min_lr"
    case cosineWarmupWithMinLR = "cosine_warmup_with_min_lr"
}

/// `lr_scheduler_kwargs` that the schedules above take.
public struct LRSchedulerKwargs: Sendable, Equatable, Codable {
    public var numCycles: Double?
    public var minLR: Double?
    public var minLRRate: Double?
    public var warmupLRRate: Double?
    public init(numCycles: Double? = nil, minLR: Double? = nil, minLRRate: Double? = nil, warmupLRRate: Double? = nil) {
        self.numCycles = numCycles
        self.minLR = minLR
        self.minLRRate = minLRRate
        self.warmupLRRate = warmupLRRate
    }
}

extension LRSchedule {
    /// The schedule transformers' `get_scheduler(type, …, scheduler_specific_kwargs: kwargs)`
    /// builds. Errors name `lr_scheduler_kwargs` when min_lr / min_lr_rate are missing or both set.
    public static func transformers(_ type: LRSchedulerType, warmupSteps w: Int, totalSteps total: Int,
                                    baseLR: Double, kwargs: LRSchedulerKwargs = .init()) throws -> LRSchedule {
        let cycles = kwargs.numCycles ?? 0.5
        func minRate() throws -> Double {
            switch (kwargs.minLR, kwargs.minLRRate) {
            case let (lr?, nil): return lr / baseLR
            case let (nil, rate?): return rate
            case (_?, _?):
                throw TrainingError.badConfigValue(key: "lr_scheduler_kwargs", source: "config",
                                                   message: "set only one of min_lr and min_lr_rate")
            case (nil, nil):
                throw TrainingError.badConfigValue(key: "lr_scheduler_kwargs", source: "config",
                                                   message: "\(type.rawValue) needs min_lr or min_lr_rate, e.g. {\"min_lr_rate\": 0.1}")
            }
        }
        switch type {
        case .constant: return .constant
        case .constantWithWarmup: return .constantWithWarmup(warmupSteps: w)
        case .linear: return .linear(warmupSteps: w, totalSteps: total)
        case .cosine: return .cosine(warmupSteps: w, totalSteps: total, numCycles: cycles)
        case .cosineWithMinLR:
            return .cosineWithMinLR(warmupSteps: w, totalSteps: total, numCycles: cycles, minLRRate: try minRate())
        case .cosineWarmupWithMinLR:
            return .cosineWarmupWithMinLR(warmupSteps: w, totalSteps: total, numCycles: cycles,
                                          minLRRate: try minRate(), warmupLRRate: kwargs.warmupLRRate)
        }
    }
}
