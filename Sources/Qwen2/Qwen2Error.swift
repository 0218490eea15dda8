/// Everything that can go wrong loading or running a Qwen2 model. Each case carries what a user
/// needs to fix it: the file, the key or tensor, and what was expected.
public enum Qwen2Error: Error, CustomStringConvertible, Equatable {
    /// A file the model folder must have is absent.
    case missingFile(path: String, hint: String)
    /// A JSON file could not be parsed, or a key has the wrong type.
    case badJSON(path: String, detail: String)
    /// A config value is outside what Qwen2 supports.
    case unsupportedConfig(path: String, key: String, detail: String)
    /// Tensors missing, unexpected or of the wrong shape / dtype, all listed at once.
    case badTensors(path: String, problems: [String])
    /// A LoRA adapter that does not fit the model it is applied to.
    case badAdapter(path: String, detail: String)
    /// An input (prompt, ids, batch) the model cannot take.
    case badInput(String)

    public var description: String {
        switch self {
        case let .missingFile(path, hint):
            return "\(path): no such file. \(hint)"
        case let .badJSON(path, detail):
            return "\(path): \(detail)"
        case let .unsupportedConfig(path, key, detail):
            return "\(path): \"\(key)\": \(detail)"
        case let .badTensors(path, problems):
            let shown = problems.prefix(20).joined(separator: "\n  ")
            let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
            return "\(path): the weights do not match config.json (\(problems.count) problem"
                + (problems.count == 1 ? "" : "s") + "):\n  \(shown)\(more)"
        case let .badAdapter(path, detail):
            return "\(path): \(detail)"
        case let .badInput(detail):
            return detail
        }
    }
}
