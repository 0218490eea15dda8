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

/// Errors of the dataset pipeline. Bad records are gathered first, so one run lists them all.
public enum DatasetError: Error, CustomStringConvertible {
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

    /// How many problems an error lists; the rest are counted.
    public static let shownLimit = 20

    public var description: String {
        switch self {
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
        }
    }
}
