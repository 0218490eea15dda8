import Foundation

/// One record's bytes in a data file, before parsing.
struct RawRecord {
    var range: Range<Int>
    var location: RecordLocation
}

/// Cuts a data file into records without parsing them: a JSON array's top-level elements, or the
/// non-blank lines of a JSONL file. The file is memory-mapped and only scanned, so a file of
/// many GB costs a few dozen bytes per record; the records are parsed later, in parallel chunks.
struct DataFile {
    let path: String
    let bytes: Data
    let isArray: Bool
    let records: [RawRecord]
    /// Damage to the file's structure itself (an unclosed array), reported like a bad record.
    let problems: [RecordProblem]

    init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
            throw TrainingError.unreadableFile(path: path, message: "no such file; check train_file / eval_file")
        }
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TrainingError.unreadableFile(path: path, message: error.localizedDescription)
        }
        let scanned = bytes.withUnsafeBytes { raw -> (Bool, [RawRecord], [RecordProblem]) in
            let p = raw.bindMemory(to: UInt8.self)
            return DataFile.scan(p, path: path)
        }
        (isArray, records, problems) = scanned
    }

    /// The record's text (nil when not UTF-8).
    func text(of record: RawRecord) -> String? {
        bytes.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self)
            let slice = UnsafeBufferPointer(rebasing: p[record.range])
            return String(validating: slice, as: UTF8.self)
        }
    }

    static func scan(_ p: UnsafeBufferPointer<UInt8>, path: String) -> (Bool, [RawRecord], [RecordProblem]) {
        var k = 0
        if p.count >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { k = 3 }  // UTF-8 BOM
        var line = 1
        while k < p.count, isSpace(p[k]) {
            if p[k] == 0x0A { line += 1 }
            k += 1
        }
        if k < p.count && p[k] == UInt8(ascii: "[") {
            return scanArray(p, from: k + 1, line: line, path: path)
        }
        return (false, scanLines(p, from: k, line: line, path: path), [])
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    private static func scanLines(_ p: UnsafeBufferPointer<UInt8>, from start: Int, line firstLine: Int, path: String) -> [RawRecord] {
        var records: [RawRecord] = []
        var k = start, line = firstLine
        while k < p.count {
            var end = k
            while end < p.count && p[end] != 0x0A { end += 1 }
            var a = k, b = end
            while a < b && isSpace(p[a]) { a += 1 }
            while b > a && isSpace(p[b - 1]) { b -= 1 }
            if a < b {
                records.append(RawRecord(range: a..<b, location: RecordLocation(file: path, line: line, index: records.count, isArrayElement: false)))
            }
            line += 1
            k = end + 1
        }
        return records
    }

    /// Top-level elements of a JSON array: split at depth-0 commas, strings and escapes skipped.
    private static func scanArray(_ p: UnsafeBufferPointer<UInt8>, from start: Int, line firstLine: Int, path: String)
        -> (Bool, [RawRecord], [RecordProblem]) {
        var records: [RawRecord] = []
        var problems: [RecordProblem] = []
        var k = start, line = firstLine
        var depth = 0, inString = false, escaped = false
        var elementStart = -1, elementLine = line
        var closed = false
        func finish(_ end: Int) {
            guard elementStart >= 0 else { return }
            var b = end
            while b > elementStart && isSpace(p[b - 1]) { b -= 1 }
            records.append(RawRecord(range: elementStart..<b,
                                     location: RecordLocation(file: path, line: elementLine, index: records.count, isArrayElement: true)))
            elementStart = -1
        }
        while k < p.count {
            let c = p[k]
            if c == 0x0A { line += 1 }
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                k += 1
                continue
            }
            if elementStart < 0 && !isSpace(c) && !(depth == 0 && (c == UInt8(ascii: ",") || c == UInt8(ascii: "]"))) {
                elementStart = k
                elementLine = line
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"): depth -= 1
            case UInt8(ascii: "]"):
                if depth == 0 {
                    finish(k)
                    closed = true
                } else {
                    depth -= 1
                }
            case UInt8(ascii: ","):
                if depth == 0 {
                    if elementStart < 0 {
                        problems.append(RecordProblem(location: RecordLocation(file: path, line: line, index: records.count, isArrayElement: true),
                                                      kind: .badJSON, message: "a comma with no record before it"))
                    }
                    finish(k)
                }
            default: break
            }
            k += 1
            if closed { break }
        }
        if !closed {
            finish(k)
            problems.append(RecordProblem(location: RecordLocation(file: path, line: line, index: records.count, isArrayElement: true),
                                          kind: .badJSON, message: "the JSON array is not closed with \"]\" (the file is cut short?)"))
        } else {
            while k < p.count {
                if p[k] == 0x0A { line += 1 } else if !isSpace(p[k]) {
                    problems.append(RecordProblem(location: RecordLocation(file: path, line: line, index: records.count, isArrayElement: true),
                                                  kind: .badJSON, message: "text after the closing \"]\" of the JSON array"))
                    break
                }
                k += 1
            }
        }
        return (true, records, problems)
    }
}
