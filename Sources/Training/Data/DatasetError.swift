/// Where a record came from: a file and a line (JSONL, and JSON arrays too) plus the record's
/// index in the file (0-based, what a JSON array user counts by).
public struct RecordLocation: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var index: Int
    public var isArrayElement: Bool

    public init(file: String, line: Int, index: Int, isArrayElement: Bool) {
        self.file = file
        self.line = line
        self.index = index
        self.isArrayElement = isArrayElement
    }

    public var description: String {
        isArrayElement ? "\(file):\(line) (record \(index))" : "\(file):\(line)"
    }
}

/// Why a record cannot be trained on. The kinds are what `skip` counts by.
public enum RecordProblemKind: String, Sendable, CaseIterable, Comparable {
    case badJSON = "bad JSON"
    case unknownShape = "unknown shape"
    case badField = "bad field"
    case roleOutOfPlace = "role out of place"
    case noAssistantTurn = "no assistant turn"
    case empty = "empty"
    case templateFailed = "template failed"
    case spansUnrecoverable = "assistant spans unrecoverable"
    /// Preference records (task_type dpo): chosen and rejected do not share their prompt.
    case differentPrompts = "different prompts"
    /// Preference records: chosen and rejected give the same tokens (nothing to prefer).
    case identicalResponses = "identical chosen and rejected"

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One bad record: where, what kind, and a sentence saying what is wrong.
public struct RecordProblem: Equatable, Sendable, CustomStringConvertible {
    public var location: RecordLocation
    public var kind: RecordProblemKind
    public var message: String

    public init(location: RecordLocation, kind: RecordProblemKind, message: String) {
        self.location = location
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(location): \(kind.rawValue): \(message)" }
}

/// The dataset pipeline's errors are cases of TrainingError (the target's one error type); this
/// name stays so that `throw DatasetError.badOption(…)` and `catch DatasetError.noSamples` written
/// before the fold keep compiling. New code names TrainingError.
public typealias DatasetError = TrainingError
