import Foundation

/// What to do with a bad record: stop before training (listing them all), or leave it out and
/// say so.
public enum BadRecordPolicy: String, Sendable {
    case error, skip

    /// `on_bad_record` from the config ("error" or "skip").
    public init(configValue: String) throws {
        guard let p = BadRecordPolicy(rawValue: configValue) else {
            throw TrainingError.badOption(name: "on_bad_record", message: "expected \"error\" or \"skip\", got \"\(configValue)\"")
        }
        self = p
    }
}

/// How a dataset is read and tokenised.
public struct DatasetOptions: Sendable {
    /// Longer samples are cut to this many tokens (and counted).
    public var maxSeqLength: Int
    /// Label every token, not only the assistant's.
    public var trainOnPrompt: Bool
    public var onBadRecord: BadRecordPolicy
    /// A folder for the tokenised-dataset cache; nil: no cache.
    public var cacheDirectory: String?
    /// task_type dpo: records are preference pairs; sample 2i is pair i's prompt+chosen, 2i+1
    /// its prompt+rejected, labels −100 on the prompt (see `PreferenceFormats`).
    public var preference = false
    /// Firefly's max_prompt_length (dpo): the prompt keeps its last that many tokens.
    public var maxPromptLength: Int?

    public init(maxSeqLength: Int, trainOnPrompt: Bool = false, onBadRecord: BadRecordPolicy = .error, cacheDirectory: String? = nil) {
        self.maxSeqLength = maxSeqLength
        self.trainOnPrompt = trainOnPrompt
        self.onBadRecord = onBadRecord
        self.cacheDirectory = cacheDirectory
    }

    /// max_seq_length, train_on_prompt and on_bad_record of a training config.
    public init(config: TrainingConfig, cacheDirectory: String?) throws {
        self.init(maxSeqLength: config.maxSeqLength, trainOnPrompt: config.trainOnPrompt,
                  onBadRecord: try BadRecordPolicy(configValue: config.onBadRecord), cacheDirectory: cacheDirectory)
        preference = config.taskType == "dpo"
        maxPromptLength = config.maxPromptLength
    }
}

/// Progress of preprocessing, for the caller to draw: records done of the total.
public struct PreprocessingProgress: Sendable {
    public var recordsDone: Int
    public var recordsTotal: Int
    public var tokens: Int
}

/// What preprocessing found: counts, everything left out and why, where the cache is.
public struct DatasetReport: Sendable {
    public var files: [String] = []
    /// Records read (good and bad).
    public var records = 0
    public var samples = 0
    public var tokens = 0
    public var labelledTokens = 0
    public var longestSample = 0
    /// Samples cut to max_seq_length.
    public var truncated = 0
    /// Samples left out because truncation removed every labelled token, and where a few were.
    public var droppedNoTargets = 0
    public var droppedExamples: [RecordLocation] = []
    /// Bad records by kind (with `skip`), the first `TrainingError.shownLimit` of them, and the total.
    public var skipped: [RecordProblemKind: Int] = [:]
    public var problems: [RecordProblem] = []
    public var problemCount = 0
    public var fromCache = false
    public var cachePath: String?
    public var seconds = 0.0

    /// Preference pairs (two samples each).
    public var preference = false

    /// Lines for the log: what was read, what was cut, what was left out and why.
    public var summary: [String] {
        if preference { return preferenceSummary }
        var lines = ["dataset: \(records) records → \(samples) samples, \(tokens) tokens (\(labelledTokens) labelled), "
            + "longest \(longestSample)" + (fromCache ? ", from cache \(cachePath ?? "")" : String(format: ", %.2f s", seconds))]
        if truncated > 0 { lines.append("dataset: \(truncated) sample\(truncated == 1 ? "" : "s") truncated to max_seq_length") }
        if droppedNoTargets > 0 {
            let at = droppedExamples.prefix(3).map(\.description).joined(separator: ", ")
            lines.append("dataset: \(droppedNoTargets) sample\(droppedNoTargets == 1 ? "" : "s") left out: no labelled token "
                + "within max_seq_length (e.g. \(at)); raise max_seq_length to keep them")
        }
        return lines + skippedRecordLines
    }

    /// The bad records skipped under `on_bad_record: skip` (both dataset kinds report them alike).
    var skippedRecordLines: [String] {
        guard problemCount > 0 else { return [] }
        let kinds = skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", ")
        var lines = ["dataset: skipped \(problemCount) bad record\(problemCount == 1 ? "" : "s") (on_bad_record: skip): \(kinds)"]
        lines += problems.prefix(TrainingError.shownLimit).map { "  \($0)" }
        if problemCount > TrainingError.shownLimit { lines.append("  … and \(problemCount - TrainingError.shownLimit) more") }
        return lines
    }
}

/// Token ids and labels of every sample, concatenated: sample i is `ids[starts[i]..<starts[i+1]]`.
/// Labels are unshifted, as transformers' (the loss predicts labels[t] from position t−1), −100
/// where not trained. Read-only after building: share it between threads.
public final class TokenizedDataset: @unchecked Sendable {
    public let ids: [Int32]
    public let labels: [Int32]
    public let starts: [Int]
    public internal(set) var report: DatasetReport

    init(ids: [Int32], labels: [Int32], starts: [Int], report: DatasetReport) {
        self.ids = ids
        self.labels = labels
        self.starts = starts
        self.report = report
    }

    public var count: Int { starts.count - 1 }
    public func length(_ i: Int) -> Int { starts[i + 1] - starts[i] }
    public func ids(_ i: Int) -> ArraySlice<Int32> { ids[starts[i]..<starts[i + 1]] }
    public func labels(_ i: Int) -> ArraySlice<Int32> { labels[starts[i]..<starts[i + 1]] }
}
