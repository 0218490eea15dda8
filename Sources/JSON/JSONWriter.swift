// One JSON writer for every file qwenft writes: serde_json's compact form (safetensors headers,
// byte-identical to the Rust serializer) and Python's `json.dumps` with indent, separators,
// sort_keys and ensure_ascii (the shard index as transformers writes it, Jinja's `tojson`).
//
// The writer knows layout and escaping; the caller walks its own values (a JSONValue tree, or
// Jinja's template values) and says how it prints its numbers.

/// How JSON text is laid out.
public struct JSONStyle: Sendable {
    /// The indent of one level; nil writes everything on one line.
    public var indent: String?
    /// Between array items and object members (before the newline when indenting).
    public var itemSeparator: String
    /// Between a key and its value.
    public var keySeparator: String
    /// Object members in the order of their keys' code points (Python's sort_keys).
    public var sortKeys: Bool
    /// Everything outside printable ASCII as `\uXXXX` (surrogate pairs above U+FFFF).
    public var ensureASCII: Bool
    /// When set, an array of scalars only (no arrays or objects) goes on one line, its items
    /// joined by this (the training config files' layout: `"betas": [0.9, 0.999]`).
    public var scalarArraySeparator: String?

    /// Doubles with an integral value without their `.0` (`0`, `1000000`), as Foundation's
    /// JSON encoder prints them.
    public var integralDoublesBare: Bool

    public init(indent: String?, itemSeparator: String, keySeparator: String, sortKeys: Bool = false, ensureASCII: Bool = false,
                scalarArraySeparator: String? = nil, integralDoublesBare: Bool = false) {
        self.indent = indent
        self.itemSeparator = itemSeparator
        self.keySeparator = keySeparator
        self.sortKeys = sortKeys
        self.ensureASCII = ensureASCII
        self.scalarArraySeparator = scalarArraySeparator
        self.integralDoublesBare = integralDoublesBare
    }

    /// serde_json's `to_string`: no spaces, non-ASCII raw, keys in their order.
    public static let compact = JSONStyle(indent: nil, itemSeparator: ",", keySeparator: ":")

    /// Foundation's JSON encoder with `.sortedKeys` (and `.prettyPrinted`): the layout of the files
    /// and outputs qwenft wrote with it before this writer (`qwenft init`'s config.json and
    /// generation_config.json, `qwenft eval --json`), kept so their bytes stay the same. Unlike
    /// Foundation, empty containers print as `[]` and `{}` (it puts a blank line inside them);
    /// none of those files has one. `/` is not escaped (Foundation's `\/`): none has one either.
    public static func foundation(pretty: Bool) -> JSONStyle {
        JSONStyle(indent: pretty ? "  " : nil, itemSeparator: ",", keySeparator: pretty ? " : " : ":", sortKeys: true,
                  integralDoublesBare: true)
    }

    /// Python's `json.dumps(indent=…, sort_keys=…, ensure_ascii=…)` with its default separators
    /// (`", "` on one line, `","` before a newline).
    public static func python(indent: Int?, sortKeys: Bool = false, ensureASCII: Bool = true) -> JSONStyle {
        JSONStyle(indent: indent.map { String(repeating: " ", count: max(0, $0)) }, itemSeparator: indent == nil ? ", " : ",",
                  keySeparator: ": ", sortKeys: sortKeys, ensureASCII: ensureASCII)
    }
}

/// Appends JSON text to `bytes`. Containers take a closure that writes each child.
public struct JSONWriter {
    public var bytes: [UInt8] = []
    public let style: JSONStyle
    @usableFromInline var level = 0

    public init(style: JSONStyle) {
        self.style = style
        bytes.reserveCapacity(256)
    }

    /// The text written so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Text written as is: `null`, `true`, a number the caller formatted.
    public mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    public mutating func null() { raw("null") }
    public mutating func bool(_ b: Bool) { raw(b ? "true" : "false") }
    public mutating func int(_ i: Int) { raw(String(i)) }

    /// A string literal, escaped as both serde_json and Python's json module escape: `"`, `\`,
    /// `\n \r \t \b \f`, other control characters as `\u00xx` (lower-case hex), and with
    /// ensureASCII everything above `~` as `\uXXXX`.
    public mutating func string(_ s: String) {
        bytes.append(0x22)
        let ascii = style.ensureASCII
        // Fast path: nothing to escape, copy the bytes.
        let plain = s.utf8.withContiguousStorageIfAvailable { buf -> Bool in
            for b in buf where b < 0x20 || b == 0x22 || b == 0x5C || (ascii && b > 0x7E) { return false }
            bytes.append(contentsOf: buf)
            return true
        }
        if plain != true {
            for c in s.unicodeScalars { escape(c) }
        }
        bytes.append(0x22)
    }

