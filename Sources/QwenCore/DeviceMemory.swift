// A backend's memory, typed so host code cannot read or write it by accident: a `DevicePointer`
// is not an `UnsafePointer`, has no subscript and no `pointee`, only offsets. Host code reaches
// a backend buffer through explicit backend calls (`copyToDevice`, `copyToHost`,
// `withHostAccess`); for the CPU backend these are free (the same memory is handed over).
// The raw address is `@_spi(CPUBackend)`: outside QwenCore (whose `CPUBackend` is in CPU/) only
// the CPU backend's folders Qwen2/CPU and Training/CPU import it, so
// `grep -r "_spi(CPUBackend)" Sources` lists every place that unwraps device memory as host
// memory. (Host state that must stay host-addressable asks `Backend.hostAddress`, which a
// device backend answers with nil.)

/// A read-only pointer into a backend's memory. Offsets (`p + n`) are in elements.
public struct DevicePointer<Pointee>: @unchecked Sendable {
    /// The address in the backend's memory (host memory for the CPU backend).
    @_spi(CPUBackend) public let address: UnsafePointer<Pointee>

    @_spi(CPUBackend) public init(_ address: UnsafePointer<Pointee>) { self.address = address }

    public static func + (p: Self, n: Int) -> Self { Self(p.address + n) }
}

/// A pointer into a backend's memory that kernels may write. `readOnly` gives the input view.
public struct DeviceMutablePointer<Pointee>: @unchecked Sendable {
    @_spi(CPUBackend) public let address: UnsafeMutablePointer<Pointee>

    @_spi(CPUBackend) public init(_ address: UnsafeMutablePointer<Pointee>) { self.address = address }

    public var readOnly: DevicePointer<Pointee> { DevicePointer(UnsafePointer(address)) }

    public static func + (p: Self, n: Int) -> Self { Self(p.address + n) }
}

/// `count` elements a backend allocated (`Backend.allocate`), freed with the buffer. `pointer`
/// stays valid for the buffer's lifetime.
public final class DeviceBuffer<Element>: @unchecked Sendable {
    public let count: Int
    public let pointer: DeviceMutablePointer<Element>
    /// What keeps the allocation alive (the CPU backend's `AlignedBuffer`).
    private let owner: AnyObject

    @_spi(CPUBackend) public init(pointer: UnsafeMutablePointer<Element>, count: Int, owner: AnyObject) {
        self.pointer = DeviceMutablePointer(pointer)
        self.count = count
        self.owner = owner
    }

    public var readOnly: DevicePointer<Element> { pointer.readOnly }
}
