/// Everything in the Training target that a user's input can get wrong: a config key, a value,
/// a DeepSpeed file, a parameter name, a target id. Each description names the culprit and says
/// what to do.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
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
