import Foundation

/// A JSON value that keeps what config handling needs and Foundation loses: object key order
/// (the resolved config prints in the order it was read), integer vs fractional numbers (an int
/// key given 1.5 is an error), and duplicate keys (an error, not a silent last-wins).
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// `isInteger`: written without fraction or exponent (`3`, not `3.0` or `3e0`).
    case number(Double, isInteger: Bool)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public static func int(_ n: Int) -> JSONValue { .number(Double(n), isInteger: true) }
    public static func double(_ x: Double) -> JSONValue { .number(x, isInteger: false) }

    /// The value of `key` in an object (nil for other kinds or a missing key).
    public subscript(key: String) -> JSONValue? {
        if case let .object(pairs) = self { return pairs.first(where: { $0.0 == key })?.1 }
        return nil
    }

    /// "a string", "a number", … for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return "the boolean \(b)"
        case let .number(_, isInt): return isInt ? "the integer \(compactText)" : "the number \(compactText)"
        case let .string(s): return "the string \"\(s)\""
        case .array: return "a list"
        case .object: return "an object"
        }
    }

    /// One-line JSON text.
    public var compactText: String { render(indent: nil, level: 0) }

    /// Indented JSON text (2 spaces), keys in their order, numbers in shortest round-trip form.
    public var prettyText: String { render(indent: "  ", level: 0) }

    private func render(indent: String?, level: Int) -> String {
        let nl = indent == nil ? "" : "\n"
        let pad = { (n: Int) in String(repeating: indent ?? "", count: n) }
        let sep = indent == nil ? ":" : ": "
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .number(x, isInt):
            if !x.isFinite { return "null" }
            if isInt, abs(x) < 9.007_199_254_740_992e15 { return String(Int64(x)) }
            return "\(x)"
        case let .string(s): return Self.quote(s)
        case let .array(items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) {
                return "[" + items.map { $0.render(indent: nil, level: 0) }.joined(separator: ", ") + "]"
            }
            return "[" + nl + items.map { pad(level + 1) + $0.render(indent: indent, level: level + 1) }
                .joined(separator: "," + nl) + nl + pad(level) + "]"
        case let .object(pairs):
            if pairs.isEmpty { return "{}" }
            return "{" + nl + pairs.map { pad(level + 1) + Self.quote($0.0) + sep + $0.1.render(indent: indent, level: level + 1) }
                .joined(separator: "," + nl) + nl + pad(level) + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// A JSON syntax error at a line and column of its text.
public struct JSONSyntaxError: Error, CustomStringConvertible, Equatable {
    public let line: Int
    public let column: Int
    public let message: String
    public var description: String { "line \(line), column \(column): \(message)" }
}

extension JSONValue {
    /// Parses JSON text (RFC 8259). Duplicate keys in an object are an error.
    public static func parse(_ text: String) throws -> JSONValue {
        var p = JSONParser(Array(text.utf8))
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i < p.b.count { throw p.error("unexpected text after the JSON value") }
        return v
    }
}

private struct JSONParser {
    let b: [UInt8]
    var i = 0
    init(_ bytes: [UInt8]) { b = bytes }

    func error(_ message: String) -> JSONSyntaxError {
        var line = 1, col = 1
        for k in 0 ..< min(i, b.count) {
            if b[k] == UInt8(ascii: "\n") { line += 1; col = 1 } else if b[k] & 0xC0 != 0x80 { col += 1 }
        }
        return JSONSyntaxError(line: line, column: col, message: message)
    }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < 512 else { throw error("nesting deeper than 512") }
        guard i < b.count else { throw error("unexpected end of text, a value was expected") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return try number()
        default: throw error("unexpected character '\(String(decoding: [b[i]], as: UTF8.self))'")
        }
    }

    mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= b.count, Array(b[i ..< i + w.count]) == w else { throw error("invalid literal, expected \(word)") }
        i += w.count
    }

    mutating func number() throws -> JSONValue {
        let start = i
        var isInteger = true
        if b[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int { let s = i; while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }; return i - s }
        guard digits() > 0 else { throw error("invalid number") }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard digits() > 0 else { throw error("invalid number: digits expected after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw error("invalid number: digits expected in the exponent") }
        }
        let text = String(decoding: b[start ..< i], as: UTF8.self)
        guard let x = Double(text) else { throw error("invalid number \(text)") }
        return .number(x, isInteger: isInteger)
    }

    mutating func string() throws -> String {
        i += 1
        var bytes: [UInt8] = []
        while true {
            guard i < b.count else { throw error("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw error("control character in a string (escape it)") }
            if c != UInt8(ascii: "\\") { bytes.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw error("unterminated escape") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800 ..< 0xDC00).contains(code), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try hex4()
                    guard (0xDC00 ..< 0xE000).contains(low) else { throw error("invalid surrogate pair") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("invalid escape \\\(String(decoding: [e], as: UTF8.self))")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i ..< i + 4], as: UTF8.self), radix: 16) else {
            throw error("invalid \\u escape")
        }
        i += 4
        return v
    }

    mutating func array(depth: Int) throws -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < b.count else { throw error("unterminated list, ']' expected") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw error("',' or ']' expected in a list")
        }
    }

    mutating func object(depth: Int) throws -> JSONValue {
        i += 1
        var pairs: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw error("a key in double quotes expected") }
            let keyStart = i
            let key = try string()
            guard seen.insert(key).inserted else {
                i = keyStart
                throw error("duplicate key \"\(key)\"")
            }
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw error("':' expected after the key \"\(key)\"") }
            i += 1
            skipSpace()
            pairs.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard i < b.count else { throw error("unterminated object, '}' expected") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            throw error("',' or '}' expected in an object")
        }
    }
}
