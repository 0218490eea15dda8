/// The Training target's one error type: everything a user's input or disk can get wrong, in
/// three groups — the config (keys, values, DeepSpeed, parameter names, target ids), the dataset
/// pipeline (formerly DatasetError) and the training loop with its files (formerly TrainerError).
/// Each description names the culprit (file, line, record, key, tensor) and says what to do.
/// `DatasetError` and `TrainerError` remain as aliases of this type (see the end of the file).
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    // MARK: Config, parameter layout, loss

    /// A config key nobody knows; `suggestion` is the closest known key, if any is close.
    case unknownConfigKey(key: String, source: String, suggestion: String?)
    /// A value of the wrong JSON type for a key.
    case wrongConfigType(key: String, source: String, expected: String, got: String)
    /// A value of the right type but outside what the key accepts.
    case badConfigValue(key: String, source: String, message: String)
    /// A config file that cannot be read or is not JSON.
    case unreadableConfig(path: String, message: String)
    /// A command-line override that is malformed (`--KEY` without a value, not `--KEY`).
    case badOverride(argument: String, message: String)
    /// A DeepSpeed value set explicitly that contradicts the training arguments.
    case deepSpeedMismatch(source: String, dsKey: String, dsValue: String, hfKey: String, hfValue: String)
    /// A parameter name added twice to a layout, or asked for and not there.
    case duplicateParameter(name: String)
    case unknownParameter(name: String, suggestion: String?)
    case badParameterShape(name: String, shape: [Int])
    /// A cross-entropy target outside [0, V) that is not the ignore index.
    case targetOutOfRange(row: Int, target: Int, vocabSize: Int)

    // MARK: Dataset pipeline (bad records are gathered first, so one run lists them all)

    /// A data file that cannot be opened or read.
    case unreadableFile(path: String, message: String)
    /// `on_bad_record: error` and some records are bad: `problems` holds up to `shownLimit` of
    /// them in file order, `total` how many there are.
    case badRecords(problems: [RecordProblem], total: Int)
    /// No template to render with: the model has none and no `template_name` was given.
    case noTemplate(message: String)
    /// `template_name` names no file in the template folder.
    case unknownTemplate(name: String, folder: String, available: [String])
    /// A template that does not parse.
    case badTemplate(path: String, message: String)
    /// A value the caller passed (batch size, max_seq_length, on_bad_record…).
    case badOption(name: String, message: String)
    /// Every record was bad or empty: nothing to train on.
    case noSamples(files: [String], message: String)

    // MARK: Training loop, output folders, checkpoints, merge

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
    /// fp16: gradients overflowed with the loss scale already at `min_loss_scale` (DeepSpeed stops here too).
    case lossScaleAtMinimum(scale: Double, iteration: Int)

    /// How many bad records `badRecords` lists; the rest are counted.
    public static let shownLimit = 20

    public var description: String {
        switch self {
        case let .unknownConfigKey(key, source, suggestion):
            let hint = suggestion.map { " Did you mean \"\($0)\"?" } ?? ""
            return "\(source): unknown key \"\(key)\".\(hint) Remove it or fix its name."
        case let .wrongConfigType(key, source, expected, got):
            return "\(source): key \"\(key)\" must be \(expected), got \(got)."
        case let .badConfigValue(key, source, message):
            return "\(source): key \"\(key)\": \(message)"
        case let .unreadableConfig(path, message):
            return "\(path): cannot read the config: \(message)"
        case let .badOverride(argument, message):
            return "command line: override \"\(argument)\": \(message)"
        case let .deepSpeedMismatch(source, dsKey, dsValue, hfKey, hfValue):
            return "\(source): DeepSpeed \(dsKey)=\(dsValue) contradicts \(hfKey)=\(hfValue); "
                + "set one of them to the other's value, or set the DeepSpeed one to \"auto\"."
        case let .duplicateParameter(name):
            return "parameter layout: \"\(name)\" is added twice."
        case let .unknownParameter(name, suggestion):
            let hint = suggestion.map { " Did you mean \"\($0)\"?" } ?? ""
            return "parameter layout: no trainable parameter named \"\(name)\".\(hint)"
        case let .badParameterShape(name, shape):
            return "parameter layout: \"\(name)\" has an invalid shape \(shape) (dimensions must be positive)."
        case let .targetOutOfRange(row, target, vocabSize):
            return "cross-entropy: target \(target) at row \(row) is outside the vocabulary [0, \(vocabSize)); "
                + "the tokenizer and the model's vocab_size disagree."

        case let .unreadableFile(path, message):
            return "\(path): cannot read the data file: \(message)"
        case let .badRecords(problems, total):
            var lines = ["\(total) bad record\(total == 1 ? "" : "s") in the training data (on_bad_record: error); "
                + "fix them, or set on_bad_record: skip to train without them:"]
            lines += problems.prefix(Self.shownLimit).map { "  \($0)" }
            if total > min(problems.count, Self.shownLimit) {
                lines.append("  … and \(total - min(problems.count, Self.shownLimit)) more")
            }
            return lines.joined(separator: "\n")
        case let .noTemplate(message):
            return message
        case let .unknownTemplate(name, folder, available):
            let list = available.isEmpty ? "it holds no .j2 files" : "available: \(available.joined(separator: ", "))"
            return "template_name \"\(name)\": no \(name).j2 in \(folder) (\(list))"
        case let .badTemplate(path, message):
            return "template \(path): \(message)"
        case let .badOption(name, message):
            return "\(name): \(message)"
        case let .noSamples(files, message):
            return "\(files.joined(separator: ", ")): \(message)"

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
        case let .lossScaleAtMinimum(scale, iteration):
            return "fp16: gradients overflowed at step \(iteration) with the loss scale already at its minimum (\(scale)); "
                + "training cannot continue. Lower the learning rate, lower deepspeed.fp16.min_loss_scale, or train in bf16 "
                + "(sm_80 or newer)"
        }
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a plausible typo
/// (at most a third of the word's length, at least 2 edits allowed), or if one contains the other.
func closestMatch(to word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(word.lowercased(), c.lowercased())
        if best == nil || d < best!.1 { best = (c, d) }
    }
    guard let (name, distance) = best else { return nil }
    let allowed = max(2, word.count / 3)
    if distance <= allowed { return name }
    if word.count >= 4, let sub = candidates.first(where: { $0.contains(word) || (word.contains($0) && $0.count >= 4) }) {
        return sub
    }
    return nil
}

/// Levenshtein distance over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            let sub = prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)
            cur[j] = min(sub, prev[j] + 1, cur[j - 1] + 1)
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}
