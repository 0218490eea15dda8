// Codable over JSONValue: config types keep their `init(from:)` / `encode(to:)` (their CodingKeys
// carry the Hugging Face names) and read and write through the one JSON layer instead of
// Foundation's coders. Errors are the standard library's DecodingError with the coding path, as
// Foundation's decoder throws them; syntax errors are JSONError (line and column).

/// Decodes a `Decodable` from a JSONValue tree.
public struct JSONValueDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try T(from: ValueDecoder(value: value, codingPath: []))
    }

    /// Parses `bytes` (strict JSON) and decodes; a parse error is thrown as JSONError.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: try JSONValue.parse(bytes))
    }
}

/// Encodes an `Encodable` into a JSONValue tree; object members keep the order they were encoded in.
public struct JSONValueEncoder {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let encoder = ValueEncoder(codingPath: [])
        try value.encode(to: encoder)
        return encoder.storage.value
    }
}

/// A coding key for array positions and dictionary keys in coding paths.
struct IndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; intValue = nil }
    init(intValue: Int) { stringValue = "Index \(intValue)"; self.intValue = intValue }
}

// MARK: - Decoding

struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case let .object(pairs) = value else { throw mismatch([String: JSONValue].self, value, codingPath) }
        return KeyedDecodingContainer(KeyedValues<Key>(pairs: pairs, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case let .array(items) = value else { throw mismatch([JSONValue].self, value, codingPath) }
        return UnkeyedValues(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleValue(value: value, codingPath: codingPath) }
}

func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [CodingKey]) -> DecodingError {
    if value.isNull {
        return .valueNotFound(type, .init(codingPath: path, debugDescription: "Expected \(type) value but found null instead."))
    }
    return .typeMismatch(type, .init(codingPath: path, debugDescription: "Expected to decode \(type) but found \(value.kind) instead."))
}

/// The scalar reads every container shares.
func decodeScalar<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ path: [CodingKey]) throws -> T {
    switch type {
    case is Bool.Type:
        if case let .bool(b) = value { return b as! T }
    case is String.Type:
        if case let .string(s) = value { return s as! T }
    case is Double.Type:
        if let d = value.doubleValue { return d as! T }
    case is Float.Type:
        if let d = value.doubleValue { return Float(d) as! T }
    case let integerType as any FixedWidthInteger.Type: return try integer(integerType, value, path) as! T
    default:
        return try T(from: ValueDecoder(value: value, codingPath: path))
    }
    throw mismatch(type, value, path)
}

/// An integer, from an integral number (`3` or `3.0`, as Foundation's decoder accepts) that fits the type.
func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, _ path: [CodingKey]) throws -> I {
    switch value {
    case let .int(i):
        if let v = I(exactly: i) { return v }
    case let .double(d):
        if let v = I(exactly: d) { return v }
    default:
        throw mismatch(type, value, path)
    }
    throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "Number \(value.text()) does not fit in \(type)."))
}

struct KeyedValues<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(String, JSONValue)]
    let codingPath: [CodingKey]

    var allKeys: [Key] { pairs.compactMap { Key(stringValue: $0.0) } }
    func contains(_ key: Key) -> Bool { pairs.contains { $0.0 == key.stringValue } }

    func value(_ key: Key) throws -> JSONValue {
        guard let v = pairs.first(where: { $0.0 == key.stringValue })?.1 else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value associated with key \"\(key.stringValue)\"."))
        }
        return v
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key).isNull }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decodeScalar(type, try value(key), codingPath + [key])
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: try value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }
    func superDecoder() throws -> Decoder { ValueDecoder(value: .object(pairs), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> Decoder { ValueDecoder(value: try value(key), codingPath: codingPath + [key]) }
}

struct UnkeyedValues: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    var currentIndex = 0
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [JSONValue], codingPath: [CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    mutating func next() throws -> (JSONValue, [CodingKey]) {
        let path = codingPath + [IndexKey(intValue: currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(JSONValue.self, .init(codingPath: path, debugDescription: "Unkeyed container is at end."))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], path)
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, items[currentIndex].isNull { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (v, path) = try next()
        return try decodeScalar(type, v, path)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (v, path) = try next()
        return try ValueDecoder(value: v, codingPath: path).container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (v, path) = try next()
        return try ValueDecoder(value: v, codingPath: path).unkeyedContainer()
    }
    mutating func superDecoder() throws -> Decoder {
        let (v, path) = try next()
        return ValueDecoder(value: v, codingPath: path)
    }
}

struct SingleValue: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    func decodeNil() -> Bool { value.isNull }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeScalar(type, value, codingPath) }
}

