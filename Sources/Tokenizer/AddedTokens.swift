import Foundation

/// A token added on top of the BPE vocabulary (`added_tokens` in tokenizer.json; Qwen's
/// `<|endoftext|>`, `<|im_start|>`, …). Added tokens are found in the text before anything else
/// and become one id each.
public struct AddedToken: Equatable, Sendable {
    public var id: Int
    public var content: String
    /// A control token: `skipSpecialTokens` drops it, `allowSpecial: false` encodes it as text.
    public var special: Bool
    /// Also swallow the whitespace to the left / right of the token.
    public var lstrip: Bool
    public var rstrip: Bool
    /// HF matches such tokens in the normalized text; qwenft matches every added token in the
    /// input before NFC (identical for Qwen, whose added tokens all have normalized: false).
    public var normalized: Bool
    /// Only matched when not inside a word.
    public var singleWord: Bool

    public init(id: Int, content: String, special: Bool = true, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool = false, singleWord: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.singleWord = singleWord
    }
}

/// Finds added tokens in UTF-8 text: leftmost match, and the longest one starting there.
struct AddedTokenMatcher {
    let tokens: [AddedToken]
    private let contents: [[UInt8]]
    /// first byte -> indices into `tokens`, longest content first.
    private let byFirstByte: [[Int]]

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        let contents = tokens.map { Array($0.content.utf8) }
        self.contents = contents
        var table = [[Int]](repeating: [], count: 256)
        for (k, c) in contents.enumerated() where !c.isEmpty { table[Int(c[0])].append(k) }
        for b in 0..<256 { table[b].sort { contents[$0].count > contents[$1].count } }
        byFirstByte = table
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Splits p[0..<n] into text runs and added tokens (`token` is an index into `tokens`).
    /// A run of an added token covers the whitespace it strips.
    func split(_ p: UnsafePointer<UInt8>, _ n: Int, allowSpecial: Bool)
        -> [(range: Range<Int>, token: Int?)]
    {
        var out: [(range: Range<Int>, token: Int?)] = []
        var textStart = 0
        var i = 0
        while i < n {
            let candidates = byFirstByte[Int(p[i])]
            var matched = -1
            for k in candidates {
                let c = contents[k]
                if c.count > n - i || (!allowSpecial && tokens[k].special) { continue }
                if !c.withUnsafeBufferPointer({ memcmp($0.baseAddress!, p + i, c.count) == 0 }) { continue }
                if tokens[k].singleWord && (endsWithWordChar(p, i) || startsWithWordChar(p + i + c.count, n - i - c.count)) {
                    continue
                }
                matched = k
                break
            }
            if matched < 0 { i += 1; continue }
            var start = i
            var end = i + contents[matched].count
            if tokens[matched].lstrip {
                while start > textStart, let w = whitespaceBefore(p, start), w >= textStart { start = w }
            }
            if tokens[matched].rstrip {
                while end < n, let w = whitespaceAfter(p, end, n) { end = w }
            }
            if start > textStart { out.append((textStart..<start, nil)) }
            out.append((start..<end, matched))
            textStart = end
            i = end
        }
        if textStart < n || out.isEmpty { out.append((textStart..<n, nil)) }
        return out
    }

    /// Start of the whitespace scalar that ends at `end`, if the scalar there is whitespace.
    private func whitespaceBefore(_ p: UnsafePointer<UInt8>, _ end: Int) -> Int? {
        var j = end - 1
        while j > 0 && p[j] & 0xC0 == 0x80 { j -= 1 }
        let (v, _) = decodeScalar(p, j)
        return Unicode.Scalar(v)?.properties.isWhitespace == true ? j : nil
    }

    private func whitespaceAfter(_ p: UnsafePointer<UInt8>, _ start: Int, _ n: Int) -> Int? {
        let (v, len) = decodeScalar(p, start)
        return Unicode.Scalar(v)?.properties.isWhitespace == true ? start + len : nil
    }

    private func endsWithWordChar(_ p: UnsafePointer<UInt8>, _ end: Int) -> Bool {
        if end == 0 { return false }
        var j = end - 1
        while j > 0 && p[j] & 0xC0 == 0x80 { j -= 1 }
        return isWordChar(decodeScalar(p, j).value)
    }

    private func startsWithWordChar(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        n > 0 && isWordChar(decodeScalar(p, 0).value)
    }

    private func isWordChar(_ v: UInt32) -> Bool {
        if v == 0x5F { return true }
        let c = CharClasses.info(v) & 7
        return c == CharClass.letter.rawValue || c == CharClass.number.rawValue
    }
}
