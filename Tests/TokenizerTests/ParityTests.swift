import Foundation
import Testing
@testable import Tokenizer

/// Ids identical to tiktoken and HF `tokenizers` on the >= 1 MB hard corpus, on the real vocabulary.
@Suite struct ParityTests {
    @Test func corpusIsLargeAndHard() throws {
        let corpus = try Shared.corpus.get()
        #expect(corpus.reduce(0) { $0 + $1.utf8.count } >= 1_000_000)
        #expect(corpus.contains(""))
        #expect(try Shared.ids.get().count == corpus.count)
    }

    @Test func tiktokenVocabularyGivesTiktokenIds() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get(), expected = try Shared.ids.get()
        var bad: [Int] = []
        for (k, text) in corpus.enumerated() where tok.encode(text) != expected[k] { bad.append(k) }
        #expect(bad.isEmpty, "cases differing from tiktoken: \(bad.prefix(20))")
        for k in bad.prefix(8) {
            let ours = tok.encode(corpus[k]), want = expected[k]
            var d = 0
            while d < min(ours.count, want.count) && ours[d] == want[d] { d += 1 }
            let text = try tok.decode(Array(want[max(0, d - 2)..<min(want.count, d + 3)]))
            print("case \(k) at \(d): ours \(ours[d..<min(ours.count, d + 4)]) want \(want[d..<min(want.count, d + 4)]) around \(quoted(text))")
        }
    }

    @Test func writtenTokenizerJSONGivesHFIds() throws {
        let (tok, _) = try Shared.written.get()
        let corpus = try Shared.corpus.get(), expected = try Shared.ids.get()
        let hfDiffers: [Int: Any] = try byCase("hf_differs")
        var bad: [Int] = []
        for (k, text) in corpus.enumerated() {
            let want = hfDiffers[k].map(ints) ?? expected[k]
            if tok.encode(text) != want { bad.append(k) }
        }
        #expect(bad.isEmpty, "cases differing from HF tokenizers: \(bad.prefix(20))")
    }

    @Test func writerDerivesTheConvertersMerges() throws {
        let (_, bytes) = try Shared.written.get()
        let ref = try Shared.reference.get()
        // The merges array, one "a b" per line as the generator hashes it.
        let doc = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        let model = doc["model"] as! [String: Any]
        let merges = model["merges"] as! [String]
        #expect(merges.count == (ref["merges_count"] as! NSNumber).intValue)
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for m in merges { for b in m.utf8 + [0x0A] { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        #expect(String(format: "%016llx", h) == ref["merges_fnv1a64"] as! String)
        #expect((doc["added_tokens"] as! [Any]).count == 22)
    }

    @Test func specialTokensAsTextMatchHF() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get()
        let noSpecial: [Int: Any] = try byCase("no_special")
        #expect(noSpecial.count > 50)
        for (k, ids) in noSpecial {
            #expect(tok.encode(corpus[k], allowSpecial: false) == ints(ids), "case \(k): \(quoted(corpus[k]))")
        }
    }

    @Test func nfcMatchesPython() throws {
        let corpus = try Shared.corpus.get()
        let nfc: [Int: String] = try byCase("nfc")
        #expect(nfc.count > 20)
        for (k, text) in corpus.enumerated() {
            let want = nfc[k] ?? text
            #expect(Array(text.qwenNFC.utf8) == Array(want.utf8), "case \(k)")
        }
    }

    @Test func decodeOfEncodeIsNFC() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get()
        let nfc: [Int: String] = try byCase("nfc")
        for (k, text) in corpus.enumerated() {
            let back = try tok.decode(tok.encode(text))
            #expect(Array(back.utf8) == Array((nfc[k] ?? text).utf8), "case \(k)")
        }
    }

    @Test func decodeReplacesInvalidUTF8AsPython() throws {
        let tok = try Shared.tiktoken.get()
        let cases = try Shared.reference.get()["decode"] as! [[String: Any]]
        #expect(cases.count > 100)
        for c in cases {
            let ids = ints(c["ids"]!)
            #expect(try tok.decode(ids) == c["text"] as! String, "\(ids)")
            #expect(try tok.decode(ids, skipSpecialTokens: true) == c["skip"] as! String, "\(ids)")
        }
    }

    @Test func streamingEqualsFullDecode() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get(), expected = try Shared.ids.get()
        for (k, ids) in expected.enumerated() {
            let stream = tok.streamingDecoder()
            var text = ""
            for id in ids {
                let piece = try stream.push(id)
                #expect(!piece.unicodeScalars.contains("\u{FFFD}") || corpus[k].unicodeScalars.contains("\u{FFFD}"), "case \(k)")
                text += piece
            }
            text += stream.finish()
            #expect(Array(text.utf8) == Array(try tok.decode(ids).utf8), "case \(k)")
        }
        let cases = try Shared.reference.get()["decode"] as! [[String: Any]]
        for c in cases {
            let ids = ints(c["ids"]!)
            let stream = tok.streamingDecoder(skipSpecialTokens: true)
            var text = ""
            for id in ids { text += try stream.push(id) }
            text += stream.finish()
            #expect(text == c["skip"] as! String, "\(ids)")
        }
    }

    @Test func characterOffsetsMatchHF() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get()
        let offsets: [Int: Any] = try byCase("offsets")
        #expect(offsets.count > 100)
        for (k, want) in offsets {
            let enc = tok.encodeWithOffsets(corpus[k])
            let got = enc.characterOffsets(in: corpus[k]).map { [$0.lowerBound, $0.upperBound] }
            let expected = (want as! [Any]).map(ints)
            #expect(got == expected, "case \(k): \(quoted(corpus[k]))")
        }
    }

    @Test func byteOffsetsTileTheText() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = try Shared.corpus.get()
        let nfc: [Int: String] = try byCase("nfc")
        for (k, text) in corpus.enumerated() {
            let enc = tok.encodeWithOffsets(text)
            #expect(enc.ids == tok.encode(text))
            #expect(enc.offsets.count == enc.ids.count)
            let utf8 = Array(text.utf8)
            var at = 0
            for (r, id) in zip(enc.offsets, enc.ids) {
                #expect(r.lowerBound >= at || nfc[k] != nil, "case \(k)")
                if nfc[k] == nil && !tok.isSpecial(id) && id < 151_643 {
                    #expect(Array(utf8[r]) == tok.bytes(forId: id)!, "case \(k)")
                }
                at = r.upperBound
            }
            #expect(at == utf8.count || text.isEmpty, "case \(k)")
        }
    }

    @Test func batchEqualsOneByOne() throws {
        let tok = try Shared.tiktoken.get()
        let corpus = Array(try Shared.corpus.get().prefix(600))
        let batch = tok.encodeBatch(corpus)
        for (k, text) in corpus.enumerated() { #expect(batch[k].map { Int($0) } == tok.encode(text)) }
    }

    @Test func vocabularyLoadsFast() throws {
        let path = try vocabPath()
        let t0 = Date()
        let tok = try Tokenizer(tiktoken: path)
        let seconds = Date().timeIntervalSince(t0)
        print("qwen.tiktoken loaded in \(String(format: "%.3f", seconds)) s")
        #expect(tok.vocabularySize == 151_665)
        #expect(tok.bpeTokenCount == 151_643)
        #expect(seconds < 2.0)
    }
}
