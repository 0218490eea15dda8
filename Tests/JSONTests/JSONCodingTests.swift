import Foundation
import Testing
@testable import JSON

/// A config-like type: renamed keys, optionals, nested values, a dictionary, a custom decoder.
private struct Sample: Codable, Equatable {
    struct Inner: Codable, Equatable { var name: String; var ids: [Int32] }
    var size: Int
    var rate: Double
    var eps: Float
    var flag: Bool?
    var inner: Inner
    var table: [String: Int]
    var list: [Inner]
    enum CodingKeys: String, CodingKey { case size = "hidden_size", rate, eps, flag, inner, table, list }
}

@Suite struct JSONCodingTests {
    let text = #"{"hidden_size": 64, "rate": 1, "eps": 1e-06, "inner": {"name": "a\ufeffb", "ids": [1, 2.0]}, "table": {"x": 3}, "list": []}"#

    @Test func decodesLikeFoundation() throws {
        let s = try JSONValueDecoder().decode(Sample.self, from: Array(text.utf8))
        #expect(s == Sample(size: 64, rate: 1, eps: 1e-6, flag: nil, inner: .init(name: "a\u{feff}b", ids: [1, 2]), table: ["x": 3], list: []))
        // The same value through Foundation's decoder (its Linux parser drops U+FEFF, so not compared there).
        var viaFoundation = try JSONDecoder().decode(Sample.self, from: Data(text.utf8))
        viaFoundation.inner.name = s.inner.name
        #expect(viaFoundation == s)
    }

    @Test func errorsCarryTheKeyPath() throws {
        func failure(_ json: String) -> DecodingError? {
            do { _ = try JSONValueDecoder().decode(Sample.self, from: Array(json.utf8)); return nil } catch let e as DecodingError { return e } catch { return nil }
        }
        func path(_ ctx: DecodingError.Context) -> String { ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        guard case let .keyNotFound(key, _)? = failure(#"{"rate": 1}"#) else { Issue.record("expected keyNotFound"); return }
        #expect(key.stringValue == "hidden_size")
        let wrongType = text.replacingOccurrences(of: #""name": "a\ufeffb""#, with: #""name": 5"#)
        guard case let .typeMismatch(type, ctx)? = failure(wrongType) else { Issue.record("expected typeMismatch"); return }
        #expect(type == String.self && path(ctx) == "inner.name")
        let null = text.replacingOccurrences(of: #""rate": 1"#, with: #""rate": null"#)
        guard case .valueNotFound(_, let nullCtx)? = failure(null) else { Issue.record("expected valueNotFound"); return }
        #expect(path(nullCtx) == "rate")
        let fraction = text.replacingOccurrences(of: "[1, 2.0]", with: "[1, 2.5]")
        guard case .dataCorrupted(let fracCtx)? = failure(fraction) else { Issue.record("expected dataCorrupted"); return }
        #expect(path(fracCtx) == "inner.ids.[1]")
        let tooBig = text.replacingOccurrences(of: "[1, 2.0]", with: "[1, 4294967296]")
        guard case .dataCorrupted? = failure(tooBig) else { Issue.record("expected dataCorrupted for Int32 overflow"); return }
    }

    @Test func syntaxErrorsNameLineAndColumn() {
        #expect(throws: JSONError.self) { try JSONValueDecoder().decode(Sample.self, from: Array("{\n  \"rate\": 1,\n}".utf8)) }
        do { _ = try JSONValueDecoder().decode(Sample.self, from: Array("{\n  \"rate\": 1,\n}".utf8)) } catch let e as JSONError {
            #expect(e.line == 3 && e.column == 1)
        } catch { Issue.record("\(error)") }
    }

    @Test func encodesInOrderAndMatchesFoundationsLayout() throws {
        let s = Sample(size: 64, rate: 1, eps: 0.5, flag: true, inner: .init(name: "x/y é", ids: [3]), table: ["b": 1, "a": 2],
                       list: [.init(name: "", ids: [4, 5])])
        let v = try JSONValueEncoder().encode(s)
        #expect(v.objectValue?.map(\.0) == ["hidden_size", "rate", "eps", "flag", "inner", "table", "list"])
        #expect(v["rate"] == .double(1) && v["hidden_size"] == .int(64))
        // Foundation's encoder, sorted keys, slashes unescaped: the same bytes, pretty and compact
        // (not for empty containers, which Foundation pretty-prints with a blank line inside).
        for pretty in [false, true] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
            let foundation = String(decoding: try encoder.encode(s), as: UTF8.self)
            #expect(v.text(.foundation(pretty: pretty)) == foundation)
        }
    }

    @Test func roundTrips() throws {
        let s = Sample(size: -3, rate: 0.1, eps: 1e-5, flag: false, inner: .init(name: "\u{feff}", ids: [Int32.min, Int32.max]),
                       table: [:], list: [.init(name: "n", ids: [0])])
        let text = try JSONValueEncoder().encode(s).text(.python(indent: 2))
        #expect(try JSONValueDecoder().decode(Sample.self, from: Array(text.utf8)) == s)
    }
}
