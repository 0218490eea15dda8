import Foundation
import QwenCore

/// A Qwen byte-level BPE tokenizer: NFC, added tokens, the Qwen pre-tokenizer, BPE by merge rank.
/// Load it with `Tokenizer(tokenizerJSON:)`, `Tokenizer(tiktoken:)` or `Tokenizer(modelFolder:)`.
/// Immutable after loading, so one instance serves any number of threads.
public final class Tokenizer: @unchecked Sendable {
    let tokens: TokenBytes
    let bpe: BPE
    let matcher: AddedTokenMatcher
    /// id -> index into `addedTokens`, or -1.
    private let addedIndex: [Int32]
    private let caches = CachePool()

    /// Tokens added on top of the BPE vocabulary, in id order.
    public let addedTokens: [AddedToken]
    /// Where it was loaded from (for messages).
    public let source: String

    /// One more than the largest id (BPE tokens and added tokens).
    public var vocabularySize: Int { addedIndex.count }

    init(tokens: TokenBytes, pairs: PairTable, addedTokens: [AddedToken], wholePieceShortcut: Bool, source: String) {
        self.tokens = tokens
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteIds[b] = tokens.lookup([UInt8(b)]).map { Int32($0) } ?? -1 }
        var pairs = pairs
        pairs.finalize()
        bpe = BPE(byteIds: byteIds, pairs: pairs, tokens: tokens, wholePieceShortcut: wholePieceShortcut)
        let sorted = addedTokens.sorted { $0.id < $1.id }
        self.addedTokens = sorted
        matcher = AddedTokenMatcher(sorted)
        let size = max(tokens.count, (sorted.last?.id ?? -1) + 1)
        var index = [Int32](repeating: -1, count: size)
        for (k, t) in sorted.enumerated() { index[t.id] = Int32(k) }
        addedIndex = index
        self.source = source
    }

    // MARK: Encoding

    /// The ids of `text`. With `allowSpecial: false`, special added tokens written in the text are
    /// encoded as plain text (for untrusted input); non-special added tokens still match, as in
    /// HF's `split_special_tokens=True`.
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int] {
        encodeIds(text, allowSpecial: allowSpecial).map { Int($0) }
    }

    /// The ids of `text` as Int32 (for datasets: half the memory).
    public func encodeIds(_ text: String, allowSpecial: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        var s = text
        s.withUTF8 { buf in
            guard let base = buf.baseAddress else { return }
            var none: [Range<Int>]? = nil
            encode(base, buf.count, allowSpecial: allowSpecial, ids: &ids, offsets: &none)
        }
        return ids
    }

    /// The ids of `text` and, for each, the UTF-8 byte range of `text` it stands for. A token that
    /// holds part of a character covers exactly its bytes; where NFC changed the text, tokens map
    /// to the whole changed run. `Encoding.characterOffsets(in:)` converts to scalar offsets.
    public func encodeWithOffsets(_ text: String, allowSpecial: Bool = true) -> Encoding {
        var ids: [Int32] = []
        var offsets: [Range<Int>]? = []
        var s = text
        s.withUTF8 { buf in
            guard let base = buf.baseAddress else { return }
            encode(base, buf.count, allowSpecial: allowSpecial, ids: &ids, offsets: &offsets)
        }
        return Encoding(ids: ids.map { Int($0) }, offsets: offsets ?? [])
    }

    /// Encodes many texts on all cores (`Threading.count`); the result is in input order and
    /// identical to encoding each alone.
    public func encodeBatch(_ texts: [String], allowSpecial: Bool = true) -> [[Int32]] {
        var results = [[Int32]](repeating: [], count: texts.count)
        results.withUnsafeMutableBufferPointer { out in
            let out = out
            parallelChunks(texts.count, minChunk: 4) { range in
                for k in range { out[k] = self.encodeIds(texts[k], allowSpecial: allowSpecial) }
            }
        }
        return results
    }

    func encode(_ p: UnsafePointer<UInt8>, _ n: Int, allowSpecial: Bool,
                ids: inout [Int32], offsets: inout [Range<Int>]?) {
        let cache = caches.take()
        defer { caches.give(cache) }
        ids.reserveCapacity(ids.count + n / 3 + 1)
        if matcher.isEmpty {
            encodeText(p, 0..<n, cache: cache, ids: &ids, offsets: &offsets)
            return
        }
        for seg in matcher.split(p, n, allowSpecial: allowSpecial) {
            if let k = seg.token {
                ids.append(Int32(matcher.tokens[k].id))
                offsets?.append(seg.range)
            } else if !seg.range.isEmpty {
                encodeText(p, seg.range, cache: cache, ids: &ids, offsets: &offsets)
            }
        }
    }

    /// NFC, pre-tokenize and BPE the text p[range] (no added tokens in it).
    private func encodeText(_ p: UnsafePointer<UInt8>, _ range: Range<Int>, cache: WordCache,
                            ids: inout [Int32], offsets: inout [Range<Int>]?) {
        let base = p + range.lowerBound
        let nfc = NFC.normalize(base, range.count)
        if nfc.unchanged {
            pieces(base, range.count, cache: cache, ids: &ids, offsets: &offsets,
                   mapper: OffsetMapper(edits: [], origin: range.lowerBound))
        } else {
            nfc.bytes.withUnsafeBufferPointer { q in
                pieces(q.baseAddress!, q.count, cache: cache, ids: &ids, offsets: &offsets,
                       mapper: OffsetMapper(edits: nfc.edits, origin: range.lowerBound))
            }
        }
    }

    private func pieces(_ q: UnsafePointer<UInt8>, _ m: Int, cache: WordCache,
                        ids: inout [Int32], offsets: inout [Range<Int>]?, mapper: OffsetMapper) {
        var mapper = mapper
        var scanner = PreTokenizer(q, m)
        while let r = scanner.next() {
            let first = ids.count
            let len = r.count
            let start = q + r.lowerBound
            if len == 1 {
                ids.append(bpe.byteIds[Int(start[0])])
            } else if len <= WordCache.maxPieceLength {
                let h = hashBytes(start, len)
                if !cache.lookup(start, len, hash: h, into: &ids) {
                    bpe.encode(start, len, hot: cache.hotPairs, into: &ids)
                    cache.insert(start, len, hash: h, ids: ids[first...])
                }
            } else {
                bpe.encode(start, len, hot: cache.hotPairs, into: &ids)
            }
            if offsets != nil {
                var at = r.lowerBound
                for k in first..<ids.count {
                    let end = at + tokens.range(Int(ids[k])).count
                    offsets!.append(mapper.map(at, end))
                    at = end
                }
            }
        }
    }

    /// Drops the word caches (benchmarks use it to time cold encodes; it also frees their memory).
    public func clearCaches() { caches.removeAll() }

    // MARK: Decoding

    /// The bytes of the given ids; throws `idOutOfRange` for an id that names no token, unless
    /// `skipUnknownIds` (HF's behaviour: a model's embedding has more rows than the tokenizer has
    /// tokens, 151,936 vs 151,665 for Qwen2, and sampling may pick one).
    public func decodeBytes(_ ids: [Int], skipSpecialTokens: Bool = false, skipUnknownIds: Bool = false) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for (pos, id) in ids.enumerated() {
            try appendBytes(of: id, at: pos, skipSpecialTokens: skipSpecialTokens, skipUnknownIds: skipUnknownIds, to: &out)
        }
        return out
    }

    /// The text of the given ids; invalid UTF-8 becomes U+FFFD per maximal ill-formed subsequence
    /// (Python's errors="replace").
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false, skipUnknownIds: Bool = false) throws -> String {
        String(decoding: try decodeBytes(ids, skipSpecialTokens: skipSpecialTokens, skipUnknownIds: skipUnknownIds), as: UTF8.self)
    }

    /// A decoder for ids that arrive one at a time (generation): it returns only complete
    /// characters, so a character split over tokens never shows as U+FFFD mid-stream.
    public func streamingDecoder(skipSpecialTokens: Bool = false, skipUnknownIds: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens, skipUnknownIds: skipUnknownIds)
    }

    /// Whether the id names a token (BPE or added).
    public func isKnown(_ id: Int) -> Bool { bytes(forId: id) != nil }

    func appendBytes(of id: Int, at pos: Int, skipSpecialTokens: Bool, skipUnknownIds: Bool = false, to out: inout [UInt8]) throws {
        if skipUnknownIds && !isKnown(id) { return }
        guard id >= 0 && id < addedIndex.count else {
            throw TokenizerError.idOutOfRange(id: id, position: pos, vocabularySize: vocabularySize)
        }
        let a = Int(addedIndex[id])
        if a >= 0 {
            let t = addedTokens[a]
            if !(skipSpecialTokens && t.special) { out.append(contentsOf: t.content.utf8) }
            return
        }
        guard id < tokens.count && tokens.present[id] else {
            throw TokenizerError.idOutOfRange(id: id, position: pos, vocabularySize: vocabularySize)
        }
        out.append(contentsOf: tokens.bytes(id))
    }

    // MARK: Lookup

    /// The id of a token given as text: an added token's content, or a BPE token's UTF-8 bytes.
    public func id(forToken text: String) -> Int? {
        if let t = addedTokens.first(where: { $0.content == text }) { return t.id }
        return tokens.lookup(Array(text.utf8))
    }

    /// The raw bytes of a token id, nil if it names none.
    public func bytes(forId id: Int) -> [UInt8]? {
        guard id >= 0 && id < addedIndex.count else { return nil }
        let a = Int(addedIndex[id])
        if a >= 0 { return Array(addedTokens[a].content.utf8) }
        guard id < tokens.count && tokens.present[id] else { return nil }
        return Array(tokens.bytes(id))
    }

    /// Whether the id is a special added token (what `skipSpecialTokens` drops).
    public func isSpecial(_ id: Int) -> Bool {
        guard id >= 0 && id < addedIndex.count, addedIndex[id] >= 0 else { return false }
        return addedTokens[Int(addedIndex[id])].special
    }

    /// Number of BPE (non-added) tokens.
    public var bpeTokenCount: Int { tokens.present.lazy.filter { $0 }.count }
}

