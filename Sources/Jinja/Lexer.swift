// Lexer: template source → tokens. Whitespace control (`{%-`, `-%}`, `{{-`, `-}}`, `{#-`, `-#}`,
// `{%+`, `+%}`), `trim_blocks` and `lstrip_blocks` are applied here, on the data between tags,
// exactly where jinja2's lexer applies them — never by rewriting the source, which would also
// change string literals.

enum TokenKind: Equatable {
    case text(String)
    case variableBegin, variableEnd
    case blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token {
    var kind: TokenKind
    /// Byte offset in the (newline-normalised) source, for line:column in errors.
    var offset: Int
}

/// Where a byte offset lies, as 1-based line and column (columns count Unicode scalars).
struct SourceMap {
    let bytes: [UInt8]

    func location(_ offset: Int) -> (line: Int, column: Int) {
        var line = 1, column = 1
        var i = 0
        let end = min(offset, bytes.count)
        while i < end {
            let b = bytes[i]
            if b == 0x0A {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
            i += 1
        }
        return (line, column)
    }
}

/// jinja2 turns every line break Python's `splitlines` knows into `\n` and drops one trailing
/// newline (`keep_trailing_newline=False`).
func normalizeNewlines(_ source: String, keepTrailingNewline: Bool) -> String {
    var out = String()
    out.reserveCapacity(source.utf8.count)
    var scalars = source.unicodeScalars[...]
    while let s = scalars.popFirst() {
        switch s.value {
        case 0x0D:
            if scalars.first == "\n" { scalars.removeFirst() }
            out.unicodeScalars.append("\n")
        case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
            out.unicodeScalars.append("\n")
        default:
            out.unicodeScalars.append(s)
        }
    }
    if !keepTrailingNewline, out.hasSuffix("\n") { out.removeLast() }
    return out
}

struct Lexer {
    let src: [UInt8]
    let options: TemplateOptions
    var pos = 0
    var tokens: [Token] = []
    /// True when the data about to be read begins a line (template start, or the previous tag's
    /// match ended with a newline): `lstrip_blocks` then strips a whitespace-only first line too.
    var lineStarting = true

    init(source: String, options: TemplateOptions) {
        self.src = Array(source.utf8)
        self.options = options
    }

    func error(_ message: String, at offset: Int) -> JinjaError {
        let (l, c) = SourceMap(bytes: src).location(offset)
        return .syntax(message: message, line: l, column: c)
    }

    @inline(__always) func byte(_ i: Int) -> UInt8 { i < src.count ? src[i] : 0 }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }

    mutating func tokenize() throws -> [Token] {
        while pos < src.count {
            // Find the next tag opener.
            var i = pos
            var found = -1
            while i + 1 < src.count {
                if src[i] == UInt8(ascii: "{") {
                    let n = src[i + 1]
                    if n == UInt8(ascii: "{") || n == UInt8(ascii: "%") || n == UInt8(ascii: "#") {
                        found = i
                        break
                    }
                }
                i += 1
            }
            if found < 0 {
                emitText(start: pos, end: src.count)
                pos = src.count
                break
            }
            let kind = src[found + 1]
            let modifier = byte(found + 2)
            let strip = modifier == UInt8(ascii: "-")
            let plus = modifier == UInt8(ascii: "+")
            var textEnd = found
            if strip {
                while textEnd > pos && Lexer.isSpace(src[textEnd - 1]) { textEnd -= 1 }
            } else if options.lstripBlocks && !plus && kind != UInt8(ascii: "{") {
                // Strip spaces/tabs between the start of the line and a block or comment tag.
                var j = textEnd
                while j > pos && (src[j - 1] == 0x20 || src[j - 1] == 0x09) { j -= 1 }
                if j > pos ? src[j - 1] == 0x0A : lineStarting { textEnd = j }
            }
            emitText(start: pos, end: textEnd)
            let tagStart = found
            pos = found + 2 + ((strip || plus) ? 1 : 0)
            switch kind {
            case UInt8(ascii: "#"): try lexComment(tagStart: tagStart)
            case UInt8(ascii: "{"):
                tokens.append(Token(kind: .variableBegin, offset: tagStart))
                try lexInsideTag(block: false, tagStart: tagStart)
            default:
                if try lexRawIfPresent(tagStart: tagStart) { continue }
                tokens.append(Token(kind: .blockBegin, offset: tagStart))
                try lexInsideTag(block: true, tagStart: tagStart)
            }
        }
        tokens.append(Token(kind: .eof, offset: src.count))
        return tokens
    }

    mutating func emitText(start: Int, end: Int) {
        guard end > start else { return }
        let s = String(decoding: src[start..<end], as: UTF8.self)
        tokens.append(Token(kind: .text(s), offset: start))
    }

