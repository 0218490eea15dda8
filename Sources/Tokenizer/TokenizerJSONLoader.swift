import Foundation
import JSON

/// The Qwen pre-tokenizer pattern, as tokenizer.json's Split pre-tokenizer spells it.
public let qwenPretokenizePattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

extension Tokenizer {
    /// Loads a Hugging Face tokenizer.json with a byte-level BPE model, an NFC (or no)
    /// normalizer, the Qwen Split + ByteLevel pre-tokenizer and a ByteLevel decoder. Merges may be
    /// "a b" strings or ["a", "b"] pairs; a merge's rank is its index.
    public convenience init(tokenizerJSON path: String) throws {
        let root = try parseJSONFile(try readFile(path), path: path)
        guard root.objectValue != nil else {
            throw TokenizerError.malformed(path: path, location: "top level", reason: "expected a JSON object, found \(root.kind)")
        }
        try checkPipeline(root, path: path)
        guard let model = root["model"], model.objectValue != nil else {
            throw TokenizerError.malformed(path: path, location: "model", reason: "missing the \"model\" object")
        }
        if let type = model["type"]?.stringValue, type != "BPE" {
            throw TokenizerError.unsupported(path: path, location: "model.type", what: "the \(quoted(type)) model (only BPE)")
        }
        if model["byte_fallback"]?.boolValue == true {
            throw TokenizerError.unsupported(path: path, location: "model.byte_fallback", what: "byte_fallback")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key]?.stringValue, !s.isEmpty {
                throw TokenizerError.unsupported(path: path, location: "model.\(key)", what: "a non-empty \(key)")
            }
        }
        if let d = model["dropout"], !d.isNull {
            throw TokenizerError.unsupported(path: path, location: "model.dropout", what: "BPE dropout")
        }

        // Vocabulary: byte-level strings -> ids.
        guard let vocab = model["vocab"]?.objectValue else {
            throw TokenizerError.malformed(path: path, location: "model.vocab", reason: "missing the vocabulary object")
        }
        var entries: [(id: Int, bytes: ArraySlice<UInt8>)] = []
        entries.reserveCapacity(160_000)
        for (key, value) in vocab {
            guard let id = value.intValue, id >= 0, id < PairTable.maxId else {
                throw TokenizerError.malformed(path: path, location: "model.vocab[\(quoted(key))]",
                                               reason: "the id must be an integer in 0..<\(PairTable.maxId), found \(value.kind)")
            }
            guard let bytes = ByteLevel.decode(key) else {
                throw TokenizerError.malformed(path: path, location: "model.vocab[\(quoted(key))]",
                                               reason: "the token is not in the byte-level alphabet")
            }
            entries.append((id, bytes[...]))
        }
        let tokens = TokenBytes(entries: entries)
        try checkByteTokens(tokens, path: path)

        // Merges.
        guard let merges = model["merges"]?.arrayValue else {
            throw TokenizerError.malformed(path: path, location: "model.merges", reason: "missing the merges array")
        }
        if merges.count > PairTable.maxRank {
            throw TokenizerError.unsupported(path: path, location: "model.merges", what: "more than \(PairTable.maxRank) merges")
        }
        var pairs = PairTable(capacity: merges.count, vocabularySize: tokens.count)
        var left: [UInt8] = [], right: [UInt8] = []
        for k in 0..<merges.count {
            let m = merges[k]
            let where_ = "model.merges[\(k)]"
            // "a b" or ["a", "b"]: the byte-level halves, decoded to bytes without Swift Strings.
            var ok = false
            if case var .string(text) = m {
                ok = text.withUTF8 { s -> Bool in
                    guard let space = s.firstIndex(of: 0x20), s.lastIndex(of: 0x20) == space else { return false }
                    left = ByteLevel.decode(UnsafeBufferPointer(rebasing: s[..<space])) ?? []
                    right = ByteLevel.decode(UnsafeBufferPointer(rebasing: s[(space + 1)...])) ?? []
                    return true
                }
            } else if let halves = m.arrayValue, halves.count == 2, let l = halves[0].stringValue, let r = halves[1].stringValue {
                left = ByteLevel.decode(l) ?? []
                right = ByteLevel.decode(r) ?? []
                ok = true
            }
            guard ok else {
                throw TokenizerError.malformed(path: path, location: where_, reason: "expected \"left right\" or [\"left\", \"right\"], found \(m.kind)")
            }
            func name(_ side: Int) -> String {
                if let s = m.stringValue {
                    let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                    return side < parts.count ? String(parts[side]) : s
                }
                return m.arrayValue?[side].stringValue ?? ""
            }
            guard !left.isEmpty, let a = tokens.lookup(left) else {
                throw TokenizerError.unknownToken(path: path, location: where_, token: name(0))
            }
            guard !right.isEmpty, let b = tokens.lookup(right) else {
                throw TokenizerError.unknownToken(path: path, location: where_, token: name(1))
            }
            left.append(contentsOf: right)
            guard let merged = tokens.lookup(left) else {
                throw TokenizerError.unknownToken(path: path, location: where_, token: name(0) + name(1))
            }
            pairs.set(Int32(a), Int32(b), rank: UInt32(k), merged: Int32(merged))
        }

