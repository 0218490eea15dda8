import JSON
import QwenCore

// The safetensors layout (https://github.com/huggingface/safetensors):
//   [u64 little-endian N][N bytes of JSON header][data buffer]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
// relative to the data buffer, plus an optional "__metadata__" object of strings. Everything
// is checked before any tensor is handed out, as the Rust reader does: the ranges must tile the
// data buffer exactly (no overlap, no gap, nothing trailing).

/// The largest header the format allows (the Rust reader's limit).
public let safetensorsMaxHeaderLength = 100_000_000

/// One tensor of a mapped safetensors file: its name, dtype, shape and bytes, read in place
/// (zero-copy). The view keeps its file's mapping alive, so it may outlive the `SafeTensorsFile`.
public struct TensorView: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    /// Row-major shape; `[]` for a 0-d tensor (one element).
    public let shape: [Int]
    /// The tensor's bytes inside the mapped file, little-endian, `elementCount × dtype.elementSize` long.
    public let bytes: UnsafeRawBufferPointer
    /// The file the tensor lives in (for messages).
    public let file: String
    let owner: AnyObject

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { bytes.count }

    /// The first byte of the tensor (for an empty tensor, where it would have been).
    public var rawPointer: UnsafeRawPointer { bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)! }

    /// True when the bytes sit at a multiple of the element size, so typed pointers may be used.
    public var isAligned: Bool { Int(bitPattern: rawPointer) % dtype.elementSize == 0 }

    /// The values as fp32 in place — no copy — when the tensor is F32 and aligned; else nil.
    public var f32Pointer: UnsafePointer<Float>? {
        dtype == .f32 && isAligned ? rawPointer.assumingMemoryBound(to: Float.self) : nil
    }

    /// The raw 16-bit words in place when the tensor is BF16 or F16 and aligned; else nil.
    public var halfPointer: UnsafePointer<UInt16>? {
        (dtype == .bf16 || dtype == .f16) && isAligned ? rawPointer.assumingMemoryBound(to: UInt16.self) : nil
    }

    /// Writes the `elementCount` values, widened (or, for F64, rounded) to fp32, into `dst`.
    /// F32, BF16, F16 and F64 tensors only; conversion rounds exactly as PyTorch does.
    public func copyFloats(into dst: UnsafeMutablePointer<Float>) throws(SafeTensorsError) {
        guard dtype.isFloatStorage || dtype == .f64 else {
            throw .notFloat(file: file, tensor: name, dtype: dtype)
        }
        let n = elementCount
        if n == 0 { return }
        if isAligned {
            convertToFloat(rawPointer, dtype: dtype, dst, count: n)
        } else {
            // Some writers do not align tensors; go through an aligned copy of the bytes.
            let tmp = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
            defer { tmp.deallocate() }
            tmp.copyMemory(from: rawPointer, byteCount: byteCount)
            convertToFloat(UnsafeRawPointer(tmp), dtype: dtype, dst, count: n)
        }
    }

    /// The values widened to fp32 in a new 64-byte-aligned buffer.
    public func floatBuffer() throws(SafeTensorsError) -> AlignedBuffer<Float> {
        guard dtype.isFloatStorage || dtype == .f64 else { throw .notFloat(file: file, tensor: name, dtype: dtype) }
        let out = AlignedBuffer<Float>(uninitializedCount: elementCount)
        try copyFloats(into: out.pointer)
        return out
    }

    /// The values widened to fp32 as an array.
    public func floats() throws(SafeTensorsError) -> [Float] {
        try floatBuffer().toArray()
    }

    /// The view itself when its shape is `expected`; else `shapeMismatch` naming file and tensor.
    @discardableResult
    public func expectingShape(_ expected: [Int]) throws(SafeTensorsError) -> TensorView {
        guard shape == expected else { throw .shapeMismatch(file: file, tensor: name, expected: expected, actual: shape) }
        return self
    }

    /// A copy of the raw bytes.
    public func byteArray() -> [UInt8] { Array(bytes) }
}

/// A safetensors file mapped into memory and validated. Tensors are views into the mapping.
public final class SafeTensorsFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The `__metadata__` strings; nil when the header has none.
    public let metadata: [String: String]?
    /// The tensors in data-buffer order (the order their bytes appear in the file).
    public let tensors: [TensorView]
    /// The JSON header's length in bytes (the u64 at the start).
    public let headerLength: Int
    private let byName: [String: Int]
    private let mapping: MappedFile

    /// Maps and validates the file at `path`; throws `SafeTensorsError` naming the file and tensor.
    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        mapping = try MappedFile(path: path)
        let parsed = try SafeTensorsHeader.parse(mapping.bytes, file: path)
        headerLength = parsed.headerLength
        metadata = parsed.metadata
        let dataStart = 8 + parsed.headerLength
        let owner = mapping
        tensors = parsed.entries.map { e in
            TensorView(name: e.name, dtype: e.dtype, shape: e.shape,
                       bytes: UnsafeRawBufferPointer(rebasing: owner.bytes[(dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound)]),
                       file: path, owner: owner)
        }
        var byName: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { byName[t.name] = i }
        self.byName = byName
    }

    /// Tensor names in data-buffer order.
    public var names: [String] { tensors.map(\.name) }

    /// The size of the file in bytes.
    public var fileSize: Int { mapping.bytes.count }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> TensorView? {
        byName[name].map { tensors[$0] }
    }

    /// The tensor called `name`; throws `missingTensor` naming the file when absent.
    public func tensor(_ name: String) throws(SafeTensorsError) -> TensorView {
        guard let t = self[name] else { throw .missingTensor(file: path, tensor: name) }
        return t
    }
}

