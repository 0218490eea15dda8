#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QwenCore

/// A tensor for the writer: name, dtype, shape and a function that fills its bytes in place
/// (straight into the mapped output file, so nothing is staged in memory twice).
public struct TensorToWrite {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Fills exactly `byteCount` bytes, little-endian. The buffer is aligned to the element size
    /// when every tensor in the file is (the writer orders tensors so they are).
    let fill: (UnsafeMutableRawBufferPointer) throws -> Void

    /// Elements: the product of the shape (1 for a 0-d tensor).
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * dtype.elementSize }

    /// A tensor whose bytes come from `fill`, which must write all `byteCount` bytes.
    public init(name: String, dtype: DType, shape: [Int], fill: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fill = fill
    }

    /// A tensor with these exact bytes (checked against shape × dtype when written).
    public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
        self.init(name: name, dtype: dtype, shape: shape) { out in
            guard bytes.count == out.count else {
                throw SafeTensorsError.invalidTensor(tensor: name, reason: "\(bytes.count) bytes given but shape \(shape) of \(dtype) needs \(out.count)")
            }
            bytes.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }

    /// fp32 values stored as `dtype` (F32, BF16, F16 or F64), rounded as PyTorch rounds.
    public init(name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) {
        self.init(name: name, dtype: dtype, shape: shape) { out in
            let n = out.count / dtype.elementSize
            guard floats.count == n else {
                throw SafeTensorsError.invalidTensor(tensor: name, reason: "\(floats.count) values given but shape \(shape) holds \(n)")
            }
            try Self.storeFloats(floats, count: n, into: out, dtype: dtype, name: name)
        }
    }

    /// `count` fp32 values at `pointer`, stored as `dtype`. The caller keeps the memory alive and
    /// unchanged until the write call returns (no copy is taken).
    public init(name: String, shape: [Int], pointer: UnsafePointer<Float>, as dtype: DType = .f32) {
        self.init(name: name, dtype: dtype, shape: shape) { out in
            try Self.storeFloats(pointer, count: out.count / dtype.elementSize, into: out, dtype: dtype, name: name)
        }
    }

    /// A tensor of another file, copied as is (or renamed). The view keeps its file mapped.
    public init(copying view: TensorView, name: String? = nil) {
        self.init(name: name ?? view.name, dtype: view.dtype, shape: view.shape) { out in
            out.copyMemory(from: view.bytes)
        }
    }

    /// A float tensor of another file, converted to `dtype` (F32, BF16, F16 or F64) on the way.
    public init(converting view: TensorView, to dtype: DType, name: String? = nil) {
        if view.dtype == dtype {
            self.init(copying: view, name: name)
            return
        }
        let tensorName = name ?? view.name
        self.init(name: tensorName, dtype: dtype, shape: view.shape) { out in
            let values = try view.floatBuffer()
            try Self.storeFloats(UnsafePointer(values.pointer), count: values.count, into: out, dtype: dtype, name: tensorName)
        }
    }

    static func storeFloats(_ src: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawBufferPointer,
                            dtype: DType, name: String) throws {
        guard dtype.isFloatStorage || dtype == .f64 else {
            throw SafeTensorsError.invalidTensor(tensor: name, reason: "cannot store Float values as \(dtype)")
        }
        guard count > 0, let base = out.baseAddress else { return }
        if Int(bitPattern: base) % dtype.elementSize == 0 {
            convertFromFloat(src, base, dtype: dtype, count: count)
        } else {
            let tmp = UnsafeMutableRawPointer.allocate(byteCount: out.count, alignment: 64)
            defer { tmp.deallocate() }
            convertFromFloat(src, tmp, dtype: dtype, count: count)
            base.copyMemory(from: tmp, byteCount: out.count)
        }
    }
}

/// Writes safetensors files in the Hugging Face layout, byte for byte as Python's
/// `safetensors.torch.save_file` does for the same tensors and metadata:
/// tensors ordered by dtype (widest class first, as the Rust crate's dtype order) then name,
/// an 8-byte little-endian header length, compact JSON (`__metadata__` first, then tensors in
/// file order), padded with spaces to a multiple of 8. Writes go to a temporary file in the same
/// folder that is renamed over the target, so a reader never sees half a file.
public enum SafeTensorsWriter {
    /// The metadata transformers writes.
    public static let defaultMetadata: [String: String] = ["format": "pt"]

