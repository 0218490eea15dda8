/// fp16 training's dynamic loss scaling, step for step as DeepSpeed's `DynamicLossScaler`
/// (deepspeed/runtime/fp16/loss_scaler.py, built by ZeRO's CreateLossScaler from the config's
/// `fp16` block). The loss is multiplied by `scale` before backward; the gradients are divided by
/// it before clipping and AdamW. A step whose gradients hold an Inf or NaN is skipped (no AdamW
/// update, the gradients dropped) and then:
///   - while hysteresis is left (hysteresis > 1) it only loses one unit of hysteresis;
///   - otherwise the scale halves (not below `min_loss_scale`); already at the minimum, training
///     stops with an error, as DeepSpeed raises.
/// After `loss_scale_window` clean steps in a row since the last overflow the scale doubles (and the
/// hysteresis refills). With `consecutive_hysteresis` every clean step refills the hysteresis.
/// Fixture: Tests/TrainingTests/Fixtures/loss_scaler.json (Scripts/fixtures/loss_scaler.py).
public struct DynamicLossScaler: Sendable, Equatable {
    /// DeepSpeed's `fp16` keys and defaults (a `loss_scale` of 0 selects dynamic scaling).
    public struct Config: Sendable, Equatable {
        public var initialScalePower: Int = 16
        public var lossScaleWindow: Int = 1000
        public var hysteresis: Int = 2
        public var consecutiveHysteresis: Bool = false
        public var minLossScale: Double = 1

        public init(initialScalePower: Int = 16, lossScaleWindow: Int = 1000, hysteresis: Int = 2,
                    consecutiveHysteresis: Bool = false, minLossScale: Double = 1) {
            self.initialScalePower = initialScalePower
            self.lossScaleWindow = lossScaleWindow
            self.hysteresis = hysteresis
            self.consecutiveHysteresis = consecutiveHysteresis
            self.minLossScale = minLossScale
        }

        /// The settings of a DeepSpeed `fp16` block (JSON object); absent keys keep their defaults.
        /// Bad values throw `badConfigValue` naming `deepspeed.fp16.<key>` (DeepSpeed's own checks:
        /// a window and a minimum scale above 0).
        public init(fp16Block block: JSONValue, source: String) throws {
            func number(_ key: String) throws -> Double? {
                guard let v = block[key] else { return nil }
                guard case let .number(x, _) = v else {
                    throw TrainingError.wrongConfigType(key: "deepspeed.fp16.\(key)", source: source,
                                                        expected: "a number", got: v.kindName)
                }
                return x
            }
            func integer(_ key: String) throws -> Int? {
                guard let x = try number(key) else { return nil }
                guard x == x.rounded(), abs(x) < 1e9 else {
                    throw TrainingError.badConfigValue(key: "deepspeed.fp16.\(key)", source: source,
                                                       message: "must be a whole number, got \(x)")
                }
                return Int(x)
            }
            if let p = try integer("initial_scale_power") {
                guard (0 ... 64).contains(p) else {
                    throw TrainingError.badConfigValue(key: "deepspeed.fp16.initial_scale_power", source: source,
                                                       message: "must be between 0 and 64, got \(p)")
                }
                initialScalePower = p
            }
            if let w = try integer("loss_scale_window") {
                guard w > 0 else {
                    throw TrainingError.badConfigValue(key: "deepspeed.fp16.loss_scale_window", source: source,
                                                       message: "must be > 0 with dynamic loss scaling, got \(w)")
                }
                lossScaleWindow = w
            }
            if let h = try integer("hysteresis") {
                guard h >= 1 else {
                    throw TrainingError.badConfigValue(key: "deepspeed.fp16.hysteresis", source: source,
                                                       message: "must be at least 1, got \(h)")
                }
                hysteresis = h
            }
            if let v = block["consecutive_hysteresis"] {
                guard case let .bool(b) = v else {
                    throw TrainingError.wrongConfigType(key: "deepspeed.fp16.consecutive_hysteresis", source: source,
                                                        expected: "true or false", got: v.kindName)
                }
                consecutiveHysteresis = b
            }
            if let m = try number("min_loss_scale") {
                guard m > 0 else {
                    throw TrainingError.badConfigValue(key: "deepspeed.fp16.min_loss_scale", source: source,
                                                       message: "must be > 0 with dynamic loss scaling, got \(m)")
                }
                minLossScale = m
            }
        }
    }

