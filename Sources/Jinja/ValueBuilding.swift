// Building contexts: Swift literals, JSON bytes, or objects from Foundation's JSONSerialization.

import Foundation

// No ExpressibleByNilLiteral: `nil` would then silently mean `Value.none` where `Value?` is meant.
extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    /// Keys keep the order written, as a Python dict literal would.
    public init(dictionaryLiteral elements: (String, Value)...) { self = .object(elements) }
}

extension Value {
    /// Parses JSON bytes (a file's contents); see `parseJSON(_:)` for what is kept.
    public static func parseJSON(data: Data) throws -> Value {
        guard let text = String(data: data, encoding: .utf8) else {
            throw JSONParseError(message: "not valid UTF-8", line: 1, column: 1)
        }
        return try parseJSON(text)
    }

    /// Converts what `JSONSerialization.jsonObject` returns. Prefer `parseJSON`: Foundation's
    /// dictionaries lose key order (which `tojson` prints) and may read `1.0` as an integer.
    public init(foundation object: Any?) throws {
        switch object {
        case nil, is NSNull: self = .none
        case let s as String: self = .string(s)
        case let n as NSNumber:
            let type = String(cString: n.objCType)
            if type == "B" || type == "c" {
                self = .bool(n.boolValue)
            } else if type == "d" || type == "f" {
                self = .float(n.doubleValue)
            } else {
                self = .int(n.intValue)
            }
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .float(d)
        case let a as [Any]: self = .array(try a.map { try Value(foundation: $0) })
        case let d as [String: Any]:
            self = .object(try d.keys.sorted().map { ($0, try Value(foundation: d[$0])) })
        default:
            throw JSONParseError(message: "cannot use a \(type(of: object!)) as a template value", line: 0, column: 0)
        }
    }
}
