import Foundation

/// What can go wrong around the training loop and merge: output folders, checkpoints, adapters,
/// diverging runs. (Config, dataset and model errors keep their own types: TrainingError,
/// DatasetError, Qwen2Error.) Each description names the file or step and says what to do.
public enum TrainerError: Error, CustomStringConvertible {
    /// output_dir already holds another run's results.
    case outputDirInUse(path: String, found: String)
    /// resume_from_checkpoint named nothing usable.
    case noCheckpoint(path: String, message: String)
    /// A checkpoint folder that is incomplete or does not fit this run.
    case badCheckpoint(path: String, message: String)
    /// The loss or gradients were NaN/Inf too many steps in a row.
    case diverged(step: Int, count: Int)
    /// A setting this build cannot run.
    case unsupported(key: String, message: String)
    /// A file could not be written (disk full, permissions).
    case writeFailed(path: String, message: String)
    /// merge: adapter and base disagree, or a folder is missing.
    case mergeFailed(path: String, message: String)
    /// Under mpirun: this rank sees another config, data or model than rank 0.
    case ranksDisagree(rank: Int, what: String)
    /// QWENFT_TEST_FAULT: a failure injected by the fault tests.
    case injectedFault(rank: Int, step: Int)

    public var description: String {
        switch self {
        case let .outputDirInUse(path, found):
            return "output_dir \(path) already holds another run (\(found)); set resume_from_checkpoint to continue it, "
                + "overwrite_output_dir to replace it, or choose another output_dir."
        case let .noCheckpoint(path, message):
            return "resume_from_checkpoint: \(path): \(message)"
        case let .badCheckpoint(path, message):
            return "checkpoint \(path): \(message)"
        case let .diverged(step, count):
            return "training stopped at step \(step): the loss or gradients were NaN or Inf for \(count) steps in a row; "
                + "lower learning_rate, keep max_grad_norm on, or check the data."
        case let .unsupported(key, message):
            return "\(key): \(message)"
        case let .writeFailed(path, message):
            return "cannot write \(path): \(message)"
        case let .mergeFailed(path, message):
            return "merge: \(path): \(message)"
        case let .ranksDisagree(rank, what):
            return "rank \(rank) sees other \(what) than rank 0; every rank must run the same command over the same files "
                + "(check paths that differ between hosts, and the dataset cache)"
        case let .injectedFault(rank, step):
            return "rank \(rank) failed at step \(step) (QWENFT_TEST_FAULT)"
        }
    }
}
