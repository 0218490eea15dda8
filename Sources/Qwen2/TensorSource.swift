import QwenCore

/// A tensor as stored in a file: dtype, shape and where its bytes are (mapped memory).
public struct StoredTensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let data: UnsafeRawPointer

    public init(dtype: DType, shape: [Int], data: UnsafeRawPointer) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    public var count: Int { shape.reduce(1, *) }
}

/// Named tensors from one or more files (a safetensors file, a sharded index). The source keeps
/// the bytes alive (mapped) for as long as it lives.
public protocol TensorSource: AnyObject {
    /// What to call the source in messages: the file or folder.
    var path: String { get }
    var tensorNames: [String] { get }
    func tensor(named name: String) -> StoredTensor?
}

/// Tensors held in memory (tests, freshly initialised models).
public final class InMemoryTensorSource: TensorSource {
    public let path: String
    private var storage: [String: (DType, [Int], UnsafeMutableRawPointer)] = [:]
    public private(set) var tensorNames: [String] = []

    public init(path: String = "<memory>") { self.path = path }

    deinit { for (_, (_, _, p)) in storage { p.deallocate() } }

    /// Adds `values` stored as `dtype` (F32, BF16 or F16).
    public func add(_ name: String, shape: [Int], values: [Float], dtype: DType = .f32) {
        let bytes = max(1, values.count * dtype.elementSize)
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values.withUnsafeBufferPointer { convertFromFloat($0.baseAddress!, p, dtype: dtype, count: values.count) }
        if storage[name] == nil { tensorNames.append(name) }
        storage[name]?.2.deallocate()
        storage[name] = (dtype, shape, p)
    }

    public func tensor(named name: String) -> StoredTensor? {
        guard let (d, s, p) = storage[name] else { return nil }
        return StoredTensor(dtype: d, shape: s, data: UnsafeRawPointer(p))
    }
}
