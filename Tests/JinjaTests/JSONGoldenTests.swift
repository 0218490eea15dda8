import Foundation
import Testing
@testable import Jinja

/// `tojson` and `Value.parseJSON` through the JSON target. Fixtures/json/tojson.txt is what Jinja's
/// own writer printed before the fold, and what Python's `json.dumps(json.loads(source), …)`
/// prints (checked against Python 3; a lone surrogate, which a Swift string cannot hold, is read
/// as U+FFFD).
@Suite struct JSONGoldenTests {
    static let source = #"{"z": "plain", "é": "\u007f\u001f\b\f\n\r\t\"\\/ é😀\ufeff\u2028\ud800x", "ints": [0, -1, 9223372036854775807, -0], "doubles": [0.1, 1e-05, 1e16, -0.0, 3.0, NaN, Infinity, -Infinity, 123456.789, 1e300, 2.5e-7, 1E2], "nested": {"a": [], "b": {}, "c": [[null, true, false]]}, "A": null, "dup": 1, "dup": 2}"#

    @Test func tojsonIsJsonDumps() throws {
        let v = try Value.parseJSON(Self.source)
        var out = ""
        for args in ["", "(indent=2)", "(indent=2, sort_keys=True)", "(separators=[',', ':'])", "(ensure_ascii=True)",
                     "(indent='\\t', ensure_ascii=True, sort_keys=True)", "(indent=0)"] {
            out += "== tojson\(args)\n" + (try Template("{{ v | tojson\(args) }}").render(["v": v])) + "\n"
            // The filter outside an output tag (no direct write into the output buffer) prints the same.
            let viaSet = try Template("{% set s = v | tojson\(args) %}{{ s }}").render(["v": v])
            #expect(out.hasSuffix(viaSet + "\n"), "\(args)")
        }
        let golden = try String(contentsOf: jinjaFixtures.appendingPathComponent("json/tojson.txt"), encoding: .utf8)
        #expect(out == golden)
    }

    /// What Python's `json.loads` reads, and what it refuses (each refusal names line and column).
    @Test func parsesWhatJsonLoadsParses() throws {
        func tojson(_ text: String) throws -> String { try Template("{{ v | tojson }}").render(["v": try Value.parseJSON(text)]) }
        #expect(try tojson(#"{"a": 1, "a": 2, "b": NaN, "c": -Infinity, "d": "a\#u{1}b", "e": "\udc00"}"#)
                == "{\"a\": 2, \"b\": NaN, \"c\": -Infinity, \"d\": \"a\\u0001b\", \"e\": \"\u{fffd}\"}")
        #expect(try tojson("92233720368547758070") == "9.223372036854776e+19")
        #expect(try tojson(String(repeating: "[", count: 513) + String(repeating: "]", count: 513)).hasPrefix("[[[["))
        for bad in ["[01]", "[1.]", "[.5]", "[1,2,]", "{\"a\" 1}", "", "{", "[1] x", "\"\\x\"", "tru", "[1e]", "-", "\"abc", "{\"a\":1,}",
                    "[+1]", "-NaN", String(repeating: "[", count: 600) + String(repeating: "]", count: 600)] {
            #expect(throws: JSONParseError.self, "\(bad)") { try Value.parseJSON(bad) }
        }
        let e = try #require(throws: JSONParseError.self) { try Value.parseJSON("[\"é\",\n x]") }
        #expect(e.line == 2 && e.column == 2 && e.description == "invalid JSON at line 2, column 2: unexpected character 'x'")
    }
}
