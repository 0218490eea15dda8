/// Everything that can go wrong loading a tokenizer or decoding ids. Each case names the file and
/// the entry at fault, and what to do about it.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file does not exist or cannot be read.
    case unreadable(path: String, reason: String)
    /// The file is not what it should be: bad JSON, a line that is not "base64 rank", a key of the
    /// wrong type. `location` is a line, an offset or a JSON key path.
    case malformed(path: String, location: String, reason: String)
    /// A merge or an added token names a token the vocabulary does not have.
    case unknownToken(path: String, location: String, token: String)
    /// A feature of tokenizer.json this tokenizer does not implement.
    case unsupported(path: String, location: String, what: String)
    /// An id handed to `decode` that names no token.
    case idOutOfRange(id: Int, position: Int, vocabularySize: Int)
    /// A model folder without any tokenizer file we know.
    case noTokenizerInFolder(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "cannot read tokenizer file \(path): \(reason)"
        case let .malformed(path, location, reason):
            return "\(path): \(location): \(reason)"
        case let .unknownToken(path, location, token):
            return "\(path): \(location): names the token \(quoted(token)), which is not in the vocabulary; "
                + "the file is inconsistent (regenerate it from the model's tokenizer)"
        case let .unsupported(path, location, what):
            return "\(path): \(location): \(what) is not supported by qwenft's tokenizer"
        case let .idOutOfRange(id, position, size):
            return "token id \(id) at position \(position) is out of range: the vocabulary has ids 0..<\(size)"
        case let .noTokenizerInFolder(path):
            return "\(path) has neither tokenizer.json nor qwen.tiktoken; pass --tokenizer FILE or a model folder that has one"
        }
    }
}

/// A token shown in an error message: quoted, with control characters escaped, cut if long.
func quoted(_ s: String) -> String {
    var out = "\""
    for (n, u) in s.unicodeScalars.enumerated() {
        if n == 60 { out += "…"; break }
        if u.value < 0x20 || u == "\"" || u == "\\" { out += u.escaped(asASCII: true) } else { out.unicodeScalars.append(u) }
    }
    return out + "\""
}
