// One JSON byte parser for every reader in qwenft: safetensors headers and indexes (strict:
// untrusted input), configs, tokenizer files, and dataset records (Python's json.loads leniency).
//
// It is generic over a `JSONBuilder` so that each caller builds its own values while parsing —
// Jinja builds template values, the tokenizer fills its vocabulary — with no intermediate tree.
// Everything is @inlinable so the builder calls specialise across the module boundary (the
// dataset and tokenizer.json loads are hot paths).
//
// Errors carry the byte offset and the 1-based line and column (columns count Unicode scalars);
// each target words them its own way ("at byte N", "line L, column C").

/// Why a JSON text failed to parse, and where.
public struct JSONError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String
    /// Byte offset from the start of the text.
    public let offset: Int
    public let line: Int
    public let column: Int

    public init(reason: String, offset: Int, line: Int, column: Int) {
        self.reason = reason
        self.offset = offset
        self.line = line
        self.column = column
    }

    public var description: String { "line \(line), column \(column): \(reason)" }
}

/// What the parser accepts beyond RFC 8259's grammar, and its limits.
public struct JSONOptions: Sendable {
    public enum DuplicateKeys: Sendable {
        /// A key repeated in one object is an error (at the second key).
        case error
        /// The builder is told and keeps what it keeps (JSONValueBuilder: the last value).
        case lastWins
    }

    public var duplicateKeys: DuplicateKeys
    /// Nesting deeper than this is an error, never a stack overflow.
    public var maxDepth: Int
    /// Accept Python's `NaN`, `Infinity` and `-Infinity`.
    public var nonFiniteLiterals: Bool
    /// Accept raw control characters in strings, and turn lone surrogate escapes and invalid
    /// UTF-8 into U+FFFD instead of failing.
    public var lenientStrings: Bool

    public init(duplicateKeys: DuplicateKeys = .error, maxDepth: Int = 256, nonFiniteLiterals: Bool = false,
                lenientStrings: Bool = false) {
        self.duplicateKeys = duplicateKeys
        self.maxDepth = maxDepth
        self.nonFiniteLiterals = nonFiniteLiterals
        self.lenientStrings = lenientStrings
    }

    /// Untrusted input: strict grammar, duplicate keys and invalid UTF-8 are errors.
    public static let strict = JSONOptions()
    /// What Python's `json.loads` reads (datasets, template contexts): last duplicate wins, NaN
    /// and Infinity, lenient strings.
    public static let python = JSONOptions(duplicateKeys: .lastWins, maxDepth: 513, nonFiniteLiterals: true,
                                           lenientStrings: true)
}

/// Receives the values the parser reads. Containers are built bottom-up: begin, add each child,
/// end. `add` returns false when the object already had `key`.
public protocol JSONBuilder {
    associatedtype Value
    associatedtype Array
    associatedtype Object
    mutating func null() -> Value
    mutating func bool(_ b: Bool) -> Value
    mutating func int(_ i: Int) -> Value
    mutating func double(_ d: Double) -> Value
    mutating func string(_ s: String) -> Value
    mutating func beginArray() -> Array
    mutating func append(_ value: Value, to array: inout Array)
    mutating func endArray(_ array: Array) -> Value
    mutating func beginObject() -> Object
    mutating func add(_ key: String, _ value: Value, to object: inout Object) -> Bool
    mutating func endObject(_ object: Object) -> Value
}

public struct JSONParser<Builder: JSONBuilder> {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline let options: JSONOptions
    @usableFromInline var builder: Builder
    @usableFromInline var pos = 0

    @inlinable init(bytes: UnsafeRawBufferPointer, options: JSONOptions, builder: Builder) {
        self.bytes = bytes
        self.options = options
        self.builder = builder
    }

