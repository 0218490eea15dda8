import Testing
@testable import SafeTensors

@Suite struct JSONTests {
    func parse(_ s: String) throws -> JSONValue { try parseJSON(Array(s.utf8)) }

    @Test func parsesValues() throws {
        #expect(try parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null, "x"]} "#)
                == .object([("a", .array([.integer(1), .integer(-2), .number(3.5), .number(1000), .bool(true), .bool(false), .null, .string("x")]))]))
        #expect(try parse(#""\u00e9\ud83d\ude00\n\/""#) == .string("é😀\n/"))
        #expect(try parse("9223372036854775807") == .integer(Int.max))
        #expect(try parse("92233720368547758070") == .number(9.223372036854775807e19))
    }

    @Test func rejectsMalformedText() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "tru", "\"a\nb\"", "{} {}", "{\"a\":1,\"a\":1}"] {
            #expect(throws: JSONParseError.self, "\(bad)") { _ = try parse(bad) }
        }
    }

    @Test func writesCompactJSONAsSerde() {
        let v = JSONValue.object([("k", .string("\u{7f}\u{1f}\"")), ("n", .array([.integer(1), .null]))])
        #expect(compactJSON(v) == #"{"k":"\#u{7f}\u001f\"","n":[1,null]}"#)
    }

    @Test func writesIndentedJSONAsPython() {
        let v = JSONValue.object([("b", .object([])), ("a", .object([("z", .integer(1)), ("é", .string("😀"))]))])
        #expect(pythonIndentedJSON(v) == "{\n  \"a\": {\n    \"z\": 1,\n    \"\\u00e9\": \"\\ud83d\\ude00\"\n  },\n  \"b\": {}\n}")
    }
}
