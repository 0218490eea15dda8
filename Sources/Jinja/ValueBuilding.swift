// Building contexts: Swift literals or JSON bytes.

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
}