/// One validated header entry.
struct HeaderEntry {
    var name: String
    var dtype: DType
    var shape: [Int]
    var range: Range<Int>
}

enum SafeTensorsHeader {
    struct Parsed {
        var headerLength: Int
        var metadata: [String: String]?
        var entries: [HeaderEntry]  // sorted by data offset
    }

    /// Parses and validates a whole file's bytes.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws(SafeTensorsError) -> Parsed {
        guard bytes.count >= 8 else { throw .truncated(file: file, size: bytes.count) }
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(bytes[i]) }
        guard n > 0 else { throw .badHeader(file: file, tensor: nil, reason: "the header length is 0; a header holds at least {}") }
        guard n <= UInt64(safetensorsMaxHeaderLength) else { throw .headerTooLarge(file: file, length: n) }
        guard n <= UInt64(bytes.count - 8) else { throw .headerPastEnd(file: file, length: n, fileSize: bytes.count) }
        let headerLength = Int(n)
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        let json: JSONValue
        do {
            json = try JSONValue.parse(header)
        } catch {
            throw .badJSON(file: file, detail: "\(error.reason) at header byte \(error.offset)")
        }
        guard let pairs = json.objectValue else {
            throw .badHeader(file: file, tensor: nil, reason: "the header is \(json.kind), expected a JSON object")
        }
        let dataSize = bytes.count - 8 - headerLength
        var metadata: [String: String]? = nil
        var entries: [HeaderEntry] = []
        entries.reserveCapacity(pairs.count)
        for (name, value) in pairs {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, file: file)
            } else {
                entries.append(try parseEntry(name: name, value: value, dataSize: dataSize, file: file))
            }
        }
        try checkTiling(entries: &entries, dataSize: dataSize, file: file)
        return Parsed(headerLength: headerLength, metadata: metadata, entries: entries)
    }

    static func parseMetadata(_ value: JSONValue, file: String) throws(SafeTensorsError) -> [String: String] {
        guard let pairs = value.objectValue else {
            throw .badMetadata(file: file, key: nil, reason: "is \(value.kind), expected an object of strings")
        }
        var out: [String: String] = [:]
        for (k, v) in pairs {
            guard let s = v.stringValue else {
                throw .badMetadata(file: file, key: k, reason: "value is \(v.kind), expected a string")
            }
            out[k] = s
        }
        return out
    }

    static func parseEntry(name: String, value: JSONValue, dataSize: Int, file: String) throws(SafeTensorsError) -> HeaderEntry {
        guard value.objectValue != nil else {
            throw .badHeader(file: file, tensor: name, reason: "entry is \(value.kind), expected an object with dtype, shape and data_offsets")
        }
        guard let dtypeValue = value["dtype"] else {
            throw .badHeader(file: file, tensor: name, reason: "missing \"dtype\"")
        }
        guard let dtypeName = dtypeValue.stringValue else {
            throw .badHeader(file: file, tensor: name, reason: "\"dtype\" is \(dtypeValue.kind), expected a string")
        }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw .unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard let shapeItems = value["shape"]?.arrayValue else {
            throw .badHeader(file: file, tensor: name, reason: "\"shape\" is missing or not an array")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard let d = item.intValue, d >= 0 else {
                throw .badHeader(file: file, tensor: name, reason: "\"shape\" must hold non-negative integers, got \(item.text())")
            }
            shape.append(d)
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= begin
        else {
            throw .badHeader(file: file, tensor: name, reason: "\"data_offsets\" must be [begin, end] with 0 ≤ begin ≤ end, got \(value["data_offsets"]?.text() ?? "nothing")")
        }
        // Element count × size with overflow checks: a hostile header must not wrap around.
        var expected = dtype.elementSize
        var overflow = false
        for d in shape {
            let (p, o) = expected.multipliedReportingOverflow(by: d)
            expected = p
            overflow = overflow || o
        }
        if overflow || expected != end - begin {
            throw .sizeMismatch(file: file, tensor: name, dtype: dtype, shape: shape,
                                expectedBytes: overflow ? Int.max : expected, rangeBytes: end - begin)
        }
        guard end <= dataSize else {
            throw .rangeOutsideBuffer(file: file, tensor: name, range: begin..<end, bufferSize: dataSize)
        }
        return HeaderEntry(name: name, dtype: dtype, shape: shape, range: begin..<end)
    }

    /// Sorts entries by offset and checks they cover the data buffer exactly once.
    static func checkTiling(entries: inout [HeaderEntry], dataSize: Int, file: String) throws(SafeTensorsError) {
        entries.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var covered = 0
        var last: String? = nil
        for e in entries {
            if e.range.lowerBound < covered, let last {
                throw .overlappingRanges(file: file, tensor: e.name, other: last)
            }
            if e.range.lowerBound > covered {
                throw .uncoveredBytes(file: file, range: covered..<e.range.lowerBound, bufferSize: dataSize)
            }
            covered = e.range.upperBound
            last = e.name
        }
        if covered != dataSize {
            throw .uncoveredBytes(file: file, range: covered..<dataSize, bufferSize: dataSize)
        }
    }
}