    public let config: Config
    /// The factor the loss is multiplied by (`cur_scale`).
    public private(set) var scale: Double
    /// Overflows still tolerated before the scale halves (`cur_hysteresis`).
    public private(set) var hysteresis: Int
    /// Steps seen, skipped ones included (`cur_iter`).
    public private(set) var iteration = 0
    /// The iteration of the last overflow, −1 before any (`last_overflow_iter`).
    public private(set) var lastOverflowIteration = -1

    public init(_ config: Config = Config()) {
        self.config = config
        scale = Double(sign: .plus, exponent: config.initialScalePower, significand: 1)
        hysteresis = config.hysteresis
    }

    /// The scaler's bookkeeping after a step; `overflow` is whether any gradient was Inf or NaN
    /// (the step is then skipped). Throws `TrainingError.lossScaleAtMinimum` on an overflow that
    /// would take the scale below `min_loss_scale`, as DeepSpeed does.
    public mutating func update(overflow: Bool) throws {
        if overflow {
            if config.hysteresis == 1 || hysteresis == 1 {
                if scale == config.minLossScale {
                    throw TrainingError.lossScaleAtMinimum(scale: scale, iteration: iteration)
                }
                scale = max(scale / 2, config.minLossScale)
            } else {
                hysteresis -= 1
            }
            lastOverflowIteration = iteration
        } else {
            if config.consecutiveHysteresis { hysteresis = config.hysteresis }
            let stableInterval = iteration - lastOverflowIteration - 1
            if stableInterval > 0 && stableInterval % config.lossScaleWindow == 0 {
                if !config.consecutiveHysteresis { hysteresis = config.hysteresis }
                scale *= 2
            }
        }
        iteration += 1
    }
}

/// How fp16 training scales its loss, from the DeepSpeed config's `fp16` block: off (`enabled`
/// false or no block), a fixed scale (`loss_scale` > 0), or dynamic (`loss_scale` 0, DeepSpeed's
/// default) with the block's DynamicLossScaler settings.
public enum LossScaling: Equatable, Sendable {
    case off
    case fixed(Double)
    case dynamic(DynamicLossScaler.Config)

    /// `resolved` is the whole DeepSpeed config (after "auto" values are filled).
    public init(deepSpeed resolved: JSONValue, source: String) throws {
        guard let block = resolved["fp16"] else { self = .off; return }
        guard case .object = block else {
            throw TrainingError.wrongConfigType(key: "deepspeed.fp16", source: source, expected: "a JSON object", got: block.kindName)
        }
        if let enabled = block["enabled"] {
            guard case let .bool(on) = enabled else {
                throw TrainingError.wrongConfigType(key: "deepspeed.fp16.enabled", source: source,
                                                    expected: "true or false", got: enabled.kindName)
            }
            if !on { self = .off; return }
        } else {
            self = .off  // DeepSpeed: fp16 is off unless enabled
            return
        }
        var scale = 0.0
        if let v = block["loss_scale"] {
            guard case let .number(x, _) = v, x >= 0 else {
                throw TrainingError.badConfigValue(key: "deepspeed.fp16.loss_scale", source: source,
                                                   message: "must be 0 (dynamic) or a positive fixed scale, got \(v.compactText)")
            }
            scale = x
        }
        self = scale > 0 ? .fixed(scale) : .dynamic(try DynamicLossScaler.Config(fp16Block: block, source: source))
    }
}
