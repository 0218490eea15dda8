import Foundation

// TensorBoard event files without TensorFlow or a protobuf package: a TFRecord file of
// tensorflow.Event messages, encoded by hand.
//
// TFRecord framing, per record: uint64 length (little endian), uint32 masked CRC32C of those 8
// bytes, the data, uint32 masked CRC32C of the data. mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
//
// The messages (tensorflow/core/util/event.proto, framework/summary.proto), proto3 encoding:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
// Fields go in number order and proto3 defaults (0, "") are left out, as protobuf's serializer does,
// so a file written here is byte-identical to TensorBoard's own writer given the same wall times.
// The first record is the file_version "brain.Event:2" event; then one event per scalar.

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form (so a CRC of data holding CRCs stays well distributed).
    public static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        let c = checksum(bytes)
        return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
    }
}

/// The few protobuf wire-format pieces Event needs.
public enum EventProto {
    static func varint(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func key(_ field: Int, _ wireType: Int, into out: inout [UInt8]) {
        varint(UInt64(field << 3 | wireType), into: &out)
    }

    static func bytes(_ field: Int, _ b: [UInt8], into out: inout [UInt8]) {
        key(field, 2, into: &out)
        varint(UInt64(b.count), into: &out)
        out += b
    }

    static func little<T: FixedWidthInteger>(_ v: T, into out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    /// An Event: wall_time, step, and either file_version or a summary of (tag, simple_value).
    public static func event(wallTime: Double, step: Int64, fileVersion: String? = nil,
                             scalars: [(tag: String, value: Float)] = []) -> [UInt8] {
        var out: [UInt8] = []
        if wallTime != 0 {
            key(1, 1, into: &out)
            little(wallTime.bitPattern, into: &out)
        }
        if step != 0 {
            key(2, 0, into: &out)
            varint(UInt64(bitPattern: step), into: &out)
        }
        if let fileVersion, !fileVersion.isEmpty { bytes(3, Array(fileVersion.utf8), into: &out) }
        if !scalars.isEmpty {
            var summary: [UInt8] = []
            for s in scalars {
                var value: [UInt8] = []
                if !s.tag.isEmpty { bytes(1, Array(s.tag.utf8), into: &value) }
                key(2, 5, into: &value)  // in a oneof: written even when 0
                little(s.value.bitPattern, into: &value)
                bytes(1, value, into: &summary)
            }
            bytes(5, summary, into: &out)
        }
        return out
    }

    /// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
    public static func record(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        little(UInt64(data.count), into: &out)
        little(CRC32C.masked(out), into: &out)
        out += data
        little(CRC32C.masked(data), into: &out)
        return out
    }
}

/// An `events.out.tfevents.<time>.<host>.<pid>.0` file in `folder`, appended to as scalars are
/// logged (each write is flushed, so TensorBoard can watch a run live).
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle

    public init(folder: String, wallTime: Double = Date().timeIntervalSince1970,
                host: String = ProcessInfo.processInfo.hostName) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let name = String(format: "events.out.tfevents.%010d.%@.%d.0", Int(wallTime), host, Int(getpid()))
        path = (folder as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.writeFailed(path: path, message: "cannot create the TensorBoard event file (report_to tensorboard); check that the folder is writable")
        }
        handle = h
        write(EventProto.event(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    /// One event per scalar, as transformers' TensorBoardCallback calls add_scalar per value.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        for v in values {
            write(EventProto.event(wallTime: wallTime, step: Int64(step), scalars: [(v.tag, Float(v.value))]))
        }
    }

    /// A trainer_log.jsonl entry as TensorBoardCallback logs it: every number but `step`, named
    /// `eval/x` for `eval_x` and `train/x` otherwise (transformers' rewrite_logs).
    public func log(_ entry: JSONValue, wallTime: Double = Date().timeIntervalSince1970) {
        guard case .object(let pairs) = entry, case .number(let s, _)? = entry["step"] else { return }
        var values: [(tag: String, value: Double)] = []
        for (key, value) in pairs where key != "step" {
            guard case .number(let x, _) = value else { continue }
            values.append((key.hasPrefix("eval_") ? "eval/" + key.dropFirst(5) : "train/" + key, x))
        }
        scalars(values, step: Int(s), wallTime: wallTime)
    }

    /// Why a write failed ("No space left on device"), or nil: logging never stops a run.
    public private(set) var writeError: String?

    private func write(_ event: [UInt8]) {
        if let e = ModelFiles.writeAll(EventProto.record(event), fd: handle.fileDescriptor) { writeError = e }
    }
}
