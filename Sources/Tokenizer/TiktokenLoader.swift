import Foundation

/// Qwen's added tokens. Qwen2 and later (Qwen2.5's tokenizer.json) have 22 after the 151,643
/// BPE ranks; Qwen1's tokenization_qwen.py has `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`
/// and `<|extra_0|>`…`<|extra_204|>`.
public enum QwenSpecialTokens {
    public static let firstId = 151_643

    /// Qwen2.5's added tokens (the tool-call and fill-in-the-middle ones are not "special").
    public static let qwen2: [AddedToken] = {
        let special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
                       "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                       "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
                       "<|image_pad|>", "<|video_pad|>"]
        let plain = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                     "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
        return (special.map { ($0, true) } + plain.map { ($0, false) }).enumerated().map {
            AddedToken(id: firstId + $0.offset, content: $0.element.0, special: $0.element.1)
        }
    }()

    /// Qwen1's special tokens.
    public static let qwen1: [AddedToken] = {
        let names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + (0..<205).map { "<|extra_\($0)|>" }
        return names.enumerated().map { AddedToken(id: firstId + $0.offset, content: $0.element) }
    }()
}

extension Tokenizer {
    /// Loads a tiktoken rank file ("base64-token rank" per line, as Qwen1's qwen.tiktoken), with
    /// the given added tokens (Qwen2's by default). Merges follow tiktoken: a pair merges when
    /// its concatenation is a token, the lowest rank first.
    public convenience init(tiktoken path: String, specialTokens: [AddedToken] = QwenSpecialTokens.qwen2) throws {
        let entries = try readTiktokenRanks(path)
        if let big = entries.first(where: { $0.rank >= PairTable.maxId }) {
            throw TokenizerError.unsupported(path: path, location: "rank \(big.rank)", what: "a rank of \(PairTable.maxId) or more")
        }
        let tokens = TokenBytes(entries: entries.map { (id: $0.rank, bytes: $0.bytes[...]) })
        try checkByteTokens(tokens, path: path)
        for t in specialTokens where t.id < 0 || t.id >= PairTable.maxId {
            throw TokenizerError.unsupported(path: path, location: "special token \(quoted(t.content))", what: "the id \(t.id)")
        }
        for t in specialTokens where t.id < tokens.count && tokens.present[t.id] {
            throw TokenizerError.malformed(path: path, location: "rank \(t.id)",
                                           reason: "the rank is also given to the special token \(quoted(t.content))")
        }
        let pairs = tiktokenPairs(tokens)
        self.init(tokens: tokens, pairs: pairs, addedTokens: specialTokens, wholePieceShortcut: true, source: path)
    }
}

/// Every split (a, b) of every token t where a and b are tokens: (a, b) -> (rank t, t).
func tiktokenPairs(_ tokens: TokenBytes) -> PairTable {
    var pairs = PairTable(capacity: tokens.count * 2, vocabularySize: tokens.count)
    tokens.storage.withUnsafeBufferPointer { st in
        guard let base = st.baseAddress else { return }
        for id in 0..<tokens.count where tokens.present[id] {
            let r = tokens.range(id)
            if r.count < 2 { continue }
            let p = base + r.lowerBound
            for k in 1..<r.count {
                let a = tokens.lookup(p, k)
                if a < 0 { continue }
                let b = tokens.lookup(p + k, r.count - k)
                if b < 0 { continue }
                pairs.set(a, b, rank: UInt32(id), merged: Int32(id))
            }
        }
    }
    return pairs
}

/// Byte-level BPE needs a token for every single byte.
func checkByteTokens(_ tokens: TokenBytes, path: String) throws {
    for b in 0..<256 where tokens.lookup([UInt8(b)]) == nil {
        throw TokenizerError.malformed(path: path, location: "vocabulary",
                                       reason: String(format: "no token for the single byte 0x%02X; byte-level BPE needs all 256", b))
    }
}

func readFile(_ path: String) throws -> [UInt8] {
    guard let fh = FileHandle(forReadingAtPath: path) else {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        throw TokenizerError.unreadable(path: path, reason: !exists ? "no such file" : isDir.boolValue ? "it is a folder" : "permission denied")
    }
    defer { try? fh.close() }
    do {
        return [UInt8](try fh.readToEnd() ?? Data())
    } catch {
        throw TokenizerError.unreadable(path: path, reason: "\(error)")
    }
}

/// Parses "base64 rank" lines.
func readTiktokenRanks(_ path: String) throws -> [(rank: Int, bytes: [UInt8])] {
    let data = try readFile(path)
    var out: [(rank: Int, bytes: [UInt8])] = []
    out.reserveCapacity(data.count / 12)
    var seen = Set<Int>()
    try data.withUnsafeBufferPointer { buf in
        let n = buf.count
        var i = 0
        var line = 0
        while i < n {
            line += 1
            var e = i
            while e < n && buf[e] != 0x0A { e += 1 }
            var lineEnd = e
            if lineEnd > i && buf[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { i = e + 1 }
            if lineEnd == i { continue }  // blank line
            var sp = i
            while sp < lineEnd && buf[sp] != 0x20 { sp += 1 }
            guard sp < lineEnd else {
                throw TokenizerError.malformed(path: path, location: "line \(line)", reason: "expected \"<base64 token> <rank>\"")
            }
            guard let bytes = decodeBase64(UnsafeBufferPointer(rebasing: buf[i..<sp])), !bytes.isEmpty else {
                throw TokenizerError.malformed(path: path, location: "line \(line)", reason: "the token is not valid base64")
            }
            var rank = 0
            var k = sp + 1
            guard k < lineEnd else {
                throw TokenizerError.malformed(path: path, location: "line \(line)", reason: "missing rank")
            }
            while k < lineEnd {
                let d = Int(buf[k]) - 48
                guard d >= 0 && d <= 9, rank < 100_000_000 else {
                    throw TokenizerError.malformed(path: path, location: "line \(line)", reason: "the rank is not a non-negative integer below 100,000,000")
                }
                rank = rank * 10 + d
                k += 1
            }
            guard seen.insert(rank).inserted else {
                throw TokenizerError.malformed(path: path, location: "line \(line)", reason: "rank \(rank) appears twice")
            }
            out.append((rank, bytes))
        }
    }
    if out.isEmpty {
        throw TokenizerError.malformed(path: path, location: "line 1", reason: "the file holds no ranks")
    }
    return out
}

private let base64Values: [Int8] = {
    var t = [Int8](repeating: -1, count: 256)
    for (k, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { t[Int(c)] = Int8(k) }
    return t
}()

func decodeBase64(_ s: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
    var n = s.count
    guard n % 4 == 0, n > 0 else { return nil }
    var pad = 0
    while pad < 2 && n > 0 && s[n - 1] == 0x3D { n -= 1; pad += 1 }
    var out = [UInt8]()
    out.reserveCapacity(n * 3 / 4)
    var acc: UInt32 = 0
    var bits = 0
    for k in 0..<n {
        let v = base64Values[Int(s[k])]
        if v < 0 { return nil }
        acc = acc << 6 | UInt32(v)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        }
    }
    return out
}
