import JSON

/// JSON arrays of token ids, as `qwenft tokenize` reads and prints them.
public enum IdList {
    /// "[1,2,3]" for the ids.
    public static func json<S: Sequence>(_ ids: S) -> String where S.Element: BinaryInteger {
        "[" + ids.map { String($0) }.joined(separator: ",") + "]"
    }

    /// Parses a JSON array of integers; `source` names the input in errors.
    public static func parse(_ text: String, source: String) throws -> [Int] {
        let root: JSONValue
        do {
            root = try parseJSONFile(Array(text.utf8), path: source)
        } catch {
            throw TokenizerError.malformed(path: source, location: "input", reason: "expected a JSON array of token ids (\(error))")
        }
        guard let items = root.arrayValue else {
            throw TokenizerError.malformed(path: source, location: "input", reason: "expected a JSON array of token ids, found \(root.kind)")
        }
        return try items.enumerated().map { k, v in
            guard let n = v.intValue else {
                throw TokenizerError.malformed(path: source, location: "element \(k)", reason: "expected an integer token id, found \(v.kind)")
            }
            return n
        }
    }
}
