// Runtime values of the template language, with Python's semantics for truthiness, equality,
// ordering and str()/repr() — jinja2 renders through Python, so a template prints `1.0`, `True`,
// `None`, `['a', 1]` exactly as Python would.

/// A list (or tuple) shared by reference, as Python lists are: `x.append(…)` on an alias is seen
/// through every alias.
public final class ListBox {
    @exclusivity(unchecked) public var items: [Value]
    public let isTuple: Bool
    public init(_ items: [Value], isTuple: Bool = false) {
        self.items = items
        self.isTuple = isTuple
    }
}

/// A dict that keeps insertion order (Python 3.7+ dicts do; `tojson` and `items()` depend on it).
/// Keys are strings: JSON objects and the dicts chat templates build only use string keys.
///
/// Chat-template dicts are small (a message has 2–4 keys): up to `indexThreshold` keys a lookup
/// is a linear scan (short strings compare in a few instructions, no hashing); beyond, an index.
public final class DictBox {
    @exclusivity(unchecked) public private(set) var keys: [String] = []
    @exclusivity(unchecked) public private(set) var values: [Value] = []
    @exclusivity(unchecked) private var index: [String: Int]?
    private static let indexThreshold = 12

    public init() {}

    public init(_ pairs: [(String, Value)]) {
        keys.reserveCapacity(pairs.count)
        values.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    @inline(__always) func position(_ key: String) -> Int? {
        if let index { return index[key] }
        for i in keys.indices where keys[i] == key { return i }
        return nil
    }

    public subscript(key: String) -> Value? {
        get {
            guard let i = position(key) else { return nil }
            return values[i]
        }
        set {
            if let v = newValue {
                if let i = position(key) {
                    values[i] = v
                } else {
                    keys.append(key)
                    values.append(v)
                    if index != nil {
                        index![key] = keys.count - 1
                    } else if keys.count > DictBox.indexThreshold {
                        var ix: [String: Int] = [:]
                        for (i, k) in keys.enumerated() { ix[k] = i }
                        index = ix
                    }
                }
            } else if let i = position(key) {
                keys.remove(at: i)
                values.remove(at: i)
                if index != nil {
                    var ix: [String: Int] = [:]
                    for (j, k) in keys.enumerated() { ix[k] = j }
                    index = ix
                }
            }
        }
    }

    public var count: Int { keys.count }

    /// Key/value pairs in insertion order.
    public var pairs: [(String, Value)] { Array(zip(keys, values)) }
}

/// Something a template can call: a macro, a global function, or a method bound to its receiver.
public final class Callable {
    enum Kind {
        case macro(MacroDefinition, Scope)
        case global(String)
        case method(Value, String)
        case caller(CallerBody)
    }
    let kind: Kind
    init(_ kind: Kind) { self.kind = kind }
}

/// Why a value is undefined; the message is only built when an error needs it.
public enum UndefinedReason {
    case name(String)
    case attribute(owner: String, name: String)
    case text(String)

    public var message: String {
        switch self {
        case .name(let n): return "'\(n)' is undefined"
        case .attribute(let owner, let n): return "'\(owner) object' has no attribute '\(n)'"
        case .text(let t): return t.isEmpty ? "undefined value used" : t
        }
    }
}

/// A value inside the template engine.
public enum Value {
    /// A name that does not exist. Prints as nothing, is falsy, iterates as empty; using it any
    /// other way is an error, whose message `reason` gives.
    case undefined(UndefinedReason)
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list(ListBox)
    case dict(DictBox)
    /// `namespace(…)`: the one object templates may assign attributes on.
    case namespace(DictBox)
    case callable(Callable)
    /// The `loop` variable of a `for`.
    case loop(LoopState)

    public static let undefinedValue = Value.undefined(.text(""))

    public static func array(_ items: [Value]) -> Value { .list(ListBox(items)) }
    public static func tuple(_ items: [Value]) -> Value { .list(ListBox(items, isTuple: true)) }
    public static func object(_ pairs: [(String, Value)]) -> Value { .dict(DictBox(pairs)) }

