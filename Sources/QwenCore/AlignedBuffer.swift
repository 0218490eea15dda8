/// A heap buffer of `count` elements aligned to 64 bytes (a cache line, and what AVX-512 and
/// CUDA copies like). Owns its memory; `pointer` stays valid for the buffer's lifetime.
public final class AlignedBuffer<Element>: @unchecked Sendable {
    public static var alignment: Int { 64 }

    public let count: Int
    public let pointer: UnsafeMutablePointer<Element>

    /// Allocates `count` elements, zero-filled.
    public init(count: Int) {
        precondition(count >= 0, "AlignedBuffer count must be non-negative")
        self.count = count
        let bytes = max(1, count * MemoryLayout<Element>.stride)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(1, count))
    }

    /// Allocates `count` elements left uninitialised, for a buffer the caller overwrites in full
    /// at once (saves a pass over memory). Element must be a trivial type such as Float.
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "AlignedBuffer count must be non-negative")
        precondition(_isPOD(Element.self), "uninitialised AlignedBuffer needs a trivial element type")
        self.count = count
        let bytes = max(1, count * MemoryLayout<Element>.stride)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        pointer = raw.bindMemory(to: Element.self, capacity: max(1, count))
    }

    /// Allocates and copies `values`.
    public convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    public subscript(i: Int) -> Element {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func toArray() -> [Element] { Array(buffer) }
}
