// A small strict JSON reader and a compact writer, enough for safetensors headers, shard
// indexes and config.json. Strict because a header is untrusted input: duplicate keys, invalid
// UTF-8, trailing bytes and deep nesting are errors (with the byte offset), never a crash.
// The writer escapes exactly as serde_json does (the Rust safetensors serializer), so the
// headers we write are byte-identical to Python's.

/// A parsed JSON value. Objects keep their key order; integers that fit in Int stay exact.
indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The value for `key` when this is an object.
    subscript(key: String) -> JSONValue? {
        if case let .object(pairs) = self { return pairs.first(where: { $0.0 == key })?.1 }
        return nil
    }

    var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    var intValue: Int? { if case let .integer(i) = self { return i }; return nil }
    var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    var objectValue: [(String, JSONValue)]? { if case let .object(o) = self { return o }; return nil }

    /// A short name of the value's kind for error messages: "a string", "an array"…
    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Why a JSON text failed to parse, and at which byte.
struct JSONParseError: Error, CustomStringConvertible, Sendable {
    let offset: Int
    let reason: String
    var description: String { "\(reason) at byte \(offset)" }
}

/// Parses JSON text from `bytes`.
func parseJSON(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
    var parser = JSONParser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    if parser.pos != bytes.count { throw parser.fail("unexpected text after the JSON value") }
    return value
}

/// Parses JSON text from a byte array.
func parseJSON(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
    do {
        return try bytes.withUnsafeBytes { raw in try parseJSON(raw) }
    } catch let e as JSONParseError {
        throw e
    } catch {
        throw JSONParseError(offset: 0, reason: "\(error)")
    }
}

struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    static let maxDepth = 256

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func fail(_ reason: String) -> JSONParseError { JSONParseError(offset: pos, reason: reason) }

    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            let c = bytes[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < Self.maxDepth else { throw fail("JSON nested deeper than \(Self.maxDepth) levels") }
        guard let c = peek else { throw fail("unexpected end of JSON") }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(printable(c))'")
        }
    }

    mutating func expectWord(_ word: String) throws(JSONParseError) {
        let utf8 = Array(word.utf8)
        guard pos + utf8.count <= bytes.count else { throw fail("unexpected end of JSON") }
        for i in 0..<utf8.count where bytes[pos + i] != utf8[i] {
            throw fail("invalid literal (expected \(word))")
        }
        pos += utf8.count
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        pos += 1
        var pairs: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try parseString()
            if !seen.insert(key).inserted {
                throw JSONParseError(offset: keyOffset, reason: "duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw fail("expected ':' after key \"\(key)\"") }
            pos += 1
            skipWhitespace()
            pairs.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return .object(pairs)
            case nil: throw fail("unexpected end of JSON inside an object")
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return .array(items)
            case nil: throw fail("unexpected end of JSON inside an array")
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    mutating func parseString() throws(JSONParseError) -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        let start = pos
        while true {
            guard pos < bytes.count else { throw JSONParseError(offset: start - 1, reason: "unterminated string") }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw fail("control character in a string (escape it)") }
            if c != UInt8(ascii: "\\") { out.append(c); pos += 1; continue }
            pos += 1
            guard let e = peek else { throw fail("unterminated escape") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
                    else { throw fail("unpaired surrogate in \\u escape") }
                    pos += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw fail("invalid escape '\\\(printable(e))'")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw JSONParseError(offset: start, reason: "string is not valid UTF-8")
        }
        return s
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("unterminated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v * 16 + d
            pos += 1
        }
        return v
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = pos
        var isInteger = true
        if peek == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            throw fail("invalid number")
        }
        if first == UInt8(ascii: "0") { pos += 1 } else { skipDigits() }
        if peek == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard let d = peek, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { throw fail("invalid number") }
            skipDigits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            guard let d = peek, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") else { throw fail("invalid number") }
            skipDigits()
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if isInteger, let i = Int(text) { return .integer(i) }
        guard let d = Double(text) else { throw JSONParseError(offset: start, reason: "invalid number") }
        return .number(d)
    }

    mutating func skipDigits() {
        while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { pos += 1 }
    }

    func printable(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }
}

// MARK: - Writing

/// Appends `s` as a JSON string literal, escaped as serde_json escapes it: `"` `\` and control
/// characters only (`\n`, `\t`…, else `\u00xx` in lower-case hex); non-ASCII stays raw UTF-8.
func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    let hex = Array("0123456789abcdef".utf8)
    for b in s.utf8 {
        switch b {
        case 0x22: out.append(contentsOf: [0x5C, 0x22])
        case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
        case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
        case 0..<0x20:
            out.append(contentsOf: Array("\\u00".utf8))
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        default: out.append(b)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// Appends `value` as compact JSON (no spaces), keys in their stored order.
func appendJSON(_ value: JSONValue, to out: inout [UInt8]) {
    switch value {
    case .null: out.append(contentsOf: Array("null".utf8))
    case let .bool(b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
    case let .integer(i): out.append(contentsOf: Array(String(i).utf8))
    case let .number(d): out.append(contentsOf: Array((d.isFinite ? "\(d)" : "null").utf8))
    case let .string(s): appendJSONString(s, to: &out)
    case let .array(items):
        out.append(UInt8(ascii: "["))
        for (i, item) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSON(item, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    case let .object(pairs):
        out.append(UInt8(ascii: "{"))
        for (i, (k, v)) in pairs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendJSONString(k, to: &out)
            out.append(UInt8(ascii: ":"))
            appendJSON(v, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

/// `value` as compact JSON text.
func compactJSON(_ value: JSONValue) -> String {
    var out: [UInt8] = []
    appendJSON(value, to: &out)
    return String(decoding: out, as: UTF8.self)
}