    public var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    public var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.items.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable, .loop: return true
        }
    }

    /// Python's type name, for error messages.
    public var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list(let l): return l.isTuple ? "tuple" : "list"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        case .loop: return "LoopContext"
        }
    }

    /// Python `str(x)`; undefined prints as the empty string, as jinja2's default `Undefined`.
    public var pythonStr: String {
        switch self {
        case .string(let s): return s
        case .undefined: return ""
        default:
            var out = ""
            writeRepr(into: &out)
            return out
        }
    }

    /// Python `repr(x)`.
    public var pythonRepr: String {
        var out = ""
        writeRepr(into: &out)
        return out
    }

    /// Nesting beyond this prints as `[...]` / `{...}`: only a self-containing value gets there
    /// (JSON input is limited to 512 levels), and Python prints those so too.
    static let maxReprDepth = 600

    func writeRepr(into out: inout String, depth: Int = 0) {
        if depth > Value.maxReprDepth {
            if case .dict = self { out += "{...}" } else { out += "[...]" }
            return
        }
        switch self {
        case .undefined: out += ""
        case .none: out += "None"
        case .bool(let b): out += b ? "True" : "False"
        case .int(let i): out += String(i)
        case .float(let d): out += formatPythonFloat(d)
        case .string(let s): writePythonStringRepr(s, into: &out)
        case .list(let l):
            out += l.isTuple ? "(" : "["
            for (i, v) in l.items.enumerated() {
                if i > 0 { out += ", " }
                v.writeRepr(into: &out, depth: depth + 1)
            }
            if l.isTuple && l.items.count == 1 { out += "," }
            out += l.isTuple ? ")" : "]"
        case .dict(let d):
            out += "{"
            for (i, k) in d.keys.enumerated() {
                if i > 0 { out += ", " }
                writePythonStringRepr(k, into: &out)
                out += ": "
                d.values[i].writeRepr(into: &out, depth: depth + 1)
            }
            out += "}"
        case .namespace(let d):
            out += "<Namespace "
            Value.dict(d).writeRepr(into: &out, depth: depth + 1)
            out += ">"
        case .callable: out += "<function>"
        case .loop: out += "<LoopContext>"
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
/// Swift's `description` follows the same rules (checked for 1e-05, 1e+16, 1e15, -0.0, inf, nan).
func formatPythonFloat(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    return d.description
}

/// Python `repr(str)`: single quotes unless the text has a single quote and no double quote.
func writePythonStringRepr(_ s: String, into out: inout String) {
    let quote: Character = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
    out.append(quote)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(scalar) == quote {
                out += "\\"
                out.unicodeScalars.append(scalar)
            } else if scalar.value < 0x7f && scalar.value >= 0x20 {
                out.unicodeScalars.append(scalar)
            } else if !isPythonPrintable(scalar) {
                // Python's repr escapes what str.isprintable() rejects.
                let v = scalar.value
                out += v < 0x100 ? "\\x" + hex(v, width: 2) : v < 0x10000 ? "\\u" + hex(v, width: 4) : "\\U" + hex(v, width: 8)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    out.append(quote)
}

func hex(_ v: UInt32, width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

// MARK: - Equality and ordering (Python rules)

extension Value {
    /// Python `==`: numbers compare by value across int/float/bool, containers element-wise.
    public func pyEquals(_ other: Value) -> Bool { pyEquals(other, depth: 0) }

    func pyEquals(_ other: Value, depth: Int) -> Bool {
        if depth > Value.maxReprDepth { return false }
        switch (self, other) {
        case (.string(let a), .string(let b)): return utf8Equal(a, b)
        case (.int(let a), .int(let b)): return a == b
        case (.none, .none): return true
        case (.undefined, .undefined): return true
        case (.list(let a), .list(let b)):
            if a === b { return true }
            guard a.isTuple == b.isTuple, a.items.count == b.items.count else { return false }
            for i in 0..<a.items.count where !a.items[i].pyEquals(b.items[i], depth: depth + 1) { return false }
            return true
        case (.dict(let a), .dict(let b)), (.namespace(let a), .namespace(let b)):
            if a === b { return true }
            guard a.count == b.count else { return false }
            for (i, k) in a.keys.enumerated() {
                guard let bv = b[k], a.values[i].pyEquals(bv, depth: depth + 1) else { return false }
            }
            return true
        case (.callable(let a), .callable(let b)): return a === b
        case (.loop(let a), .loop(let b)): return a === b
        default:
            if let a = numericValue, let b = other.numericValue { return a == b }
            return false
        }
    }

    /// int, float or bool as a Double for mixed comparisons.
    var numericValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Python `<`-style ordering; nil when Python would raise TypeError.
    func pyCompare(_ other: Value) -> Int? {
        switch (self, other) {
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)):
            // Python orders strings by code point, which is the order of their UTF-8 bytes.
            return a == b ? 0 : (a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1)
        case (.list(let a), .list(let b)) where a.isTuple == b.isTuple:
            for i in 0..<min(a.items.count, b.items.count) {
                if a.items[i].pyEquals(b.items[i]) { continue }
                return a.items[i].pyCompare(b.items[i])
            }
            return a.items.count < b.items.count ? -1 : (a.items.count == b.items.count ? 0 : 1)
        default:
            if let a = numericValue, let b = other.numericValue {
                return a < b ? -1 : (a == b ? 0 : 1)
            }
            return nil
        }
    }
}

/// Python string equality: same code points, so same UTF-8 bytes (Swift's `==` would also
/// equate canonically equivalent strings such as "é" and "e\u{301}").
@inline(__always) func utf8Equal(_ a: String, _ b: String) -> Bool {
    let ua = a.utf8, ub = b.utf8
    if ua.count != ub.count { return false }
    if let r = ua.withContiguousStorageIfAvailable({ pa in
        ub.withContiguousStorageIfAvailable { pb in pa.elementsEqual(pb) }
    }), let equal = r {
        return equal
    }
    return ua.elementsEqual(ub)
}

/// Python's `str.isprintable` for one character: not a control, format, surrogate, private-use,
/// unassigned or separator character (the ASCII space excepted).
func isPythonPrintable(_ s: Unicode.Scalar) -> Bool {
    if s == " " { return true }
    switch s.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}
