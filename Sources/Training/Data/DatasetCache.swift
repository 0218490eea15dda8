import Foundation
import JSON
import Tokenizer

/// The tokenised-dataset cache: one binary file per (data file contents, tokenizer, template,
/// max_seq_length, train_on_prompt), named by a hash of all of them, so a second run with the
/// same inputs starts at once and any change rebuilds.
///
/// File: "QWENFTDS", u32 version, u32 header length, header JSON (key, report), then
/// i64 starts (samples+1), i32 ids (tokens), u8 label mask (tokens). Little-endian. Written to a
/// temporary name and renamed, so a crash never leaves a half file under the real name.
struct DatasetCache {
    static let version: UInt32 = 1
    static let magic = Array("QWENFTDS".utf8)
    let key: String
    let path: String

    init(directory: String, files: [DataFile], tokenizer: Tokenizer, template: ChatTemplateSource, options: DatasetOptions) {
        var parts = ["v\(DatasetCache.version)", "max_seq_length=\(options.maxSeqLength)", "train_on_prompt=\(options.trainOnPrompt)"]
        if options.preference { parts.append("dpo max_prompt_length=\(options.maxPromptLength ?? -1)") }
        for f in files {
            var h = ContentHasher()
            f.bytes.withUnsafeBytes { h.update($0) }
            // The path too: problems in the report name it.
            parts.append("file=\(f.path) hash=\(h.hex) size=\(f.bytes.count)")
        }
        parts.append("tokenizer=\(tokenizerFingerprint(tokenizer))")
        var t = ContentHasher()
        t.update(Array(template.source.utf8))
        parts.append("template=\(t.hex) record=\(template.isRecordTemplate)")
        key = parts.joined(separator: ";")
        var k = ContentHasher()
        k.update(Array(key.utf8))
        path = URL(fileURLWithPath: directory).appendingPathComponent("dataset-\(k.hex).qds").path
    }

    /// The cached dataset, or nil when absent, of another key, or damaged (then it is rebuilt).
    func load() -> TokenizedDataset? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else { return nil }
        return data.withUnsafeBytes { raw -> TokenizedDataset? in
            var reader = ByteReader(raw)
            guard reader.bytes(8).map(Array.init) == DatasetCache.magic, reader.u32() == DatasetCache.version,
                  let headerLength = reader.u32(), let headerBytes = reader.bytes(Int(headerLength)),
                  let header = try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: headerBytes)),
                  header["key"]?.stringValue == key,
                  let samples = header["samples"]?.intValue, let tokens = header["tokens"]?.intValue,
                  var report = decodeReport(header["report"]) else { return nil }
            guard let starts = reader.array(Int64.self, samples + 1), let ids = reader.array(Int32.self, tokens),
                  let mask = reader.bytes(tokens), reader.atEnd, starts.last == Int64(tokens) else { return nil }
            var labels = [Int32](repeating: -100, count: tokens)
            let m0 = mask.startIndex  // a slice: indices start where it lies in the file
            for k in 0..<tokens where mask[m0 + k] != 0 { labels[k] = ids[k] }
            report.fromCache = true
            report.cachePath = path
            report.samples = samples  // the stored report lacks the counts: they are the data's own
            report.tokens = tokens
            return TokenizedDataset(ids: ids, labels: labels, starts: starts.map { Int($0) }, report: report)
        }
    }

    /// Writes the cache file; returns its path, nil if it could not be written (no error: the
    /// cache is an optimisation, the next run rebuilds).
    func store(_ dataset: TokenizedDataset) -> String? {
        let header: JSONValue = .object([("key", .string(key)), ("samples", .int(dataset.count)), ("tokens", .int(dataset.ids.count)),
                                         ("report", encodeReport(dataset.report))])
        let headerData = Data(header.text().utf8)
        var out = Data()
        out.reserveCapacity(24 + headerData.count + dataset.starts.count * 8 + dataset.ids.count * 5)
        out.append(contentsOf: DatasetCache.magic)
        append(&out, DatasetCache.version.littleEndian)
        append(&out, UInt32(headerData.count).littleEndian)
        out.append(headerData)
        dataset.starts.map { Int64($0).littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
        dataset.ids.map { $0.littleEndian }.withUnsafeBytes { out.append(contentsOf: $0) }
        out.append(contentsOf: dataset.labels.map { $0 == -100 ? UInt8(0) : 1 })
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".tmp-\(UUID().uuidString).qds")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try out.write(to: tmp)
            guard rename(tmp.path, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
            return path
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            return nil
        }
    }

    private func append<T>(_ out: inout Data, _ value: T) {
        withUnsafeBytes(of: value) { out.append(contentsOf: $0) }
    }
}

private struct ByteReader {
    let raw: UnsafeRawBufferPointer
    var at = 0
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
    var atEnd: Bool { at == raw.count }

    mutating func bytes(_ n: Int) -> UnsafeRawBufferPointer.SubSequence? {
        guard n >= 0, at + n <= raw.count else { return nil }
        defer { at += n }
        return raw[at..<(at + n)]
    }
    mutating func u32() -> UInt32? {
        guard let b = bytes(4) else { return nil }
        return UInt32(littleEndian: b.loadUnaligned(as: UInt32.self))
    }
    mutating func array<T: FixedWidthInteger>(_: T.Type, _ n: Int) -> [T]? {
        guard n >= 0, let b = bytes(n * MemoryLayout<T>.size) else { return nil }
        return [T](unsafeUninitializedCapacity: n) { buf, count in
            UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: b))
            for k in 0..<n { buf[k] = T(littleEndian: buf[k]) }
            count = n
        }
    }
}

