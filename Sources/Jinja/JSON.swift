// JSON in and out. Out: transformers' `tojson` filter, which is Python's `json.dumps` with
// `ensure_ascii=False` (and `indent`, `separators`, `sort_keys` when given). In: a JSON parser
// that keeps what Python's `json.loads` keeps and Foundation's does not — object key order and the
// difference between `1` and `1.0` — so contexts built from JSON files render as transformers does.

struct JSONWriter {
    let value: Value
    let indent: String?
    let itemSeparator: String
    let keySeparator: String
    let sortKeys: Bool
    let ensureAscii: Bool

    init(value: Value, indent: Value?, separators: Value?, sortKeys: Bool, ensureAscii: Bool) throws {
        self.value = value
        switch indent {
        case .int(let n)?: self.indent = String(repeating: " ", count: max(0, n))
        case .string(let s)?: self.indent = s
        default: self.indent = nil
        }
        if case .list(let l)? = separators, l.items.count == 2, case .string(let a) = l.items[0], case .string(let b) = l.items[1] {
            itemSeparator = a
            keySeparator = b
        } else {
            itemSeparator = self.indent == nil ? ", " : ","
            keySeparator = ": "
        }
        self.sortKeys = sortKeys
        self.ensureAscii = ensureAscii
    }

    func write() throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        try write(value, level: 0, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func newline(_ level: Int, into out: inout [UInt8]) {
        guard let indent else { return }
        out.append(0x0A)
        for _ in 0..<level { out.append(contentsOf: indent.utf8) }
    }

    func write(_ v: Value, level: Int, into out: inout [UInt8]) throws {
        if level > Value.maxReprDepth { throw RuntimeFailure(message: "Circular reference detected") }
        switch v {
        case .none: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .float(let d):
            let text = d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : formatPythonFloat(d)
            out.append(contentsOf: text.utf8)
        case .string(let s): appendJSONString(s, ensureAscii: ensureAscii, into: &out)
        case .list(let l):
            if l.items.isEmpty { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, item) in l.items.enumerated() {
                if i > 0 { out.append(contentsOf: itemSeparator.utf8) }
                newline(level + 1, into: &out)
                try write(item, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out.append(UInt8(ascii: "]"))
        case .dict(let d):
            if d.count == 0 { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            let order = sortKeys ? d.keys.indices.sorted { d.keys[$0].utf8.lexicographicallyPrecedes(d.keys[$1].utf8) } : Array(d.keys.indices)
            for (n, i) in order.enumerated() {
                if n > 0 { out.append(contentsOf: itemSeparator.utf8) }
                newline(level + 1, into: &out)
                appendJSONString(d.keys[i], ensureAscii: ensureAscii, into: &out)
                out.append(contentsOf: keySeparator.utf8)
                try write(d.values[i], level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out.append(UInt8(ascii: "}"))
        default:
            throw RuntimeFailure(message: "Object of type \(v.typeName) is not JSON serializable")
        }
    }
}

/// A JSON string literal as Python's json module writes it.
func appendJSONString(_ s: String, ensureAscii: Bool, into out: inout [UInt8]) {
    out.append(0x22)

    // Fast path: nothing to escape, copy the bytes.
    let plain = s.utf8.withContiguousStorageIfAvailable { buf -> Bool in
        for b in buf where b < 0x20 || b == 0x22 || b == 0x5C || (ensureAscii && b > 0x7E) { return false }
        out.append(contentsOf: buf)
        return true
    }
    if plain == true {
        out.append(0x22)
        return
    }

    for c in s.unicodeScalars {
        switch c {
        case "\"": out.append(contentsOf: "\\\"".utf8)
        case "\\": out.append(contentsOf: "\\\\".utf8)
        case "\n": out.append(contentsOf: "\\n".utf8)
        case "\r": out.append(contentsOf: "\\r".utf8)
        case "\t": out.append(contentsOf: "\\t".utf8)
        case "\u{08}": out.append(contentsOf: "\\b".utf8)
        case "\u{0C}": out.append(contentsOf: "\\f".utf8)
        default:
            if c.value < 0x20 || (ensureAscii && c.value > 0x7E) {
                if c.value > 0xFFFF {
                    let v = c.value - 0x10000
                    out.append(contentsOf: ("\\u" + hex(0xD800 + (v >> 10), width: 4) + "\\u" + hex(0xDC00 + (v & 0x3FF), width: 4)).utf8)
                } else {
                    out.append(contentsOf: ("\\u" + hex(c.value, width: 4)).utf8)
                }
            } else {
                out.append(contentsOf: String(c).utf8)
            }
        }
    }
    out.append(0x22)
}

/// A JSON syntax error, with the 1-based line and column where it was found.
public struct JSONParseError: Error, CustomStringConvertible {
    public let message: String
    public let line: Int
    public let column: Int
    public var description: String { "invalid JSON at line \(line), column \(column): \(message)" }
}

extension Value {
    /// Parses JSON text into a `Value`: objects keep their key order, `1` is an int and `1.0` a float.
    public static func parseJSON(_ text: String) throws -> Value {
        var p = JSONParser(bytes: Array(text.utf8))
        p.skipSpace()
        let v = try p.parseValue(depth: 0)
        p.skipSpace()
        if p.pos < p.bytes.count { throw p.error("unexpected data after the JSON value") }
        return v
    }
}

struct JSONParser {
    let bytes: [UInt8]
    var pos = 0

    func error(_ message: String) -> JSONParseError {
        let (l, c) = SourceMap(bytes: bytes).location(pos)
        return JSONParseError(message: message, line: l, column: c)
    }

    mutating func skipSpace() {
        while pos < bytes.count, bytes[pos] == 0x20 || bytes[pos] == 0x0A || bytes[pos] == 0x0D || bytes[pos] == 0x09 { pos += 1 }
    }

    mutating func expect(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, bytes[pos..<pos + w.count].elementsEqual(w) else { throw error("expected '\(word)'") }
        pos += w.count
    }

    mutating func parseValue(depth: Int) throws -> Value {
        if depth > 512 { throw error("nesting deeper than 512 levels") }
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            let d = DictBox()
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(d) }
            while true {
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                pos += 1
                skipSpace()
                d[key] = try parseValue(depth: depth + 1)
                skipSpace()
                guard pos < bytes.count else { throw error("unexpected end of input inside an object") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dict(d) }
                throw error("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [Value] = []
            skipSpace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard pos < bytes.count else { throw error("unexpected end of input inside an array") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw error("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .none
        case UInt8(ascii: "N"): try expect("NaN"); return .float(.nan)
        case UInt8(ascii: "I"): try expect("Infinity"); return .float(.infinity)
        default: return try parseNumber()
        }
    }

    mutating func parseNumber() throws -> Value {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "I") { try expect("Infinity"); return .float(-.infinity) }
        }
        var isFloat = false
        while pos < bytes.count {
            let b = bytes[pos]
            if b >= 0x30 && b <= 0x39 { pos += 1; continue }
            if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") || ((b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) && pos > start) {
                isFloat = true
                pos += 1
                continue
            }
            break
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        if !isFloat, let i = Int(text) { return .int(i) }
        guard !text.isEmpty, text != "-", let d = Double(text) else {
            pos = start
            throw error("unexpected character")
        }
        return .float(d)
    }

    mutating func parseString() throws -> String {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let b = bytes[pos]
            pos += 1
            if b == UInt8(ascii: "\"") { break }
            if b != UInt8(ascii: "\\") { out.append(b); continue }
            guard pos < bytes.count else { throw error("unterminated escape") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if code >= 0xD800 && code < 0xDC00, pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                    let save = pos
                    pos += 2
                    let low = try hex4()
                    if low >= 0xDC00 && low < 0xE000 {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        pos = save
                    }
                }
                // A lone surrogate cannot be UTF-8: it becomes U+FFFD.
                let scalar = UnicodeScalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("bad escape '\\\(String(UnicodeScalar(e)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[pos..<pos + 4], as: UTF8.self), radix: 16) else {
            throw error("bad \\u escape")
        }
        pos += 4
        return v
    }
}
