/// The training loop's errors (output folders, checkpoints, adapters, diverging runs, merge) are
/// cases of TrainingError (the target's one error type); this name stays so that
/// `throw TrainerError.writeFailed(…)` written before the fold keeps compiling. New code names
/// TrainingError.
public typealias TrainerError = TrainingError