// MARK: - Encoding

/// A JSON value under construction: containers are shared by reference while their owners fill them.
final class Node {
    enum Content {
        case leaf(JSONValue)
        case array([Node])
        case object([(String, Node)])
    }
    var content: Content
    init(_ content: Content) { self.content = content }

    var value: JSONValue {
        switch content {
        case let .leaf(v): return v
        case let .array(items): return .array(items.map(\.value))
        case let .object(pairs): return .object(pairs.map { ($0.0, $0.1.value) })
        }
    }

    /// The member `key`, replaced if it was set before (as Foundation's encoder does), else appended.
    func set(_ key: String, _ node: Node) {
        guard case var .object(pairs) = content else { return }
        if let at = pairs.firstIndex(where: { $0.0 == key }) { pairs[at].1 = node } else { pairs.append((key, node)) }
        content = .object(pairs)
    }

    func append(_ node: Node) {
        guard case var .array(items) = content else { return }
        items.append(node)
        content = .array(items)
    }
}

/// Encodes scalars as leaves and anything else through its own `encode(to:)`.
func encodeNode<T: Encodable>(_ value: T, _ path: [CodingKey]) throws -> Node {
    switch value {
    case let b as Bool: return Node(.leaf(.bool(b)))
    case let s as String: return Node(.leaf(.string(s)))
    case let d as Double: return Node(.leaf(.double(d)))
    // Through its shortest decimal form, so 1e-05 as a Float prints as 1e-05 (as Foundation's does).
    case let f as Float: return Node(.leaf(.double(Double("\(f)") ?? Double(f))))
    case let i as any FixedWidthInteger:
        guard let exact = Int(exactly: i) else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "\(i) does not fit in Int."))
        }
        return Node(.leaf(.int(exact)))
    default:
        let encoder = ValueEncoder(codingPath: path)
        try value.encode(to: encoder)
        return encoder.storage
    }
}

final class ValueEncoder: Encoder {
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What was encoded; a keyed or unkeyed container turns it into an object or an array.
    var storage = Node(.leaf(.null))

    init(codingPath: [CodingKey]) { self.codingPath = codingPath }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = storage.content {} else { storage.content = .object([]) }
        return KeyedEncodingContainer(KeyedNodes<Key>(node: storage, codingPath: codingPath))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer {
        if case .array = storage.content {} else { storage.content = .array([]) }
        return UnkeyedNodes(node: storage, codingPath: codingPath)
    }
    func singleValueContainer() -> SingleValueEncodingContainer { SingleNode(encoder: self) }
}

struct KeyedNodes<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.set(key.stringValue, Node(.leaf(.null))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        node.set(key.stringValue, try encodeNode(value, codingPath + [key]))
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = Node(.object([]))
        node.set(key.stringValue, child)
        return KeyedEncodingContainer(KeyedNodes<NestedKey>(node: child, codingPath: codingPath + [key]))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        let child = Node(.array([]))
        node.set(key.stringValue, child)
        return UnkeyedNodes(node: child, codingPath: codingPath + [key])
    }
    mutating func superEncoder() -> Encoder { superEncoder(forKey: Key(stringValue: "super")!) }
    mutating func superEncoder(forKey key: Key) -> Encoder {
        let encoder = ValueEncoder(codingPath: codingPath + [key])
        node.set(key.stringValue, encoder.storage)
        return encoder
    }
}

struct UnkeyedNodes: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]
    var count: Int { if case let .array(items) = node.content { return items.count }; return 0 }

    mutating func encodeNil() throws { node.append(Node(.leaf(.null))) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        node.append(try encodeNode(value, codingPath + [IndexKey(intValue: count)]))
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = Node(.object([]))
        let path = codingPath + [IndexKey(intValue: count)]
        node.append(child)
        return KeyedEncodingContainer(KeyedNodes<NestedKey>(node: child, codingPath: path))
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let child = Node(.array([]))
        let path = codingPath + [IndexKey(intValue: count)]
        node.append(child)
        return UnkeyedNodes(node: child, codingPath: path)
    }
    mutating func superEncoder() -> Encoder {
        let encoder = ValueEncoder(codingPath: codingPath + [IndexKey(intValue: count)])
        node.append(encoder.storage)
        return encoder
    }
}

struct SingleNode: SingleValueEncodingContainer {
    let encoder: ValueEncoder
    var codingPath: [CodingKey] { encoder.codingPath }
    mutating func encodeNil() throws { encoder.storage.content = .leaf(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        encoder.storage.content = try encodeNode(value, codingPath).content
    }
}