        // Added tokens.
        var added: [AddedToken] = []
        if let list = root["added_tokens"], !list.isNull {
            guard let list = list.arrayValue else {
                throw TokenizerError.malformed(path: path, location: "added_tokens", reason: "expected an array, found \(list.kind)")
            }
            for (k, t) in list.enumerated() {
                guard let id = t["id"]?.intValue, id >= 0, id < PairTable.maxId, let content = t["content"]?.stringValue, !content.isEmpty else {
                    throw TokenizerError.malformed(path: path, location: "added_tokens[\(k)]",
                                                   reason: "expected an object with an integer \"id\" (0..<\(PairTable.maxId)) and a non-empty \"content\"")
                }
                added.append(AddedToken(id: id, content: content, special: t["special"]?.boolValue ?? false,
                                        lstrip: t["lstrip"]?.boolValue ?? false, rstrip: t["rstrip"]?.boolValue ?? false,
                                        normalized: t["normalized"]?.boolValue ?? false, singleWord: t["single_word"]?.boolValue ?? false))
            }
        }
        self.init(tokens: tokens, pairs: pairs, addedTokens: added,
                  wholePieceShortcut: model["ignore_merges"]?.boolValue ?? false, source: path)
    }
}

/// Checks that the normalizer, pre-tokenizer and decoder are the ones we implement.
private func checkPipeline(_ root: JSONValue, path: String) throws {
    if let norm = root["normalizer"], !norm.isNull {
        let steps = norm["type"]?.stringValue == "Sequence" ? norm["normalizers"]?.arrayValue ?? [] : [norm]
        for s in steps where s["type"]?.stringValue != "NFC" {
            throw TokenizerError.unsupported(path: path, location: "normalizer", what: "the \(quoted(s["type"]?.stringValue ?? s.kind)) normalizer (only NFC)")
        }
    }
    guard let pre = root["pre_tokenizer"], !pre.isNull else {
        throw TokenizerError.unsupported(path: path, location: "pre_tokenizer", what: "a missing pre-tokenizer (Qwen's Split + ByteLevel expected)")
    }
    let steps = pre["type"]?.stringValue == "Sequence" ? pre["pretokenizers"]?.arrayValue ?? [] : [pre]
    var sawSplit = false, sawByteLevel = false
    for s in steps {
        switch s["type"]?.stringValue {
        case "Split":
            let pattern = s["pattern"]?["Regex"]?.stringValue ?? s["pattern"]?["String"]?.stringValue
            guard pattern == qwenPretokenizePattern else {
                throw TokenizerError.unsupported(path: path, location: "pre_tokenizer Split.pattern",
                                                 what: "the pattern \(quoted(pattern ?? "?")) (only Qwen's)")
            }
            if let b = s["behavior"]?.stringValue, b != "Isolated" {
                throw TokenizerError.unsupported(path: path, location: "pre_tokenizer Split.behavior", what: "behavior \(quoted(b)) (only Isolated)")
            }
            if s["invert"]?.boolValue == true {
                throw TokenizerError.unsupported(path: path, location: "pre_tokenizer Split.invert", what: "invert: true")
            }
            sawSplit = true
        case "ByteLevel":
            if s["use_regex"]?.boolValue != false {
                throw TokenizerError.unsupported(path: path, location: "pre_tokenizer ByteLevel.use_regex", what: "GPT-2's ByteLevel regex (use_regex: true)")
            }
            if s["add_prefix_space"]?.boolValue == true {
                throw TokenizerError.unsupported(path: path, location: "pre_tokenizer ByteLevel.add_prefix_space", what: "add_prefix_space: true")
            }
            sawByteLevel = true
        default:
            throw TokenizerError.unsupported(path: path, location: "pre_tokenizer", what: "the \(quoted(s["type"]?.stringValue ?? s.kind)) pre-tokenizer")
        }
    }
    if !sawSplit || !sawByteLevel {
        throw TokenizerError.unsupported(path: path, location: "pre_tokenizer", what: "a pre-tokenizer without both Split (Qwen's pattern) and ByteLevel")
    }
    if let dec = root["decoder"], !dec.isNull, dec["type"]?.stringValue != "ByteLevel" {
        throw TokenizerError.unsupported(path: path, location: "decoder", what: "the \(quoted(dec["type"]?.stringValue ?? dec.kind)) decoder (only ByteLevel)")
    }
}

extension Tokenizer {
    /// Loads the tokenizer of a model folder: tokenizer.json, else qwen.tiktoken (Qwen1).
    public convenience init(modelFolder path: String) throws {
        let folder = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw TokenizerError.unreadable(path: path, reason: "not a folder")
        }
        let json = folder.appendingPathComponent("tokenizer.json").path
        if FileManager.default.fileExists(atPath: json) { try self.init(tokenizerJSON: json); return }
        let tik = folder.appendingPathComponent("qwen.tiktoken").path
        if FileManager.default.fileExists(atPath: tik) { try self.init(tiktoken: tik); return }
        throw TokenizerError.noTokenizerInFolder(path: path)
    }

    /// Loads a tokenizer file by its kind: *.tiktoken, else tokenizer.json.
    public convenience init(file path: String) throws {
        if path.hasSuffix(".tiktoken") { try self.init(tiktoken: path) } else { try self.init(tokenizerJSON: path) }
    }
}
