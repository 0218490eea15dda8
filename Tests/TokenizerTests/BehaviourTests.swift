import Foundation
import Testing
@testable import Tokenizer

/// Pre-tokenizer pieces, streaming, offsets and NFC on hand-picked cases.
@Suite struct BehaviourTests {
    func pieces(_ s: String) -> [String] {
        var s = s
        return s.withUTF8 { buf in
            var out: [String] = []
            guard let base = buf.baseAddress else { return out }
            var scanner = PreTokenizer(base, buf.count)
            while let r = scanner.next() { out.append(String(decoding: buf[r], as: UTF8.self)) }
            return out
        }
    }

    @Test func scannerFollowsTheRegex() {
        #expect(pieces("Hello world") == ["Hello", " world"])
        #expect(pieces("I'LL don't 'sound") == ["I", "'LL", " don", "'t", " '", "sound"])
        #expect(pieces("x  y") == ["x", " ", " y"])
        #expect(pieces("x   \n\ny") == ["x", "   \n\n", "y"])
        #expect(pieces("a \t!!\r\n\r\nb") == ["a", " ", "\t", "!!\r\n\r\n", "b"])
        #expect(pieces("end   ") == ["end", "   "])
        #expect(pieces(" 123") == [" ", "1", "2", "3"])
        #expect(pieces("\u{3000}你好") == ["\u{3000}你好"])
        #expect(pieces("\n你好") == ["\n", "你好"])
        #expect(pieces("(hello)...") == ["(hello", ")..."])
        #expect(pieces("'ſ") == ["'ſ"])
        #expect(pieces("") == [])
    }

    @Test func streamingHoldsSplitCharacters() throws {
        let tok = try Shared.tiktoken.get()
        for text in ["👨‍👩‍👧‍👦 家庭", "𠀀𠀁𪚥", "🇨🇳👍🏽", "é"] {
            let ids = tok.encode(text)
            let stream = tok.streamingDecoder()
            var pieces: [String] = []
            for id in ids { pieces.append(try stream.push(id)) }
            pieces.append(stream.finish())
            #expect(pieces.joined() == text)
            #expect(!pieces.joined().contains("\u{FFFD}"))
        }
        // An unfinished character at the end becomes U+FFFD only at finish().
        let stream = tok.streamingDecoder()
        let first = tok.encode("𪚥")[0]
        #expect(try stream.push(first) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }

    @Test func completePrefix() {
        #expect(completePrefixLength([0x61, 0xE4, 0xBD]) == 1)
        #expect(completePrefixLength([0xE4, 0xBD, 0xA0]) == 3)
        #expect(completePrefixLength([0xE0, 0x80]) == 2)    // E0 80 can never be finished
        #expect(completePrefixLength([0xF0, 0x9F, 0x98]) == 0)
        #expect(completePrefixLength([0xBD, 0xA0]) == 2)
        #expect(completePrefixLength([]) == 0)
    }

    @Test func offsetsThroughNFC() throws {
        let tok = try Shared.tiktoken.get()
        let text = "cafe\u{301} au lait"
        let enc = tok.encodeWithOffsets(text)
        #expect(try tok.decode(enc.ids) == "café au lait")
        #expect(enc.offsets.last?.upperBound == text.utf8.count)
        #expect(enc.offsets.first?.lowerBound == 0)
        // The token holding "é" covers the whole changed run "e\u{301}" (bytes 3..<6).
        #expect(enc.offsets.contains { $0.contains(3) && $0.upperBound == 6 })
    }

    @Test func specialTokensAsPlainText() throws {
        let tok = try Shared.tiktoken.get()
        #expect(tok.encode("<|im_start|>") == [151_644])
        let plain = tok.encode("<|im_start|>", allowSpecial: false)
        #expect(plain.count > 1 && !plain.contains(151_644))
        #expect(try tok.decode(plain) == "<|im_start|>")
        #expect(try tok.decode([151_644, 872], skipSpecialTokens: true) == "user")
    }

    @Test func heapAndScanAgreeOnEveryPiece() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get()
        var checked = 0
        for text in corpus.prefix(1500) + [String(repeating: "你好世界机器学习", count: 40), String(repeating: " ", count: 500)] {
            var text = text
            text.withUTF8 { buf in
                guard let base = buf.baseAddress else { return }
                var scanner = PreTokenizer(base, buf.count)
                while let r = scanner.next() {
                    if r.count < 2 { continue }
                    var a: [Int32] = [], b: [Int32] = []
                    tok.bpe.scan(base + r.lowerBound, r.count, hot: nil, into: &a)
                    tok.bpe.heap(base + r.lowerBound, r.count, hot: nil, into: &b)
                    #expect(a == b)
                    checked += 1
                }
            }
        }
        #expect(checked > 10_000)
    }
}
