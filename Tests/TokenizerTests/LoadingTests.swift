import Foundation
import Testing
@testable import Tokenizer

/// tokenizer.json in both merge forms, Qwen1's special tokens, and every bad input we can name.
@Suite struct LoadingTests {
    let tiny = fixtures.appendingPathComponent("tiny.json").path

    func expected() throws -> [[String: Any]] {
        try parseJSON([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("tiny-expected.json")))) as! [[String: Any]]
    }

    /// Rewrites tiny.json through `edit` into a temp file.
    func variant(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var doc = try parseJSON([UInt8](try Data(contentsOf: URL(fileURLWithPath: tiny)))) as! [String: Any]
        edit(&doc)
        let url = try tempDir().appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: doc).write(to: url)
        return url.path
    }

    func write(_ text: String) throws -> String {
        let url = try tempDir().appendingPathComponent("tokenizer.json")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test func pairMergesAsHFSavesThem() throws {
        let tok = try Tokenizer(tokenizerJSON: tiny)
        #expect(tok.addedTokens.map(\.content) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        for e in try expected() {
            let text = e["text"] as! String
            #expect(tok.encode(text) == ints(e["ids"]!), "\(quoted(text))")
            #expect(tok.encode(text, allowSpecial: false) == ints(e["no_special"]!), "\(quoted(text))")
        }
    }

    @Test func stringMergesGiveTheSameIds() throws {
        let path = try variant { doc in
            var model = doc["model"] as! [String: Any]
            model["merges"] = (model["merges"] as! [[String]]).map { $0.joined(separator: " ") }
            doc["model"] = model
        }
        let tok = try Tokenizer(tokenizerJSON: path)
        for e in try expected() { #expect(tok.encode(e["text"] as! String) == ints(e["ids"]!)) }
    }

    @Test func qwen1SpecialTokens() throws {
        let tok = try Tokenizer(tiktoken: try vocabPath(), specialTokens: QwenSpecialTokens.qwen1)
        #expect(tok.encode("<|extra_204|><|im_end|>") == [151_850, 151_645])
        #expect(tok.vocabularySize == 151_851)
        let qwen2 = try Shared.tiktoken.get()
        #expect(qwen2.encode("<tool_call><|file_sep|>") == [151_657, 151_664])
        #expect(qwen2.id(forToken: "<|im_end|>") == 151_645)
        #expect(qwen2.id(forToken: "hello") == 14990)
        #expect(qwen2.isSpecial(151_643) && !qwen2.isSpecial(151_657))
    }

    @Test func addedTokenFlags() throws {
        let path = try variant { doc in
            var added = doc["added_tokens"] as! [[String: Any]]
            added[1]["lstrip"] = true    // <|im_start|>
            added[2]["rstrip"] = true    // <|im_end|>
            added.append(["id": 2003, "content": "foo", "special": false, "single_word": true,
                          "lstrip": false, "rstrip": false, "normalized": false])
            doc["added_tokens"] = added
        }
        let tok = try Tokenizer(tokenizerJSON: path)
        let enc = tok.encodeWithOffsets("a  <|im_start|>b<|im_end|>  c")
        #expect(enc.ids.contains(2001) && enc.ids.contains(2002))
        let start = enc.offsets[enc.ids.firstIndex(of: 2001)!], end = enc.offsets[enc.ids.firstIndex(of: 2002)!]
        #expect(start == 1..<15)     // swallowed both spaces on its left
        #expect(end == 16..<28)      // and on its right
        #expect(tok.encode("foo bar").first == 2003)
        #expect(!tok.encode("foobar").contains(2003))   // single_word: not inside a word
        #expect(try tok.decode([2001, 2003, 2000], skipSpecialTokens: true) == "foo")
    }

    @Test func addedTokenFlagsMatchHF() throws {
        let tok = try Tokenizer(tokenizerJSON: fixtures.appendingPathComponent("tiny-flags.json").path)
        let cases = try parseJSON([UInt8](try Data(contentsOf: fixtures.appendingPathComponent("tiny-flags-expected.json")))) as! [[String: Any]]
        for c in cases {
            let text = c["text"] as! String
            let enc = tok.encodeWithOffsets(text)
            #expect(enc.ids == ints(c["ids"]!), "\(quoted(text))")
            let offsets = (c["offsets"] as! [Any]).map(ints)
            #expect(enc.characterOffsets(in: text).map { [$0.lowerBound, $0.upperBound] } == offsets, "\(quoted(text))")
        }
    }

    @Test func missingFile() {
        #expect(throws: TokenizerError.unreadable(path: "/no/such/tokenizer.json", reason: "no such file")) {
            try Tokenizer(tokenizerJSON: "/no/such/tokenizer.json")
        }
        #expect(throws: TokenizerError.noTokenizerInFolder(path: NSTemporaryDirectory())) {
            try Tokenizer(modelFolder: NSTemporaryDirectory())
        }
    }

    @Test func malformedJSONNamesLineAndColumn() throws {
        let path = try write("{\n  \"model\": {\n    \"vocab\": {\"a\": 1,,}\n}")
        let error = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: path) }
        #expect(error.description.contains(path))
        #expect(error.description.contains("line 3"))
    }

    @Test func truncatedJSON() throws {
        let path = try write("{\"model\": {\"vocab\": {")
        let error = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: path) }
        #expect(error.description.contains("ends too early"))
    }

    @Test func mergeNamingUnknownToken() throws {
        let path = try variant { doc in
            var model = doc["model"] as! [String: Any]
            var merges = model["merges"] as! [[String]]
            merges[5] = ["Ġ", "zzzz"]
            model["merges"] = merges
            doc["model"] = model
        }
        let error = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: path) }
        #expect(error == .unknownToken(path: path, location: "model.merges[5]", token: "zzzz"))
        #expect(error.description.contains("model.merges[5]") && error.description.contains("\"zzzz\""))
    }

    @Test func badMergeShapeAndVocabId() throws {
        let p1 = try variant { doc in
            var model = doc["model"] as! [String: Any]
            var merges = model["merges"] as! [Any]
            merges[0] = 42
            model["merges"] = merges
            doc["model"] = model
        }
        let e1 = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: p1) }
        #expect(e1.description.contains("model.merges[0]"))
        let p2 = try variant { doc in
            var model = doc["model"] as! [String: Any]
            var vocab = model["vocab"] as! [String: Any]
            vocab["Ġhello"] = "x"
            model["vocab"] = vocab
            doc["model"] = model
        }
        let e2 = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: p2) }
        #expect(e2.description.contains("model.vocab[\"Ġhello\"]"))
    }

    @Test func unsupportedPipelinesAreNamed() throws {
        let p1 = try variant { $0["normalizer"] = ["type": "NFKC"] }
        let e1 = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: p1) }
        #expect(e1.description.contains("normalizer") && e1.description.contains("NFKC"))
        let p2 = try variant { $0["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true] }
        let e2 = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: p2) }
        #expect(e2.description.contains("pre_tokenizer"))
        let p3 = try variant { doc in
            var model = doc["model"] as! [String: Any]
            model["type"] = "WordPiece"
            doc["model"] = model
        }
        let e3 = try #require(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: p3) }
        #expect(e3.description.contains("model.type"))
    }

    @Test func badTiktokenLines() throws {
        let dir = try tempDir()
        var lines = (0..<256).map { Data([UInt8($0)]).base64EncodedString() + " \($0)" }
        let ok = dir.appendingPathComponent("ok.tiktoken")
        try Data(lines.joined(separator: "\n").utf8).write(to: ok)
        #expect(try Tokenizer(tiktoken: ok.path, specialTokens: []).encode("hi") == [104, 105])
        lines[9] = "!!notbase64 9"
        let bad = dir.appendingPathComponent("bad.tiktoken")
        try Data(lines.joined(separator: "\n").utf8).write(to: bad)
        let e = try #require(throws: TokenizerError.self) { try Tokenizer(tiktoken: bad.path) }
        #expect(e.description.contains("line 10") && e.description.contains("base64"))
        lines[9] = "CQ== x"
        try Data(lines.joined(separator: "\n").utf8).write(to: bad)
        let e2 = try #require(throws: TokenizerError.self) { try Tokenizer(tiktoken: bad.path) }
        #expect(e2.description.contains("line 10") && e2.description.contains("rank"))
        lines[9] = "CQ== 8"
        try Data(lines.joined(separator: "\n").utf8).write(to: bad)
        let e3 = try #require(throws: TokenizerError.self) { try Tokenizer(tiktoken: bad.path) }
        #expect(e3.description.contains("appears twice"))
        lines[9] = "CQ== 9"
        try Data(lines[0..<100].joined(separator: "\n").utf8).write(to: bad)
        let e4 = try #require(throws: TokenizerError.self) { try Tokenizer(tiktoken: bad.path) }
        #expect(e4.description.contains("0x64"))
    }

    @Test func decodeIdOutOfRange() throws {
        let tok = try Tokenizer(tokenizerJSON: tiny)
        #expect(throws: TokenizerError.idOutOfRange(id: 5000, position: 1, vocabularySize: 2003)) {
            try tok.decode([1, 5000])
        }
        #expect(throws: TokenizerError.self) { try tok.decode([-1]) }
        #expect(throws: TokenizerError.self) { try tok.streamingDecoder().push(99999) }
        // As HF: ids past the vocabulary (a model's padding rows) can be skipped instead.
        #expect(try tok.decode([39, 5000, 301], skipUnknownIds: true) == (try tok.decode([39, 301])))
        #expect(try tok.streamingDecoder(skipUnknownIds: true).push(5000) == "")
        #expect(!tok.isKnown(5000) && tok.isKnown(2000) && tok.isKnown(39))
    }

    @Test func idListParsing() throws {
        #expect(try IdList.parse(" [1, 2,3]\n", source: "stdin") == [1, 2, 3])
        #expect(IdList.json([1, 2, 3]) == "[1,2,3]")
        #expect(throws: TokenizerError.self) { try IdList.parse("[1, \"a\"]", source: "stdin") }
        #expect(throws: TokenizerError.self) { try IdList.parse("[1.5]", source: "stdin") }
        #expect(throws: TokenizerError.self) { try IdList.parse("{}", source: "stdin") }
        #expect(throws: TokenizerError.self) { try IdList.parse("[true]", source: "stdin") }
    }
}