    /// After a closing `%}`/`#}` (not `-`/`+`): trim_blocks removes one newline right after it.
    mutating func finishTag(closingStrip: Bool, closingPlus: Bool, trimNewline: Bool) {
        let start = pos
        if closingStrip {
            while pos < src.count && Lexer.isSpace(src[pos]) { pos += 1 }
        } else if trimNewline && !closingPlus && options.trimBlocks && byte(pos) == 0x0A {
            pos += 1
        }
        lineStarting = pos > start ? src[pos - 1] == 0x0A : false
    }

    mutating func lexComment(tagStart: Int) throws {
        var i = pos
        while i + 1 < src.count {
            if src[i] == UInt8(ascii: "#") && src[i + 1] == UInt8(ascii: "}") {
                let strip = i > pos && src[i - 1] == UInt8(ascii: "-")
                let plus = i > pos && src[i - 1] == UInt8(ascii: "+")
                pos = i + 2
                finishTag(closingStrip: strip, closingPlus: plus, trimNewline: true)
                return
            }
            i += 1
        }
        throw error("missing end of comment tag '#}' for the comment opened here", at: tagStart)
    }

    /// `{% raw %}…{% endraw %}`: everything between is text, tags included.
    mutating func lexRawIfPresent(tagStart: Int) throws -> Bool {
        var i = pos
        while i < src.count && Lexer.isSpace(src[i]) { i += 1 }
        guard i + 3 <= src.count, src[i..<i + 3].elementsEqual("raw".utf8) else { return false }
        i += 3
        if i < src.count, isNameByte(src[i]) { return false }
        while i < src.count && Lexer.isSpace(src[i]) { i += 1 }
        var openStrip = false
        if byte(i) == UInt8(ascii: "-") { openStrip = true; i += 1 }
        guard byte(i) == UInt8(ascii: "%"), byte(i + 1) == UInt8(ascii: "}") else {
            throw error("expected '%}' after 'raw'", at: i)
        }
        pos = i + 2
        if openStrip { while pos < src.count && Lexer.isSpace(src[pos]) { pos += 1 } }
        // Find {% endraw %}.
        var j = pos
        while j + 1 < src.count {
            if src[j] == UInt8(ascii: "{") && src[j + 1] == UInt8(ascii: "%") {
                var k = j + 2
                let strip = byte(k) == UInt8(ascii: "-")
                if strip || byte(k) == UInt8(ascii: "+") { k += 1 }
                while k < src.count && Lexer.isSpace(src[k]) { k += 1 }
                if k + 6 <= src.count, src[k..<k + 6].elementsEqual("endraw".utf8) {
                    k += 6
                    while k < src.count && Lexer.isSpace(src[k]) { k += 1 }
                    var closeStrip = false, closePlus = false
                    if byte(k) == UInt8(ascii: "-") { closeStrip = true; k += 1 } else if byte(k) == UInt8(ascii: "+") { closePlus = true; k += 1 }
                    if byte(k) == UInt8(ascii: "%") && byte(k + 1) == UInt8(ascii: "}") {
                        var textEnd = j
                        if strip { while textEnd > pos && Lexer.isSpace(src[textEnd - 1]) { textEnd -= 1 } }
                        emitText(start: pos, end: textEnd)
                        pos = k + 2
                        finishTag(closingStrip: closeStrip, closingPlus: closePlus, trimNewline: true)
                        return true
                    }
                }
            }
            j += 1
        }
        throw error("missing '{% endraw %}' for the 'raw' block opened here", at: tagStart)
    }

    func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b >= 0x80
    }