/// Ids with the UTF-8 byte range of the input each stands for.
public struct Encoding: Equatable, Sendable {
    public var ids: [Int]
    public var offsets: [Range<Int>]

    /// The offsets as Unicode scalar indices into `text` (Python's character offsets); a token
    /// that ends inside a character extends to the character's end.
    public func characterOffsets(in text: String) -> [Range<Int>] {
        // starts[k]: how many scalars start in bytes 0..<k.
        var starts = [Int](repeating: 0, count: text.utf8.count + 1)
        var k = 0
        for b in text.utf8 {
            starts[k + 1] = starts[k] + (b & 0xC0 != 0x80 ? 1 : 0)
            k += 1
        }
        return offsets.map { r in
            let s = r.lowerBound < k ? starts[r.lowerBound + 1] - 1 : starts[k]
            return s..<max(s, starts[min(r.upperBound, k)])
        }
    }
}

/// Maps byte positions in normalized text back to the original, through NFC's edits.
struct OffsetMapper {
    let edits: [(normalized: Range<Int>, original: Range<Int>)]
    let origin: Int
    private var cursor = 0
    private var delta = 0  // original - normalized, after the edits before `cursor`

    init(edits: [(normalized: Range<Int>, original: Range<Int>)], origin: Int) {
        self.edits = edits
        self.origin = origin
    }

    /// Positions only grow from call to call.
    mutating func map(_ start: Int, _ end: Int) -> Range<Int> {
        if edits.isEmpty { return (origin + start)..<(origin + end) }
        let s = position(start, isEnd: false)
        let e = position(end, isEnd: true)
        return (origin + s)..<(origin + max(s, e))
    }

    private mutating func position(_ x: Int, isEnd: Bool) -> Int {
        while cursor < edits.count && edits[cursor].normalized.upperBound <= x {
            delta = edits[cursor].original.upperBound - edits[cursor].normalized.upperBound
            cursor += 1
        }
        if cursor < edits.count {
            let e = edits[cursor]
            if x > e.normalized.lowerBound { return isEnd ? e.original.upperBound : e.original.lowerBound }
        }
        return x + delta
    }
}
