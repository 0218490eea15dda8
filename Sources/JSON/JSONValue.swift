// The one JSON layer of qwenft: a value type, a byte parser (JSONParser.swift) and a writer
// (JSONWriter.swift), shared by every target. No dependencies, not even Foundation: Jinja uses it.
//
// The value type keeps what the formats we read and write need and Foundation loses: object key
// order (headers and configs print in the order they were read), integers apart from floats
// (`1` vs `1.0`, exact safetensors offsets up to Int.max), and U+FEFF inside strings.

/// A parsed JSON value. Objects keep their key order; integers that fit in Int stay exact.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits in Int.
    case int(Int)
    /// Any other number.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The value for `key` when this is an object (the first one with that key).
    public subscript(key: String) -> JSONValue? {
        if case let .object(pairs) = self { return pairs.first(where: { $0.0 == key })?.1 }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    public var intValue: Int? { if case let .int(i) = self { return i }; return nil }
    /// An int, or a double with an integral value that fits in Int (`64.0`, as Python may write it).
    public var integerValue: Int? {
        switch self {
        case let .int(i): return i
        case let .double(d): return Int(exactly: d)
        default: return nil
        }
    }
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    /// An int or a double as a Double.
    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .double(d): return d
        default: return nil
        }
    }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    public var objectValue: [(String, JSONValue)]? { if case let .object(o) = self { return o }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }

    /// The value's kind for error messages: "a string", "an array"…
    public var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// MARK: - Parsing into a JSONValue tree

/// Builds `JSONValue` trees for `JSONParser`. Duplicate keys keep the first key's place and the
/// last value, as Python's `json.loads` does, when the options let them through. Keys are the same
/// when their code points are (as in JSON and Python), not by Swift's canonical equivalence.
public struct JSONValueBuilder: JSONBuilder {
    public struct Object {
        @usableFromInline var pairs: [(String, JSONValue)] = []
        /// Member positions, built once the object is large enough that a scan costs more.
        @usableFromInline var index: [UTF8Key: Int]? = nil
        @inlinable init() {}

        @inlinable func position(_ key: String) -> Int? {
            if let index { return index[UTF8Key(key)] }
            return pairs.firstIndex { sameUTF8($0.0, key) }
        }
    }

    @inlinable public init() {}
    @inlinable public mutating func null() -> JSONValue { .null }
    @inlinable public mutating func bool(_ b: Bool) -> JSONValue { .bool(b) }
    @inlinable public mutating func int(_ i: Int) -> JSONValue { .int(i) }
    @inlinable public mutating func double(_ d: Double) -> JSONValue { .double(d) }
    @inlinable public mutating func string(_ s: String) -> JSONValue { .string(s) }
    @inlinable public mutating func beginArray() -> [JSONValue] { [] }
    @inlinable public mutating func append(_ value: JSONValue, to array: inout [JSONValue]) { array.append(value) }
    @inlinable public mutating func endArray(_ array: [JSONValue]) -> JSONValue { .array(array) }
    @inlinable public mutating func beginObject() -> Object { Object() }
    @inlinable public mutating func add(_ key: String, _ value: JSONValue, to object: inout Object) -> Bool {
        if let at = object.position(key) {
            object.pairs[at].1 = value
            return false
        }
        if object.index != nil {
            object.index![UTF8Key(key)] = object.pairs.count
        } else if object.pairs.count >= 16 {
            var index = [UTF8Key: Int](minimumCapacity: 64)
            for (i, pair) in object.pairs.enumerated() { index[UTF8Key(pair.0)] = i }
            index[UTF8Key(key)] = object.pairs.count
            object.index = index
        }
        object.pairs.append((key, value))
        return true
    }
    @inlinable public mutating func endObject(_ object: Object) -> JSONValue { .object(object.pairs) }
}

/// A string hashed and compared by its UTF-8 bytes: cheaper than String's own hashing, which
/// normalises non-ASCII text first, and the equality JSON keys have.
@usableFromInline struct UTF8Key: Hashable {
    @usableFromInline let text: String
    @inlinable init(_ text: String) { self.text = text }
    @inlinable func hash(into hasher: inout Hasher) {
        var t = text
        t.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
    @inlinable static func == (a: UTF8Key, b: UTF8Key) -> Bool { sameUTF8(a.text, b.text) }
}

@inlinable func sameUTF8(_ a: String, _ b: String) -> Bool {
    var a = a, b = b
    return a.withUTF8 { x in b.withUTF8 { y in x.count == y.count && x.elementsEqual(y) } }
}

extension JSONValue {
    /// Parses JSON text from bytes.
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer, options: JSONOptions = .strict) throws(JSONError) -> JSONValue {
        var builder = JSONValueBuilder()
        return try JSONParser.parse(bytes, options: options, builder: &builder)
    }

    /// Parses JSON text from a byte array.
    @inlinable
    public static func parse(_ bytes: [UInt8], options: JSONOptions = .strict) throws(JSONError) -> JSONValue {
        var builder = JSONValueBuilder()
        return try JSONParser.parse(bytes, options: options, builder: &builder)
    }

    /// Parses JSON text.
    @inlinable
    public static func parse(_ text: String, options: JSONOptions = .strict) throws(JSONError) -> JSONValue {
        var builder = JSONValueBuilder()
        return try JSONParser.parse(text, options: options, builder: &builder)
    }
}