    mutating func escape(_ c: Unicode.Scalar) {
        switch c {
        case "\"": raw("\\\"")
        case "\\": raw("\\\\")
        case "\n": raw("\\n")
        case "\r": raw("\\r")
        case "\t": raw("\\t")
        case "\u{08}": raw("\\b")
        case "\u{0C}": raw("\\f")
        default:
            if c.value < 0x20 || (style.ensureASCII && c.value > 0x7E) {
                if c.value > 0xFFFF {
                    let v = c.value - 0x10000
                    hexEscape(0xD800 + (v >> 10))
                    hexEscape(0xDC00 + (v & 0x3FF))
                } else {
                    hexEscape(c.value)
                }
            } else {
                bytes.append(contentsOf: String(c).utf8)
            }
        }
    }

    mutating func hexEscape(_ v: UInt32) {
        let digits = Array("0123456789abcdef".utf8)
        bytes.append(contentsOf: [0x5C, UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) { bytes.append(digits[Int((v >> UInt32(shift)) & 0xF)]) }
    }

    mutating func newline() {
        guard let indent = style.indent else { return }
        bytes.append(0x0A)
        for _ in 0..<level { bytes.append(contentsOf: indent.utf8) }
    }

    /// An array of `count` items; `item(&self, i)` writes item i. `scalars`: the caller says the
    /// items are all scalars, which the style may put on one line.
    public mutating func array<E: Error>(count: Int, scalars: Bool = false, _ item: (inout JSONWriter, Int) throws(E) -> Void) throws(E) {
        if count == 0 { raw("[]"); return }
        bytes.append(UInt8(ascii: "["))
        if scalars, let separator = style.scalarArraySeparator {
            for i in 0..<count {
                if i > 0 { raw(separator) }
                try item(&self, i)
            }
            bytes.append(UInt8(ascii: "]"))
            return
        }
        level += 1
        for i in 0..<count {
            if i > 0 { raw(style.itemSeparator) }
            newline()
            try item(&self, i)
        }
        level -= 1
        newline()
        bytes.append(UInt8(ascii: "]"))
    }

    /// An object of `count` members named `key(i)`; `value(&self, i)` writes member i's value.
    /// With sortKeys the members go in code-point order of their keys.
    public mutating func object<E: Error>(count: Int, key: (Int) -> String, _ value: (inout JSONWriter, Int) throws(E) -> Void) throws(E) {
        if count == 0 { raw("{}"); return }
        let order = style.sortKeys ? (0..<count).sorted { key($0).utf8.lexicographicallyPrecedes(key($1).utf8) } : Array(0..<count)
        bytes.append(UInt8(ascii: "{"))
        level += 1
        for (n, i) in order.enumerated() {
            if n > 0 { raw(style.itemSeparator) }
            newline()
            string(key(i))
            raw(style.keySeparator)
            try value(&self, i)
        }
        level -= 1
        newline()
        bytes.append(UInt8(ascii: "}"))
    }

    /// A JSON value tree. Doubles print in Swift's shortest round-trip form; NaN and the
    /// infinities (not JSON) as null, as serde_json does.
    public mutating func value(_ v: JSONValue) {
        switch v {
        case .null: null()
        case let .bool(b): bool(b)
        case let .int(i): int(i)
        case let .double(d): raw(d.isFinite ? (style.integralDoublesBare ? bare(d) : "\(d)") : "null")
        case let .string(s): string(s)
        case let .array(items):
            let scalars = style.scalarArraySeparator != nil && !items.contains { $0.arrayValue != nil || $0.objectValue != nil }
            array(count: items.count, scalars: scalars) { w, i in w.value(items[i]) }
        case let .object(pairs): object(count: pairs.count, key: { pairs[$0].0 }) { w, i in w.value(pairs[i].1) }
        }
    }
}

/// `d` in Swift's shortest round-trip form, less a trailing `.0`.
func bare(_ d: Double) -> String {
    let text = "\(d)"
    return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
}

extension JSONValue {
    /// This value as JSON text in `style`.
    public func text(_ style: JSONStyle = .compact) -> String {
        var w = JSONWriter(style: style)
        w.value(self)
        return w.text
    }
}
