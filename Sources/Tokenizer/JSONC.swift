import CJSON
import Foundation

/// A thin, read-only view of a json-c document, for tokenizer.json (a few MB: json-c parses it
/// several times faster than Foundation). Values live as long as their `JSONDocument`.
final class JSONDocument {
    let root: JSONNode
    private let object: OpaquePointer

    /// Parses `bytes`; a syntax error names the line and column.
    init(bytes: [UInt8], path: String) throws {
        guard bytes.count < Int(Int32.max) else {
            throw TokenizerError.unsupported(path: path, location: "size", what: "a JSON file of 2 GB or more")
        }
        guard !bytes.isEmpty else {
            throw TokenizerError.malformed(path: path, location: "line 1, column 1", reason: "the file is empty")
        }
        guard let tok = json_tokener_new_ex(64) else {
            throw TokenizerError.unreadable(path: path, reason: "out of memory")
        }
        defer { json_tokener_free(tok) }
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                json_tokener_parse_ex(tok, $0, Int32(buf.count))
            }
        }
        let err = json_tokener_get_error(tok)
        let end = json_tokener_get_parse_end(tok)
        guard let parsed, err == json_tokener_success else {
            if let parsed { json_object_put(parsed) }
            let (line, column) = lineAndColumn(bytes, Int(end))
            let what = err == json_tokener_continue ? "the JSON ends too early" : String(cString: json_tokener_error_desc(err))
            throw TokenizerError.malformed(path: path, location: "line \(line), column \(column)", reason: "invalid JSON: \(what)")
        }
        var k = Int(end)
        while k < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[k]) { k += 1 }
        if k < bytes.count {
            json_object_put(parsed)
            let (line, column) = lineAndColumn(bytes, k)
            throw TokenizerError.malformed(path: path, location: "line \(line), column \(column)", reason: "invalid JSON: extra text after the document")
        }
        object = parsed
        root = JSONNode(parsed)
    }

    deinit { json_object_put(object) }
}

func lineAndColumn(_ bytes: [UInt8], _ offset: Int) -> (Int, Int) {
    var line = 1, column = 1
    for b in bytes[0..<min(offset, bytes.count)] {
        if b == 0x0A { line += 1; column = 1 } else { column += 1 }
    }
    return (line, column)
}

struct JSONNode {
    let ptr: OpaquePointer?

    init(_ ptr: OpaquePointer?) { self.ptr = ptr }

    var isNull: Bool { ptr == nil || json_object_get_type(ptr) == json_type_null }
    var isObject: Bool { ptr != nil && json_object_get_type(ptr) == json_type_object }
    var isArray: Bool { ptr != nil && json_object_get_type(ptr) == json_type_array }
    var isString: Bool { ptr != nil && json_object_get_type(ptr) == json_type_string }
    var isInt: Bool { ptr != nil && json_object_get_type(ptr) == json_type_int }
    var isBool: Bool { ptr != nil && json_object_get_type(ptr) == json_type_boolean }

    subscript(key: String) -> JSONNode? {
        guard isObject else { return nil }
        var out: OpaquePointer? = nil
        return json_object_object_get_ex(ptr, key, &out) != 0 ? JSONNode(out) : nil
    }

    var count: Int { isArray ? Int(json_object_array_length(ptr)) : 0 }
    subscript(index: Int) -> JSONNode { JSONNode(json_object_array_get_idx(ptr, index)) }

    var string: String? { isString ? String(cString: json_object_get_string(ptr)) : nil }
    var int: Int? { isInt ? Int(json_object_get_int64(ptr)) : nil }
    var bool: Bool? { isBool ? json_object_get_boolean(ptr) != 0 : nil }

    /// The string's UTF-8 bytes without copying into a Swift String.
    func withStringBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard isString, let c = json_object_get_string(ptr) else { return nil }
        let n = Int(json_object_get_string_len(ptr))
        return c.withMemoryRebound(to: UInt8.self, capacity: n) { body(UnsafeBufferPointer(start: $0, count: n)) }
    }

    /// Calls body(key bytes, value) for each member of an object, in file order.
    func forEachMember(_ body: (UnsafeBufferPointer<UInt8>, JSONNode) throws -> Void) rethrows {
        guard isObject else { return }
        var it = json_object_iter_begin(ptr)
        var end = json_object_iter_end(ptr)
        while json_object_iter_equal(&it, &end) == 0 {
            let name = json_object_iter_peek_name(&it)!
            let value = json_object_iter_peek_value(&it)
            let n = strlen(name)
            try name.withMemoryRebound(to: UInt8.self, capacity: n) {
                try body(UnsafeBufferPointer(start: $0, count: n), JSONNode(value))
            }
            json_object_iter_next(&it)
        }
    }

    /// A short description of the value's kind, for messages.
    var kind: String {
        guard let ptr else { return "null" }
        switch json_object_get_type(ptr) {
        case json_type_null: return "null"
        case json_type_boolean: return "a boolean"
        case json_type_int, json_type_double: return "a number"
        case json_type_string: return "a string"
        case json_type_array: return "an array"
        default: return "an object"
        }
    }
}
