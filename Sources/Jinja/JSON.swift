import JSON

// JSON in and out, through the JSON target. Out: transformers' `tojson` filter, which is Python's
// `json.dumps` with `ensure_ascii=False` (and `indent`, `separators`, `sort_keys` when given).
// In: Python's `json.loads` leniency, keeping what Foundation's reader loses — object key order
// and the difference between `1` and `1.0` — so contexts built from JSON files render as
// transformers does.

/// `tojson` of one value: the style its arguments ask for.
struct ToJSON {
    let value: Value
    let style: JSONStyle

    init(value: Value, indent: Value?, separators: Value?, sortKeys: Bool, ensureAscii: Bool) throws {
        self.value = value
        let indentText: String?
        switch indent {
        case .int(let n)?: indentText = String(repeating: " ", count: max(0, n))
        case .string(let s)?: indentText = s
        default: indentText = nil
        }
        var style = JSONStyle(indent: indentText, itemSeparator: indentText == nil ? ", " : ",", keySeparator: ": ",
                              sortKeys: sortKeys, ensureASCII: ensureAscii)
        if case .list(let l)? = separators, l.items.count == 2, case .string(let a) = l.items[0], case .string(let b) = l.items[1] {
            style.itemSeparator = a
            style.keySeparator = b
        }
        self.style = style
    }

    func write() throws -> String {
        var w = JSONWriter(style: style)
        try write(value, level: 0, into: &w)
        return w.text
    }

    /// Appends the JSON text to `out` (the interpreter's output buffer), without a copy.
    func write(into out: inout [UInt8]) throws {
        var w = JSONWriter(style: style)
        swap(&w.bytes, &out)
        defer { swap(&w.bytes, &out) }
        try write(value, level: 0, into: &w)
    }

    func write(_ v: Value, level: Int, into w: inout JSONWriter) throws {
        if level > Value.maxReprDepth { throw RuntimeFailure(message: "Circular reference detected") }
        switch v {
        case .none: w.null()
        case .bool(let b): w.bool(b)
        case .int(let i): w.int(i)
        case .float(let d): w.raw(d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : formatPythonFloat(d))
        case .string(let s): w.string(s)
        case .list(let l):
            try w.array(count: l.items.count) { w, i in try write(l.items[i], level: level + 1, into: &w) }
        case .dict(let d):
            try w.object(count: d.count, key: { d.keys[$0] }) { w, i in try write(d.values[i], level: level + 1, into: &w) }
        default:
            throw RuntimeFailure(message: "Object of type \(v.typeName) is not JSON serializable")
        }
    }
}

/// A JSON syntax error, with the 1-based line and column where it was found.
public struct JSONParseError: Error, CustomStringConvertible {
    public let message: String
    public let line: Int
    public let column: Int
    public var description: String { "invalid JSON at line \(line), column \(column): \(message)" }
}

/// Builds template values for the JSON parser: a repeated key keeps its first place and its last
/// value, as a Python dict does.
struct ValueBuilder: JSONBuilder {
    func null() -> Value { .none }
    func bool(_ b: Bool) -> Value { .bool(b) }
    func int(_ i: Int) -> Value { .int(i) }
    func double(_ d: Double) -> Value { .float(d) }
    func string(_ s: String) -> Value { .string(s) }
    func beginArray() -> [Value] { [] }
    func append(_ value: Value, to array: inout [Value]) { array.append(value) }
    func endArray(_ array: [Value]) -> Value { .array(array) }
    func beginObject() -> DictBox { DictBox() }
    func add(_ key: String, _ value: Value, to object: inout DictBox) -> Bool {
        let fresh = object[key] == nil
        object[key] = value
        return fresh
    }
    func endObject(_ object: DictBox) -> Value { .dict(object) }
}

extension Value {
    /// Parses JSON text into a `Value` as Python's `json.loads` reads it: objects keep their key
    /// order, `1` is an int and `1.0` a float, NaN and Infinity are read, a repeated key's last
    /// value wins.
    public static func parseJSON(_ text: String) throws -> Value {
        var builder = ValueBuilder()
        do {
            return try JSONParser.parse(text, options: .python, builder: &builder)
        } catch {
            throw JSONParseError(message: error.reason, line: error.line, column: error.column)
        }
    }
}
