import JSON

/// Parses a tokenizer file's JSON; a syntax error names the file, the line and the column.
/// tokenizer.json is read strictly (RFC 8259, as the Rust tokenizers library reads it) except that a
/// repeated key keeps its last value; tokenizer_config.json as Python's `json.loads` reads it.
func parseJSONFile(_ bytes: [UInt8], path: String, options: JSONOptions = .tokenizerFile) throws -> JSONValue {
    guard !bytes.isEmpty else {
        throw TokenizerError.malformed(path: path, location: "line 1, column 1", reason: "the file is empty")
    }
    do {
        return try JSONValue.parse(bytes, options: options)
    } catch {
        let endsEarly = error.offset >= bytes.count || error.reason.hasPrefix("unterminated")
        throw TokenizerError.malformed(path: path, location: "line \(error.line), column \(error.column)",
                                       reason: "invalid JSON: " + (endsEarly ? "the JSON ends too early (\(error.reason))" : error.reason))
    }
}

extension JSONOptions {
    /// tokenizer.json: strict, but a repeated key's last value wins.
    static let tokenizerFile = JSONOptions(duplicateKeys: .lastWins)
}
