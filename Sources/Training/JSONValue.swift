import JSON

/// The config files' JSON value: the JSON target's, which keeps what config handling needs and
/// Foundation loses — object key order (the resolved config prints in the order it was read),
/// integers apart from fractional numbers (an int key given 1.5 is an error), and duplicate keys
/// (an error, not a silent last-wins, in `parse`'s strict default).
public typealias JSONValue = JSON.JSONValue

/// A JSON syntax error at a line and column (and byte) of its text.
public typealias JSONSyntaxError = JSON.JSONError

extension JSONValue {
    /// "a string", "a number", … for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return "the boolean \(b)"
        case .int: return "the integer \(compactText)"
        case .double: return "the number \(compactText)"
        case let .string(s): return "the string \"\(s)\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// One-line JSON text (arrays of scalars as `[1, 2]`, objects as `{"a":1}`).
    public var compactText: String { text(.configCompact) }

    /// Indented JSON text (2 spaces), keys in their order, arrays of scalars on one line,
    /// numbers in shortest round-trip form.
    public var prettyText: String { text(.configPretty) }
}

extension JSONStyle {
    static let configCompact = JSONStyle(indent: nil, itemSeparator: ",", keySeparator: ":", scalarArraySeparator: ", ")
    static let configPretty = JSONStyle(indent: "  ", itemSeparator: ",", keySeparator: ": ", scalarArraySeparator: ", ")
}
