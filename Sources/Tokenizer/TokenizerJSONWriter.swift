import Foundation
import JSON

/// Turns a tiktoken rank file into a Hugging Face tokenizer.json (Qwen2's layout) that the
/// `tokenizers` library loads and that encodes as tiktoken does. `qwenft init` writes model
/// folders with it.
public enum TokenizerJSONWriter {
    /// Writes tokenizer.json for the rank file at `tiktokenPath` to `outputPath`.
    public static func write(tiktoken tiktokenPath: String, to outputPath: String,
                             specialTokens: [AddedToken] = QwenSpecialTokens.qwen2) throws {
        let bytes = try data(tiktoken: tiktokenPath, specialTokens: specialTokens)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: outputPath), options: .atomic)
        } catch {
            throw TokenizerError.unreadable(path: outputPath, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    /// The tokenizer.json bytes for a rank file.
    public static func data(tiktoken tiktokenPath: String, specialTokens: [AddedToken] = QwenSpecialTokens.qwen2) throws -> [UInt8] {
        let tokenizer = try Tokenizer(tiktoken: tiktokenPath, specialTokens: specialTokens)
        return render(tokens: tokenizer.tokens, pairs: tokenizer.bpe.pairs, added: tokenizer.addedTokens)
    }

    /// Merges as Hugging Face's tiktoken converter derives them: for each token, in rank order,
    /// BPE its bytes using only the ranks below its own; if that ends in two parts, they are its
    /// merge.
    static func merges(tokens: TokenBytes, pairs: PairTable) -> [(Int32, Int32)] {
        var out: [(Int32, Int32)] = []
        out.reserveCapacity(tokens.count)
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteIds[b] = Int32(tokens.lookup([UInt8(b)]) ?? -1) }
        pairs.withLookup { lookup in
            var ids: [Int32] = []
            for id in 0..<tokens.count where tokens.present[id] {
                let r = tokens.range(id)
                if r.count < 2 { continue }
                ids.removeAll(keepingCapacity: true)
                for k in r { ids.append(byteIds[Int(tokens.storage[k])]) }
                let limit = UInt32(id)
                while ids.count > 2 {
                    var best = PairTable.none, at = -1
                    for k in 0..<(ids.count - 1) {
                        let v = lookup(ids[k], ids[k + 1])
                        if v < best { best = v; at = k }
                    }
                    if at < 0 || best >= limit { break }
                    ids[at] = lookup.merged(best)
                    ids.remove(at: at + 1)
                }
                if ids.count == 2 { out.append((ids[0], ids[1])) }
            }
        }
        return out
    }

    static func render(tokens: TokenBytes, pairs: PairTable, added: [AddedToken]) -> [UInt8] {
        var o = JSONWriter(style: .compact)
        o.bytes.reserveCapacity(tokens.storage.count * 6)
        func put(_ s: String) { o.raw(s) }
        func putString(_ s: String) { o.string(s) }
        let byteLevel = {"\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false"}()
        put("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
        for (k, t) in added.enumerated() {
            put(k == 0 ? "\n" : ",\n")
            put("    {\n      \"id\": \(t.id),\n      \"content\": ")
            putString(t.content)
            put(",\n      \"single_word\": \(t.singleWord),\n      \"lstrip\": \(t.lstrip),\n      \"rstrip\": \(t.rstrip),\n")
            put("      \"normalized\": \(t.normalized),\n      \"special\": \(t.special)\n    }")
        }
        put("\n  ],\n  \"normalizer\": {\n    \"type\": \"NFC\"\n  },\n")
        put("  \"pre_tokenizer\": {\n    \"type\": \"Sequence\",\n    \"pretokenizers\": [\n")
        put("      {\n        \"type\": \"Split\",\n        \"pattern\": {\n          \"Regex\": ")
        putString(qwenPretokenizePattern)
        put("\n        },\n        \"behavior\": \"Isolated\",\n        \"invert\": false\n      },\n")
        put("      {\(byteLevel)}\n    ]\n  },\n")
        put("  \"post_processor\": {\(byteLevel)},\n")
        put("  \"decoder\": {\(byteLevel)},\n")
        put("  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n")
        put("    \"continuing_subword_prefix\": \"\",\n    \"end_of_word_suffix\": \"\",\n    \"fuse_unk\": false,\n")
        put("    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {")
        var first = true
        var names = [String](repeating: "", count: tokens.count)
        for id in 0..<tokens.count where tokens.present[id] {
            names[id] = ByteLevel.encode(tokens.bytes(id))
            put(first ? "\n      " : ",\n      ")
            first = false
            putString(names[id])
            put(": \(id)")
        }
        put("\n    },\n    \"merges\": [")
        for (k, m) in merges(tokens: tokens, pairs: pairs).enumerated() {
            put(k == 0 ? "\n      " : ",\n      ")
            putString(names[Int(m.0)] + " " + names[Int(m.1)])
        }
        put("\n    ]\n  }\n}\n")
        return o.bytes
    }
}
