import Foundation

/// JSON arrays of token ids, as `qwenft tokenize` reads and prints them.
public enum IdList {
    /// "[1,2,3]" for the ids.
    public static func json<S: Sequence>(_ ids: S) -> String where S.Element: BinaryInteger {
        "[" + ids.map { String($0) }.joined(separator: ",") + "]"
    }

    /// Parses a JSON array of integers; `source` names the input in errors.
    public static func parse(_ text: String, source: String) throws -> [Int] {
        let any: Any
        do {
            any = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw TokenizerError.malformed(path: source, location: "input", reason: "expected a JSON array of token ids")
        }
        guard let list = any as? [Any] else {
            throw TokenizerError.malformed(path: source, location: "input", reason: "expected a JSON array of token ids")
        }
        return try list.enumerated().map { k, v in
            guard let n = v as? NSNumber, !(v is Bool), n.doubleValue == n.doubleValue.rounded(),
                  abs(n.doubleValue) < 1e15 else {
                throw TokenizerError.malformed(path: source, location: "element \(k)", reason: "\(v) is not an integer token id")
            }
            return n.intValue
        }
    }
}