    /// Writes `tensors` to `path` atomically. `metadata` nil writes no `__metadata__`. With more
    /// than one metadata key, keys are sorted (Python's order is a hash map's, i.e. arbitrary).
    public static func write(_ tensors: [TensorToWrite], to path: String,
                             metadata: [String: String]? = defaultMetadata) throws {
        let ordered = try fileOrder(tensors)
        let header = headerBytes(ordered, metadata: metadata)
        let dataSize = ordered.reduce(0) { $0 + $1.byteCount }
        try AtomicFile.write(path: path, size: 8 + header.count + dataSize) { out in
            var n = UInt64(header.count)
            for i in 0..<8 { out[i] = UInt8(truncatingIfNeeded: n); n >>= 8 }
            header.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[8..<(8 + header.count)]).copyMemory(from: $0) }
            var offset = 8 + header.count
            for t in ordered {
                let slice = UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + t.byteCount)])
                try t.fill(slice)
                offset += t.byteCount
            }
        }
    }

    /// The Rust crate's dtype order (its enum order); files list the larger ranks first.
    static func rank(_ d: DType) -> Int {
        switch d {
        case .bool: return 0
        case .u8: return 1
        case .i8: return 2
        case .i16: return 3
        case .f16: return 4
        case .bf16: return 5
        case .i32: return 6
        case .f32: return 7
        case .f64: return 8
        case .i64: return 9
        }
    }

    /// Checks names and sizes, and sorts as the Rust crate does (dtype rank descending, then the
    /// name's bytes ascending).
    static func fileOrder(_ tensors: [TensorToWrite]) throws -> [TensorToWrite] {
        var seen = Set<String>()
        for t in tensors {
            if t.name == "__metadata__" {
                throw SafeTensorsError.invalidTensor(tensor: t.name, reason: "the name __metadata__ is reserved by the format")
            }
            if !seen.insert(t.name).inserted {
                throw SafeTensorsError.invalidTensor(tensor: t.name, reason: "the name occurs twice; tensor names must be unique")
            }
            if t.shape.contains(where: { $0 < 0 }) {
                throw SafeTensorsError.invalidTensor(tensor: t.name, reason: "negative dimension in shape \(t.shape)")
            }
            var bytes = t.dtype.elementSize
            for d in t.shape {
                let (p, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw SafeTensorsError.invalidTensor(tensor: t.name, reason: "shape \(t.shape) is too large to store")
                }
                bytes = p
            }
        }
        return tensors.sorted { a, b in
            let ra = rank(a.dtype), rb = rank(b.dtype)
            if ra != rb { return ra > rb }
            return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
        }
    }

    /// The JSON header, padded with spaces to a multiple of 8 bytes.
    static func headerBytes(_ ordered: [TensorToWrite], metadata: [String: String]?) -> [UInt8] {
        var pairs: [(String, JSONValue)] = []
        if let metadata {
            let keys = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            pairs.append(("__metadata__", .object(keys.map { ($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for t in ordered {
            pairs.append((t.name, .object([
                ("dtype", .string(t.dtype.safetensorsName)),
                ("shape", .array(t.shape.map { .integer($0) })),
                ("data_offsets", .array([.integer(offset), .integer(offset + t.byteCount)])),
            ])))
            offset += t.byteCount
        }
        var out: [UInt8] = []
        appendJSON(.object(pairs), to: &out)
        while out.count % 8 != 0 { out.append(0x20) }
        return out
    }
}

/// Creates a file by writing a temporary sibling through a shared mapping, syncing it, and
/// renaming it over the target; on any error the temporary file is removed. A full disk is a
/// `SafeTensorsError.io` naming the target and "No space left on device", never a half file.
public enum AtomicFile {
    static func write(path: String, size: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let tmp = (dir.isEmpty ? "" : dir + "/") + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError.io(path: path, operation: "create a temporary file in \(dir)", reason: String(cString: strerror(errno)))
        }
        var done = false
        defer {
            close(fd)
            if !done { unlink(tmp) }
        }
        // Reserve the blocks now: a full disk must be an error here, not a SIGBUS while
        // storing through the mapping.
        if size > 0 {
            let rc = posix_fallocate(fd, 0, off_t(size))
            guard rc == 0 else {
                throw SafeTensorsError.io(path: path, operation: "reserve \(size) bytes for the output file", reason: String(cString: strerror(rc)))
            }
        }
        if size > 0 {
            guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                throw SafeTensorsError.io(path: path, operation: "map the output file", reason: String(cString: strerror(errno)))
            }
            defer { munmap(p, size) }
            try fill(UnsafeMutableRawBufferPointer(start: p, count: size))
            guard msync(p, size, MS_SYNC) == 0 else {
                throw SafeTensorsError.io(path: path, operation: "write", reason: String(cString: strerror(errno)))
            }
        }
        guard fsync(fd) == 0 else {
            throw SafeTensorsError.io(path: path, operation: "sync", reason: String(cString: strerror(errno)))
        }
        guard rename(tmp, path) == 0 else {
            throw SafeTensorsError.io(path: path, operation: "rename the temporary file into place", reason: String(cString: strerror(errno)))
        }
        done = true
    }

    /// Writes small text or bytes atomically (an index, a config).
    public static func write(path: String, bytes: [UInt8]) throws {
        try write(path: path, size: bytes.count) { out in
            bytes.withUnsafeBytes { out.copyMemory(from: $0) }
        }
    }
}