    mutating func lexInsideTag(block: Bool, tagStart: Int) throws {
        var depth = 0
        while true {
            while pos < src.count && Lexer.isSpace(src[pos]) { pos += 1 }
            guard pos < src.count else {
                throw error(block ? "unexpected end of template: missing '%}' for the tag opened here"
                                  : "unexpected end of template: missing '}}' for the expression opened here",
                            at: tagStart)
            }
            let b = src[pos]
            // Closing marker (only outside brackets, as jinja2's balancing stack).
            if depth == 0 {
                let strip = b == UInt8(ascii: "-"), plus = b == UInt8(ascii: "+") && block
                let k = (strip || plus) ? pos + 1 : pos
                if block, byte(k) == UInt8(ascii: "%"), byte(k + 1) == UInt8(ascii: "}") {
                    tokens.append(Token(kind: .blockEnd, offset: pos))
                    pos = k + 2
                    finishTag(closingStrip: strip, closingPlus: plus, trimNewline: true)
                    return
                }
                if !block, !plus, byte(k) == UInt8(ascii: "}"), byte(k + 1) == UInt8(ascii: "}") {
                    tokens.append(Token(kind: .variableEnd, offset: pos))
                    pos = k + 2
                    finishTag(closingStrip: strip, closingPlus: false, trimNewline: false)
                    return
                }
            }
            let start = pos
            if isNameByte(b) && !(b >= 0x30 && b <= 0x39) {
                while pos < src.count && isNameByte(src[pos]) { pos += 1 }
                tokens.append(Token(kind: .name(String(decoding: src[start..<pos], as: UTF8.self)), offset: start))
            } else if b >= 0x30 && b <= 0x39 {
                tokens.append(try lexNumber())
            } else if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") {
                tokens.append(try lexString())
            } else {
                let two = pos + 1 < src.count ? String(decoding: src[pos..<pos + 2], as: UTF8.self) : ""
                let op: String
                if ["**", "//", "==", "!=", "<=", ">="].contains(two) {
                    op = two
                } else {
                    let single = String(UnicodeScalar(b))
                    guard "+-*/%~()[]{},.:|=<>;!".contains(single) else {
                        throw error("unexpected character '\(String(decoding: src[pos..<min(src.count, pos + 1)], as: UTF8.self))' inside a tag", at: pos)
                    }
                    op = single
                }
                if op == "(" || op == "[" || op == "{" { depth += 1 }
                if op == ")" || op == "]" || op == "}" {
                    if depth == 0 { throw error("unexpected '\(op)'", at: pos) }
                    depth -= 1
                }
                pos += op.utf8.count
                tokens.append(Token(kind: .op(op), offset: start))
            }
        }
    }

    mutating func lexNumber() throws -> Token {
        let start = pos
        var digits = ""
        func readDigits() {
            while pos < src.count, (src[pos] >= 0x30 && src[pos] <= 0x39) || (src[pos] == 0x5F && byte(pos + 1) >= 0x30 && byte(pos + 1) <= 0x39) {
                if src[pos] != 0x5F { digits.unicodeScalars.append(UnicodeScalar(src[pos])) }
                pos += 1
            }
        }
        readDigits()
        var isFloat = false
        if byte(pos) == UInt8(ascii: "."), byte(pos + 1) >= 0x30, byte(pos + 1) <= 0x39 {
            isFloat = true
            digits += "."
            pos += 1
            readDigits()
        }
        if byte(pos) == UInt8(ascii: "e") || byte(pos) == UInt8(ascii: "E") {
            var k = pos + 1
            if byte(k) == UInt8(ascii: "+") || byte(k) == UInt8(ascii: "-") { k += 1 }
            if byte(k) >= 0x30 && byte(k) <= 0x39 {
                isFloat = true
                digits += "e"
                if byte(pos + 1) == UInt8(ascii: "-") { digits += "-" }
                pos = k
                readDigits()
            }
        }
        if isFloat {
            guard let d = Double(digits) else { throw error("bad number '\(digits)'", at: start) }
            return Token(kind: .float(d), offset: start)
        }
        guard let i = Int(digits) else {
            throw error("integer literal \(digits) is too large (limit: 64-bit integers)", at: start)
        }
        return Token(kind: .integer(i), offset: start)
    }

    /// A string literal with Python's escapes (jinja2 decodes them with `unicode-escape`).
    mutating func lexString() throws -> Token {
        let start = pos
        let quote = src[pos]
        pos += 1
        var bytes: [UInt8] = []
        while true {
            guard pos < src.count else { throw error("unterminated string literal", at: start) }
            let b = src[pos]
            if b == quote { pos += 1; break }
            if b != UInt8(ascii: "\\") {
                bytes.append(b)
                pos += 1
                continue
            }
            let e = byte(pos + 1)
            pos += 2
            func appendScalar(_ v: UInt32) throws {
                guard let s = UnicodeScalar(v) else { throw error("bad escape in string literal", at: pos) }
                bytes.append(contentsOf: Array(String(Character(s)).utf8))
            }
            func readHex(_ n: Int) throws -> UInt32 {
                guard pos + n <= src.count, let v = UInt32(String(decoding: src[pos..<pos + n], as: UTF8.self), radix: 16) else {
                    throw error("truncated \\x, \\u or \\U escape in string literal", at: pos)
                }
                pos += n
                return v
            }
            switch e {
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "'"): bytes.append(0x27)
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "a"): bytes.append(0x07)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "v"): bytes.append(0x0B)
            case 0x0A: break  // backslash-newline continues the line
            case UInt8(ascii: "x"): try appendScalar(readHex(2))
            case UInt8(ascii: "u"): try appendScalar(readHex(4))
            case UInt8(ascii: "U"): try appendScalar(readHex(8))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var v = UInt32(e - 0x30)
                var n = 1
                while n < 3, byte(pos) >= 0x30, byte(pos) <= 0x37 {
                    v = v * 8 + UInt32(src[pos] - 0x30)
                    pos += 1
                    n += 1
                }
                try appendScalar(v)
            default:
                // Python keeps an unknown escape as written: "\d" stays backslash-d.
                bytes.append(0x5C)
                pos -= 1
            }
        }
        return Token(kind: .string(String(decoding: bytes, as: UTF8.self)), offset: start)
    }
}