private func encodeReport(_ r: DatasetReport) -> JSONValue {
    func loc(_ l: RecordLocation) -> [JSONValue] { [.string(l.file), .int(l.line), .int(l.index), .bool(l.isArrayElement)] }
    let skipped = r.skipped.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, JSONValue.int($0.value)) }
    return .object([
        ("files", .array(r.files.map { .string($0) })), ("records", .int(r.records)), ("labelled", .int(r.labelledTokens)),
        ("longest", .int(r.longestSample)), ("truncated", .int(r.truncated)), ("dropped", .int(r.droppedNoTargets)),
        ("dropped_examples", .array(r.droppedExamples.map { .array(loc($0)) })), ("skipped", .object(skipped)),
        ("problems", .array(r.problems.map { .array(loc($0.location) + [.string($0.kind.rawValue), .string($0.message)]) })),
        ("problem_count", .int(r.problemCount)),
    ])
}

private func decodeReport(_ value: JSONValue?) -> DatasetReport? {
    guard let d = value, d.objectValue != nil else { return nil }
    func loc(_ a: ArraySlice<JSONValue>) -> RecordLocation? {
        guard a.count >= 4, let f = a[a.startIndex].stringValue, let l = a[a.startIndex + 1].intValue,
              let i = a[a.startIndex + 2].intValue, let e = a[a.startIndex + 3].boolValue else { return nil }
        return RecordLocation(file: f, line: l, index: i, isArrayElement: e)
    }
    func int(_ key: String) -> Int { d[key]?.intValue ?? 0 }
    var r = DatasetReport()
    r.files = d["files"]?.arrayValue?.compactMap(\.stringValue) ?? []
    r.records = int("records")
    r.labelledTokens = int("labelled")
    r.longestSample = int("longest")
    r.truncated = int("truncated")
    r.droppedNoTargets = int("dropped")
    r.droppedExamples = (d["dropped_examples"]?.arrayValue ?? []).compactMap { $0.arrayValue.flatMap { loc($0[...]) } }
    for (k, v) in d["skipped"]?.objectValue ?? [] {
        if let kind = RecordProblemKind(rawValue: k), let n = v.intValue { r.skipped[kind] = n }
    }
    r.problems = (d["problems"]?.arrayValue ?? []).compactMap { item in
        guard let a = item.arrayValue, a.count == 6, let l = loc(a[0..<4]), let k = a[4].stringValue.flatMap(RecordProblemKind.init),
              let m = a[5].stringValue else { return nil }
        return RecordProblem(location: l, kind: k, message: m)
    }
    r.problemCount = int("problem_count")
    return r
}

/// What identifies a tokenizer's behaviour: every token's bytes, the added tokens, and the ids of
/// a probe text (merge order).
func tokenizerFingerprint(_ tokenizer: Tokenizer) -> String {
    var h = ContentHasher()
    var buffer: [UInt8] = []
    buffer.reserveCapacity(2 << 20)
    for id in 0..<tokenizer.vocabularySize {
        buffer += tokenizer.bytes(forId: id) ?? [0xFF, 0xFE]
        buffer.append(0)
    }
    for t in tokenizer.addedTokens { buffer += Array("\(t.id) \(t.content) \(t.special)\n".utf8) }
    let probe = "Hello, world! 你好，世界。 12345 \n\n  café naïve <|im_start|>user\nwho are you<|im_end|> ∑ 😀 ünïcödé ー カタカナ"
    for id in tokenizer.encodeIds(probe) { withUnsafeBytes(of: id.littleEndian) { buffer += $0 } }
    h.update(buffer)
    return h.hex
}

/// A fast 128-bit content hash (two multiply-rotate lanes over 8-byte words, then avalanche).
/// For cache keys, not for security.
struct ContentHasher {
    private var a: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var b: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private var length: UInt64 = 0

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    mutating func update(_ raw: UnsafeRawBufferPointer) {
        let n = raw.count
        var i = 0
        while i + 8 <= n {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            a = rotl(a ^ (w &* 0x8765_4321_0FED_CBA9), 31) &* 0x9E37_79B9_7F4A_7C15
            b = rotl(b &+ (w &* 0xC2B2_AE3D_27D4_EB4F), 27) &* 0x1656_67B1_9E37_79F9
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(raw[i]) << shift
            shift += 8
            i += 1
        }
        a = rotl(a ^ (tail &* 0x8765_4321_0FED_CBA9) ^ shift, 31) &* 0x9E37_79B9_7F4A_7C15
        b = rotl(b &+ (tail &* 0xC2B2_AE3D_27D4_EB4F) &+ shift, 27) &* 0x1656_67B1_9E37_79F9
        length &+= UInt64(n)
    }

    var hex: String {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let x = mix(a ^ length), y = mix(b &+ rotl(length, 17) ^ a)
        return String(format: "%016llx%016llx", x, y)
    }

    private func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
}