    /// Parses one JSON value that fills `bytes` (surrounding whitespace allowed).
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: JSONOptions = .strict,
                             builder: inout Builder) throws(JSONError) -> Builder.Value {
        var p = JSONParser(bytes: bytes, options: options, builder: builder)
        defer { builder = p.builder }
        p.skipSpace()
        let value = try p.value(depth: 0)
        p.skipSpace()
        if p.pos != bytes.count { throw p.fail("unexpected text after the JSON value") }
        return value
    }

    @inlinable
    public static func parse(_ bytes: [UInt8], options: JSONOptions = .strict,
                             builder: inout Builder) throws(JSONError) -> Builder.Value {
        let result: Result<Builder.Value, JSONError> = bytes.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try parse(raw, options: options, builder: &builder)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    @inlinable
    public static func parse(_ text: String, options: JSONOptions = .strict,
                             builder: inout Builder) throws(JSONError) -> Builder.Value {
        var text = text
        let result: Result<Builder.Value, JSONError> = text.withUTF8 { utf8 in
            do throws(JSONError) { return .success(try parse(UnsafeRawBufferPointer(utf8), options: options, builder: &builder)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    // MARK: Grammar

    @inlinable func fail(_ reason: String) -> JSONError { jsonError(reason, at: pos, in: bytes) }
    @inlinable func fail(_ reason: String, at offset: Int) -> JSONError { jsonError(reason, at: offset, in: bytes) }

    @inlinable var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    @inlinable mutating func skipSpace() {
        while pos < bytes.count {
            let c = bytes[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    @inlinable mutating func value(depth: Int) throws(JSONError) -> Builder.Value {
        guard depth < options.maxDepth else { throw fail("JSON nested deeper than \(options.maxDepth) levels") }
        guard let c = peek else { throw fail("unexpected end of JSON") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return builder.string(try string())
        case UInt8(ascii: "t"): try literal("true"); return builder.bool(true)
        case UInt8(ascii: "f"): try literal("false"); return builder.bool(false)
        case UInt8(ascii: "n"): try literal("null"); return builder.null()
        case UInt8(ascii: "N") where options.nonFiniteLiterals: try literal("NaN"); return builder.double(.nan)
        case UInt8(ascii: "I") where options.nonFiniteLiterals: try literal("Infinity"); return builder.double(.infinity)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character '\(printable(c))'")
        }
    }

    @inlinable mutating func literal(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("unexpected end of JSON") }
        let w = word.utf8Start
        for i in 0..<n where bytes[pos + i] != w[i] { throw fail("invalid literal (expected \(word))") }
        pos += n
    }

    @inlinable mutating func object(depth: Int) throws(JSONError) -> Builder.Value {
        pos += 1
        var object = builder.beginObject()
        skipSpace()
        if peek == UInt8(ascii: "}") { pos += 1; return builder.endObject(object) }
        while true {
            skipSpace()
            guard peek == UInt8(ascii: "\"") else {
                throw fail(peek == nil ? "unexpected end of JSON inside an object" : "expected a string key")
            }
            let keyOffset = pos
            let key = try string()
            skipSpace()
            guard peek == UInt8(ascii: ":") else {
                throw fail(peek == nil ? "unexpected end of JSON inside an object" : "expected ':' after key \"\(key)\"")
            }
            pos += 1
            skipSpace()
            let v = try value(depth: depth + 1)
            if !builder.add(key, v, to: &object), options.duplicateKeys == .error {
                throw fail("duplicate key \"\(key)\"", at: keyOffset)
            }
            skipSpace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return builder.endObject(object)
            case nil: throw fail("unexpected end of JSON inside an object")
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    @inlinable mutating func array(depth: Int) throws(JSONError) -> Builder.Value {
        pos += 1
        var array = builder.beginArray()
        skipSpace()
        if peek == UInt8(ascii: "]") { pos += 1; return builder.endArray(array) }
        while true {
            skipSpace()
            let v = try value(depth: depth + 1)
            builder.append(v, to: &array)
            skipSpace()
            switch peek {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return builder.endArray(array)
            case nil: throw fail("unexpected end of JSON inside an array")
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    /// A string literal at `pos` (the opening quote). Runs without escapes become the String
    /// straight from the input bytes.
    @inlinable mutating func string() throws(JSONError) -> String {
        let quote = pos
        pos += 1
        let start = pos
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
            pos += 1
        }
        guard pos < bytes.count else { throw fail("unterminated string", at: quote) }
        if bytes[pos] == UInt8(ascii: "\"") {
            let s = try makeString(UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), at: start)
            pos += 1
            return s
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard pos < bytes.count else { throw fail("unterminated string", at: quote) }
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 && !options.lenientStrings { throw fail("control character in a string (escape it)") }
            if c != UInt8(ascii: "\\") {
                // A run of plain bytes up to the next quote, escape or control character, in one copy.
                var end = pos + 1
                while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[pos..<end]))
                pos = end
                continue
            }
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
            case UInt8(ascii: "u"): appendUTF8(try unicodeEscape(), to: &out)
            default: throw fail("invalid escape '\\\(printable(e))'")
            }
        }
        let result: Result<String, JSONError> = out.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try makeString(raw, at: start)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The String of a run of UTF-8 (invalid bytes are an error, or U+FFFD when lenient). The
    /// standard library's `String(validating:)` is not specialised and costs a metadata lookup per
    /// call, which tokenizer.json's 300,000 strings feel.
    @inlinable func makeString(_ utf8: UnsafeRawBufferPointer, at offset: Int) throws(JSONError) -> String {
        if !options.lenientStrings && !isValidUTF8(utf8) { throw fail("string is not valid UTF-8", at: offset) }
        return utf8.withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
    }

    /// The scalar of a `\uXXXX` escape (after the `u`), joining a surrogate pair.
    @inlinable mutating func unicodeEscape() throws(JSONError) -> UInt32 {
        let code = try hex4()
        if (0xD800..<0xDC00).contains(code), pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
            let save = pos
            pos += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low) { return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) }
            pos = save
        }
        if (0xD800..<0xE000).contains(code) {
            // A lone surrogate cannot be UTF-8.
            guard options.lenientStrings else { throw fail("unpaired surrogate in \\u escape") }
            return 0xFFFD
        }
        return code
    }

    @inlinable mutating func hex4() throws(JSONError) -> UInt32 {
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

    /// A number: an Int when it has no fraction or exponent and fits, else a Double.
    @inlinable mutating func number() throws(JSONError) -> Builder.Value {
        let start = pos
        let negative = bytes[pos] == UInt8(ascii: "-")
        if negative {
            pos += 1
            if options.nonFiniteLiterals, peek == UInt8(ascii: "I") { try literal("Infinity"); return builder.double(-.infinity) }
        }
        guard let first = peek, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { throw fail("invalid number") }
        var int = 0, overflow = false
        if first == UInt8(ascii: "0") {
            pos += 1
        } else {
            while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                let d = Int(c - UInt8(ascii: "0"))
                let (m, o1) = int.multipliedReportingOverflow(by: 10)
                let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
                overflow = overflow || o1 || o2
                int = s
                pos += 1
            }
        }
        var isInteger = true
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
        if isInteger && !overflow { return builder.int(int) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        guard let d = Double(text) else { throw fail("invalid number", at: start) }
        return builder.double(d)
    }

    @inlinable mutating func skipDigits() {
        while let c = peek, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { pos += 1 }
    }
}

@inlinable func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case ..<0x80:
        out.append(UInt8(scalar))
    case ..<0x800:
        out.append(UInt8(0xC0 | (scalar >> 6)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    case ..<0x10000:
        out.append(UInt8(0xE0 | (scalar >> 12)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    default:
        out.append(UInt8(0xF0 | (scalar >> 18)))
        out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (scalar & 0x3F)))
    }
}

/// Whether `b` is well-formed UTF-8 (no overlong forms, surrogates or scalars past U+10FFFF).
@inlinable func isValidUTF8(_ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = b.count
    while i < n {
        let c = b[i]
        if c < 0x80 { i += 1; continue }
        // The length of the sequence and the range its second byte must fall in.
        let length: Int, low: UInt8, high: UInt8
        switch c {
        case 0xC2...0xDF: (length, low, high) = (2, 0x80, 0xBF)
        case 0xE0: (length, low, high) = (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, low, high) = (3, 0x80, 0xBF)
        case 0xED: (length, low, high) = (3, 0x80, 0x9F)
        case 0xF0: (length, low, high) = (4, 0x90, 0xBF)
        case 0xF1...0xF3: (length, low, high) = (4, 0x80, 0xBF)
        case 0xF4: (length, low, high) = (4, 0x80, 0x8F)
        default: return false
        }
        guard i + length <= n, b[i + 1] >= low, b[i + 1] <= high else { return false }
        for k in 2..<length where b[i + k] & 0xC0 != 0x80 { return false }
        i += length
    }
    return true
}

@inlinable func printable(_ c: UInt8) -> String {
    c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
}

/// The error at byte `offset`, with its line and column (only computed on failure).
@usableFromInline func jsonError(_ reason: String, at offset: Int, in bytes: UnsafeRawBufferPointer) -> JSONError {
    var line = 1, column = 1
    for i in 0..<min(max(offset, 0), bytes.count) {
        let b = bytes[i]
        if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
    }
    return JSONError(reason: reason, offset: offset, line: line, column: column)
}
