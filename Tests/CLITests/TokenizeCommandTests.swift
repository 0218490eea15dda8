import Foundation
import Testing

/// `qwenft tokenize` end to end: the tiny model folder fixture, the real vocabulary, bad input.
@Suite struct TokenizeCommandTests {
    let tinyModel = cliFixtures.appendingPathComponent("tiny-model").path

    func realVocab() throws -> String {
        let path = ProcessInfo.processInfo.environment["QWENFT_VOCAB"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".cache/qwen-vocab/qwen.tiktoken").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLITestError("the Qwen vocabulary is missing at \(path): run Scripts/fetch-vocab.sh")
        }
        return path
    }

    func ids(_ s: String) -> [Int] {
        (try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [Int]) ?? [-1]
    }

    @Test func encodesAsHFOnTheModelFolder() throws {
        let expected = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: tinyModel).appendingPathComponent("expected.json"))) as! [[String: Any]]
        for e in expected {
            let text = e["text"] as! String
            let r = try runQwenft(["tokenize", "--model", tinyModel], stdin: Data(text.utf8))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(ids(r.stdout) == e["ids"] as! [Int], "\(text)")
            let plain = try runQwenft(["tokenize", "--model", tinyModel, "--no-special", "--text", text])
            #expect(ids(plain.stdout) == e["no_special"] as! [Int], "\(text)")
        }
    }

    @Test func realVocabularyAndDecode() throws {
        let vocab = try realVocab()
        let r = try runQwenft(["tokenize", "--tokenizer", vocab, "--text", "Hello world! 你好，世界。<|im_start|>"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "[9707,1879,0,220,108386,3837,99489,1773,151644]\n")
        let d = try runQwenft(["tokenize", "--tokenizer", vocab, "--decode"], stdin: Data(r.stdout.utf8))
        #expect(d.status == 0)
        #expect(d.stdout == "Hello world! 你好，世界。<|im_start|>")
        let skip = try runQwenft(["tokenize", "--tokenizer", vocab, "--decode", "--skip-special-tokens", "--text", "[151644,9707]"])
        #expect(skip.stdout == "Hello")
    }

    @Test func idOutOfRangeInDecode() throws {
        let r = try runQwenft(["tokenize", "--model", tinyModel, "--decode", "--text", "[1, 2, 999999]"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error:"))
        #expect(r.stderr.contains("999999") && r.stderr.contains("position 2"))
    }

    @Test func badIdList() throws {
        let r = try runQwenft(["tokenize", "--model", tinyModel, "--decode"], stdin: Data("[1, \"x\"]".utf8))
        #expect(r.status == 1)
        #expect(r.stderr.contains("element 1"))
    }

    @Test func missingAndMalformedFiles() throws {
        let r = try runQwenft(["tokenize", "--tokenizer", "/no/such/tokenizer.json", "--text", "x"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/no/such/tokenizer.json"))
        let dir = try makeTempDir()
        let bad = dir.appendingPathComponent("tokenizer.json")
        try Data("{\"model\": [1,\n2,,]}".utf8).write(to: bad)
        let m = try runQwenft(["tokenize", "--tokenizer", bad.path, "--text", "x"])
        #expect(m.status == 1)
        #expect(m.stderr.contains(bad.path) && m.stderr.contains("line 2"))
        let empty = try runQwenft(["tokenize", "--model", dir.deletingLastPathComponent().path, "--text", "x"])
        #expect(empty.status == 1)
    }

    @Test func needsExactlyOneSource() throws {
        let r = try runQwenft(["tokenize", "--text", "x"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("--model") && r.stderr.contains("--tokenizer"))
    }
}
