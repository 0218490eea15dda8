import Foundation

// What a training run tells its caller while it runs. The library never prints: the CLI turns
// these values into console lines or a progress bar, tests collect them.

/// The run's shape, known once the data is loaded.
public struct TrainingPlan: Sendable {
    public var totalSteps: Int
    /// Optimizer steps per epoch (micro-batches per epoch / gradient accumulation, rounded up).
    public var stepsPerEpoch: Int
    public var microBatchesPerEpoch: Int
    public var gradientAccumulationSteps: Int
    public var trainableParameters: Int
    /// The step the run starts at (0, or the checkpoint's when resuming).
    public var startStep: Int
    public var mode: String
}

/// One optimizer step done (for a progress bar): every step, not only logged ones.
public struct StepProgress: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double
    /// Seconds since this process started training (not counting preprocessing).
    public var elapsed: Double
    /// Estimated seconds left at this run's speed.
    public var eta: Double
}

/// One `logging_steps` record: what transformers logs, plus throughput. Numbers are full
/// precision (the JSONL keeps every digit).
public struct LogRecord: Sendable {
    public var step: Int
    public var epoch: Double
    /// Mean of the per-step losses since the previous log (transformers' rule).
    public var loss: Double
    public var learningRate: Double
    /// The last step's global gradient norm before clipping.
    public var gradNorm: Double
    /// Non-padding tokens per second since the previous log.
    public var tokensPerSecond: Double
    public var elapsed: Double
    /// task_type dpo: TRL's metrics (rewards/chosen …), averaged over the micro-batches since the last log.
    public var extra: [(String, Double)] = []

    public var json: JSONValue {
        .object([("step", .int(step)), ("epoch", .double(epoch)), ("loss", .double(loss))] + extra.map { ($0.0, .double($0.1)) }
                + [("learning_rate", .double(learningRate)), ("grad_norm", .double(gradNorm)),
                   ("tokens_per_second", .double(tokensPerSecond)), ("elapsed_s", .double(elapsed))])
    }
}

/// `eval_steps` record: loss and next-token accuracy over the labelled tokens of eval_file.
public struct EvalRecord: Sendable {
    public var step: Int
    public var epoch: Double
    public var loss: Double
    public var tokenAccuracy: Double
    public var tokens: Int
    public var seconds: Double
    /// task_type dpo: TRL's metrics, named without the "eval_" prefix (then no token accuracy).
    public var extra: [(String, Double)] = []

    public var json: JSONValue {
        if !extra.isEmpty {
            return .object([("step", .int(step)), ("epoch", .double(epoch)), ("eval_loss", .double(loss))]
                           + extra.map { ("eval_" + $0.0, .double($0.1)) } + [("eval_runtime", .double(seconds))])
        }
        return .object([("step", .int(step)), ("epoch", .double(epoch)), ("eval_loss", .double(loss)),
                        ("eval_token_accuracy", .double(tokenAccuracy)), ("eval_tokens", .int(tokens)),
                        ("eval_runtime", .double(seconds))])
    }
}

/// How a run ended.
public struct TrainingSummary: Sendable {
    public var globalStep: Int
    public var totalSteps: Int
    /// Mean loss over the steps this process ran.
    public var meanLoss: Double
    public var seconds: Double
    public var tokensPerSecond: Double
    /// Where the final adapter or model was written (nil when interrupted).
    public var outputPath: String?
    /// Stopped early by a signal; the last checkpoint holds the state.
    public var interrupted: Bool
    public var skippedSteps: Int
}

public enum TrainerEvent: Sendable {
    /// A line of setup information (dataset summary, mode, notes about the config).
    case note(String)
    /// Something the user should look at, training goes on (a skipped step, an ignored setting).
    case warning(String)
    case preprocessing(PreprocessingProgress)
    case started(TrainingPlan)
    case step(StepProgress)
    case log(LogRecord)
    case evaluation(EvalRecord)
    case checkpoint(path: String, step: Int)
    case finished(TrainingSummary)
}
