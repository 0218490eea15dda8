/// Decodes ids that arrive one at a time. `push` returns the text that became complete; bytes
/// of a character still being spelled out wait for the next token. The concatenation of all
/// pushes and `finish()` equals `Tokenizer.decode` of all the ids.
public final class StreamingDecoder {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private let skipUnknownIds: Bool
    private var pending: [UInt8] = []
    private var position = 0

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool, skipUnknownIds: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        self.skipUnknownIds = skipUnknownIds
    }

    /// Adds one id; returns the newly complete text (possibly empty).
    public func push(_ id: Int) throws -> String {
        try tokenizer.appendBytes(of: id, at: position, skipSpecialTokens: skipSpecialTokens,
                                  skipUnknownIds: skipUnknownIds, to: &pending)
        position += 1
        let cut = completePrefixLength(pending)
        if cut == 0 { return "" }
        let text = String(decoding: pending[0..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Whatever is left (an unfinished character becomes U+FFFD), and a reset.
    public func finish() -> String {
        let text = String(decoding: pending, as: UTF8.self)
        pending.removeAll()
        position = 0
        return text
    }
}

/// Length of the longest prefix of `bytes` after which no character is left half-spelled: all of
/// it, unless it ends in the start of a well-formed multi-byte sequence that more bytes could finish.
func completePrefixLength(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var j = n - 1
    // The last byte that is not a continuation byte, within the last 4.
    while j >= 0 && j > n - 4 && bytes[j] & 0xC0 == 0x80 { j -= 1 }
    if j < 0 { return n }
    let lead = bytes[j]
    let need: Int
    switch lead {
    case 0xC2...0xDF: need = 2
    case 0xE0...0xEF: need = 3
    case 0xF0...0xF4: need = 4
    default: return n  // ASCII, or a byte that can start nothing: complete or invalid either way
    }
    let have = n - j
    if have >= need { return n }
    // Bytes after the lead must be the start of a well-formed sequence (Unicode Table 3-7).
    if have >= 2 {
        let b1 = bytes[j + 1]
        let ok: Bool
        switch lead {
        case 0xE0: ok = (0xA0...0xBF).contains(b1)
        case 0xED: ok = (0x80...0x9F).contains(b1)
        case 0xF0: ok = (0x90...0xBF).contains(b1)
        case 0xF4: ok = (0x80...0x8F).contains(b1)
        default: ok = (0x80...0xBF).contains(b1)
        }
        if !ok { return n }
    }
    return j
}
