import Foundation
import Testing
@testable import Training

// TensorBoard event files: byte-identical to TensorBoard's own writer (golden file from
// Scripts/fixtures/tensorboard_check.py golden), framing and CRCs that decode, and a trainer run
// with report_to tensorboard writing every logged value.

/// The records of a TFRecord file, each checked against its two masked CRC32Cs.
func tfRecords(_ data: [UInt8]) throws -> [[UInt8]] {
    struct BadRecord: Error, CustomStringConvertible { let description: String }
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(data[i + $1]) << (8 * $1) } }
    var out: [[UInt8]] = []
    var i = 0
    while i < data.count {
        guard i + 12 <= data.count else { throw BadRecord(description: "truncated header at \(i)") }
        let n = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(data[i + $1]) << (8 * $1) })
        guard u32(i + 8) == CRC32C.masked(data[i..<(i + 8)]) else { throw BadRecord(description: "length CRC at \(i)") }
        guard i + 16 + n <= data.count else { throw BadRecord(description: "truncated record at \(i)") }
        let body = Array(data[(i + 12)..<(i + 12 + n)])
        guard u32(i + 12 + n) == CRC32C.masked(body) else { throw BadRecord(description: "data CRC at \(i)") }
        out.append(body)
        i += 16 + n
    }
    return out
}

/// A decoded Event: wall_time, step, file_version, and the summary's (tag, simple_value) pairs.
struct DecodedEvent {
    var wallTime = 0.0, step: Int64 = 0, fileVersion = ""
    var scalars: [(String, Float)] = []

    init(_ b: [UInt8]) {
        var i = 0
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = b[i]; i += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return v }
                shift += 7
            }
        }
        func fixed(_ n: Int) -> UInt64 {
            defer { i += n }
            return (0..<n).reduce(UInt64(0)) { $0 | UInt64(b[i + $1]) << (8 * UInt64($1)) }
        }
        while i < b.count {
            let key = varint()
            switch key {
            case 1 << 3 | 1: wallTime = Double(bitPattern: fixed(8))
            case 2 << 3 | 0: step = Int64(bitPattern: varint())
            case 3 << 3 | 2: let n = Int(varint()); fileVersion = String(decoding: b[i..<(i + n)], as: UTF8.self); i += n
            case 5 << 3 | 2:
                let end = i + Int(varint())
                while i < end {
                    _ = varint()  // Summary.value, length-delimited
                    let vend = i + Int(varint())
                    var tag = "", value: Float = .nan
                    while i < vend {
                        let k = varint()
                        if k == 1 << 3 | 2 { let n = Int(varint()); tag = String(decoding: b[i..<(i + n)], as: UTF8.self); i += n }
                        else if k == 2 << 3 | 5 { value = Float(bitPattern: UInt32(fixed(4))) }
                        else { i = vend }
                    }
                    scalars.append((tag, value))
                }
            default: i = b.count
            }
        }
    }
}

@Suite struct TensorBoardWriterTests {
    static let wall0 = 1_700_000_000.5
    /// Scripts/fixtures/tensorboard_check.py's SCALARS.
    static let scalars: [(wall: Double, step: Int, tag: String, value: Double)] = [
        (wall0 + 1, 1, "train/loss", 2.5), (wall0 + 1, 1, "train/learning_rate", 2e-4),
        (wall0 + 1, 1, "train/grad_norm", 0.75), (wall0 + 1, 1, "train/epoch", 0.5),
        (wall0 + 2.25, 300, "eval/loss", 1.25), (wall0 + 2.25, 300, "eval/token_accuracy", 0.625),
        (wall0 + 3, 0, "train/zero", 0),
    ]

    @Test func crc32cKnownValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func matchesTensorBoardsOwnWriterByteForByte() throws {
        let dir = try trainerTempDir() + "/tb"
        let w = try TensorBoardWriter(folder: dir, wallTime: Self.wall0, host: "testhost")
        #expect((w.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000.testhost."))
        for s in Self.scalars { w.scalars([(s.tag, s.value)], step: s.step, wallTime: s.wall) }
        let ours = try fileBytes(w.path)
        let golden = try fileBytes(URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/tensorboard/golden.tfevents").path)
        #expect(ours == golden, "ours \(ours.count) bytes, TensorBoard's \(golden.count)")

        let events = try tfRecords(Array(ours)).map(DecodedEvent.init)
        #expect(events.count == Self.scalars.count + 1)
        #expect(events[0].fileVersion == "brain.Event:2" && events[0].wallTime == Self.wall0)
        for (e, s) in zip(events.dropFirst(), Self.scalars) {
            #expect(e.wallTime == s.wall && e.step == Int64(s.step))
            #expect(e.scalars.count == 1 && e.scalars[0].0 == s.tag && e.scalars[0].1 == Float(s.value))
        }
    }

    @Test func logEntriesBecomeTrainAndEvalTags() throws {
        let w = try TensorBoardWriter(folder: try trainerTempDir() + "/tb")
        w.log(.object([("step", .int(4)), ("loss", .double(1.5)), ("epoch", .double(0.25))]))
        w.log(.object([("step", .int(5)), ("eval_loss", .double(1.25)), ("eval_token_accuracy", .double(0.5)), ("note", .string("x"))]))
        let events = try tfRecords(Array(try fileBytes(w.path))).map(DecodedEvent.init)
        #expect(events.dropFirst().map { $0.scalars[0].0 } == ["train/loss", "train/epoch", "eval/loss", "eval/token_accuracy"])
        #expect(events.dropFirst().map(\.step) == [4, 4, 5, 5])
    }
}
