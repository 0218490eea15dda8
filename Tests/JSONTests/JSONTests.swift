import Foundation
import Testing
@testable import JSON

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

func fixtureText(_ name: String) throws -> String {
    try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
}

/// One value with every kind, escapes, extreme integers and awkward doubles. The fixtures
/// Fixtures/*.json are what the writers this layer replaced (SafeTensors' serde-style writer and
/// its `pythonIndentedJSON`) printed for it.
let sample = JSONValue.object([
    ("z", .string("plain")), ("é", .string("\u{7f}\u{1f}\u{8}\u{c}\n\r\t\"\\/ é😀\u{feff}\u{2028}")),
    ("ints", .array([.int(0), .int(-1), .int(Int.max), .int(Int.min)])),
    ("doubles", .array([.double(0.1), .double(1e-05), .double(1e16), .double(-0.0), .double(3.0), .double(.nan),
                        .double(.infinity), .double(123456.789), .double(1e300)])),
    ("nested", .object([("a", .array([])), ("b", .object([])), ("c", .array([.array([.null, .bool(true), .bool(false)])]))])),
    ("A", .null),
])

@Suite struct JSONParserTests {
    @Test func parsesValuesKeepingOrderAndIntegers() throws {
        #expect(try JSONValue.parse(#" {"b": [1, -2, 3.5, 1e3, true, false, null, "x"], "a": -0} "#)
                == .object([("b", .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null, .string("x")])),
                            ("a", .int(0))]))
        #expect(try JSONValue.parse("9223372036854775807") == .int(Int.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(Int.min))
        #expect(try JSONValue.parse("92233720368547758070") == .double(9.223372036854775807e19))
        #expect(try JSONValue.parse(#""\u00e9\ud83d\ude00\n\/\b\f""#) == .string("é😀\n/\u{8}\u{c}"))
    }

    /// Keys are the same when their code points are (JSON's and Python's rule), not by Swift's
    /// canonical equivalence; a large object (indexed) finds its duplicates as a small one does.
    @Test func keysCompareByCodePoints() throws {
        let v = try JSONValue.parse("{\"\u{e9}\": 1, \"e\u{301}\": 2}")
        #expect(v.objectValue?.map(\.0.unicodeScalars.count) == [1, 2])
        let many = (0..<40).map { "\"k\($0)é\": \($0)" }.joined(separator: ", ")
        #expect(try JSONValue.parse("{\(many)}").objectValue?.count == 40)
        #expect(throws: JSONError.self) { _ = try JSONValue.parse("{\(many), \"k7é\": 0}") }
        let last = try JSONValue.parse("{\(many), \"k7é\": -1, \"a\": 2}", options: .python)
        #expect(last["k7é"] == .int(-1) && last.objectValue?.count == 41 && last.objectValue?[7].0 == "k7é")
    }

    @Test func refusesMalformedUTF8() throws {
        func parse(_ inner: [UInt8], _ options: JSONOptions = .strict) throws -> JSONValue {
            try JSONValue.parse([0x22] + inner + [0x22], options: options)
        }
        #expect(try parse([0xF0, 0x9F, 0x98, 0x80, 0xE2, 0x82, 0xAC, 0xC3, 0xA9, 0x41]) == .string("😀€éA"))
        for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xF8, 0x80, 0x80, 0x80, 0x80]] {
            #expect(throws: JSONError(reason: "string is not valid UTF-8", offset: 1, line: 1, column: 2), "\(bad)") { _ = try parse(bad) }
            #expect(try parse(bad, .python).stringValue?.unicodeScalars.allSatisfy { $0 == "\u{fffd}" } == true, "\(bad)")
        }
    }

    @Test func keepsByteOrderMarksInsideStrings() throws {
        // Foundation's JSONSerialization drops U+FEFF on Linux; a tokenizer vocabulary needs it.
        #expect(try JSONValue.parse("[\"\u{feff}a\", \"\\ufeff\"]") == .array([.string("\u{feff}a"), .string("\u{feff}")]))
    }

    @Test func reportsWhereTextIsMalformed() {
        func error(_ text: String, _ options: JSONOptions = .strict) -> JSONError? {
            do { _ = try JSONValue.parse(text, options: options); return nil } catch { return error }
        }
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "tru", "\"a\nb\"",
                    "{} {}", "NaN", "[1e]", "\"abc"] {
            #expect(error(bad) != nil, "\(bad)")
        }
        let e = error("{\n  \"a\": 1,\n  \"é\": 2,\n  \"a\": 3}")
        #expect(e?.reason == "duplicate key \"a\"")
        #expect(e?.offset == 25 && e?.line == 4 && e?.column == 3)
        #expect(e?.description == "line 4, column 3: duplicate key \"a\"")
        #expect(error("[\"é\", x]")?.column == 7)
        #expect(error("\"ab")?.offset == 0)
        #expect(error("{\"a\": {")?.reason == "unexpected end of JSON inside an object")
        #expect(error("{\"a\"")?.offset == 4)
        #expect(error(String(repeating: "[", count: 100_000))?.reason == "JSON nested deeper than 256 levels")
        var bytes = Array("\"ab".utf8) + [0xFF] + Array("\"".utf8)
        #expect(throws: JSONError(reason: "string is not valid UTF-8", offset: 1, line: 1, column: 2)) {
            _ = try JSONValue.parse(bytes)
        }
        bytes = Array("\"a\\n".utf8) + [0xC3] + Array("\"".utf8)
        #expect(throws: JSONError.self) { _ = try JSONValue.parse(bytes) }
    }

    @Test func pythonOptionsReadWhatJsonLoadsReads() throws {
        let v = try JSONValue.parse(#"{"a": 1, "b": [NaN, Infinity, -Infinity], "a": 2, "s": "x\#u{1}\udc00\ud800\u0041"}"#, options: .python)
        guard case let .object(pairs) = v, case let .array(nums) = pairs[1].1 else { Issue.record("\(v)"); return }
        #expect(pairs.map(\.0) == ["a", "b", "s"])
        #expect(pairs[0].1 == .int(2))
        #expect(nums[0].doubleValue?.isNaN == true && nums[1] == .double(.infinity) && nums[2] == .double(-.infinity))
        #expect(pairs[2].1 == .string("x\u{1}\u{fffd}\u{fffd}A"))
        #expect(try JSONValue.parse(Array("\"a".utf8) + [0xFF] + Array("\"".utf8), options: .python) == .string("a\u{fffd}"))
    }

    /// A builder that counts instead of building: the parser drives any value type.
    struct Counter: JSONBuilder {
        var scalars = 0, containers = 0
        mutating func null() -> Int { scalars += 1; return 0 }
        mutating func bool(_ b: Bool) -> Int { scalars += 1; return 0 }
        mutating func int(_ i: Int) -> Int { scalars += 1; return i }
        mutating func double(_ d: Double) -> Int { scalars += 1; return 0 }
        mutating func string(_ s: String) -> Int { scalars += 1; return s.count }
        mutating func beginArray() -> Int { 0 }
        mutating func append(_ value: Int, to array: inout Int) { array += value }
        mutating func endArray(_ array: Int) -> Int { containers += 1; return array }
        mutating func beginObject() -> Int { 0 }
        mutating func add(_ key: String, _ value: Int, to object: inout Int) -> Bool { object += value; return true }
        mutating func endObject(_ object: Int) -> Int { containers += 1; return object }
    }

    @Test func drivesAnyBuilder() throws {
        var counter = Counter()
        let sum = try JSONParser.parse(#"{"a": [1, 2, "abc"], "b": {"c": null, "d": 4}}"#, builder: &counter)
        #expect(sum == 10 && counter.scalars == 5 && counter.containers == 3)
    }
}

@Suite struct JSONWriterTests {
    @Test func compactIsSerdeJSON() throws {
        #expect(sample.text(.compact) == (try fixtureText("compact.json")))
        #expect(JSONValue.object([("k", .string("\u{7f}\u{1f}\"")), ("n", .array([.int(1), .null]))]).text()
                == #"{"k":"\#u{7f}\u001f\"","n":[1,null]}"#)
    }

    @Test func pythonIndentIsJsonDumps() throws {
        #expect(sample.text(.python(indent: 2, sortKeys: true)) == (try fixtureText("python-indent2-sorted-ascii.json")))
        #expect(JSONValue.array([.int(1), .object([("b", .null), ("a", .string("é"))])]).text(.python(indent: nil, ensureASCII: false))
                == #"[1, {"b": null, "a": "é"}]"#)
    }

    @Test func pythonIndentSortsKeysByCodePointAndEscapes() {
        let v = JSONValue.object([("b", .object([])), ("a", .object([("z", .int(1)), ("é", .string("😀"))]))])
        #expect(v.text(.python(indent: 2, sortKeys: true)) == "{\n  \"a\": {\n    \"z\": 1,\n    \"\\u00e9\": \"\\ud83d\\ude00\"\n  },\n  \"b\": {}\n}")
    }

    /// The training config files' layout (Training's `compactText` and `prettyText`): arrays of
    /// scalars on one line. Fixtures/training-*.json are what Training's own writer printed; the
    /// one intended difference is that U+0008 and U+000C now print as `\b` and `\f`, as Python's
    /// json module and serde_json write them, where Training's writer wrote `\u0008` and `\u000c`.
    @Test func scalarArraysOnOneLine() throws {
        let v = JSONValue.object([
            ("z", .string("plain")), ("é", .string("\u{7f}\u{1f}\u{8}\u{c}\n\r\t\"\\/ é😀\u{feff}\u{2028}")),
            ("ints", .array([.int(0), .int(-1), .int(9_007_199_254_740_991), .double(1e16), .int(-5)])),
            ("doubles", .array([.double(0.1), .double(1e-05), .double(1e16), .double(-0.0), .double(3.0), .double(.nan),
                                .double(.infinity), .double(123456.789), .double(1e300)])),
            ("nested", .object([("a", .array([])), ("b", .object([])), ("c", .array([.array([.null, .bool(true), .bool(false)])])),
                                ("d", .array([.object([("x", .int(1))]), .int(2)])), ("e", .array([.string("s"), .null]))])),
            ("A", .null),
        ])
        func golden(_ name: String) throws -> String {
            try fixtureText(name).replacingOccurrences(of: "\\u0008", with: "\\b").replacingOccurrences(of: "\\u000c", with: "\\f")
        }
        let compact = JSONStyle(indent: nil, itemSeparator: ",", keySeparator: ":", scalarArraySeparator: ", ")
        let pretty = JSONStyle(indent: "  ", itemSeparator: ",", keySeparator: ": ", scalarArraySeparator: ", ")
        #expect(v.text(compact) == (try golden("training-compact.json")))
        #expect(v.text(pretty) == (try golden("training-pretty.json")))
    }

    @Test func roundTripsThroughTheParser() throws {
        let text = sample.text()
        #expect(try JSONValue.parse(text).text() == text)
    }
}
