@_spi(CPUBackend) import QwenCore

/// The tests run on the CPU backend, whose buffers are host memory: they read and write them in
/// place here (production code goes through the backend's `withHostAccess` and copies).
extension DeviceBuffer {
    public var host: UnsafeMutablePointer<Element> { pointer.address }
    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer.address, count: count) }
    public subscript(i: Int) -> Element {
        get { pointer.address[i] }
        set { pointer.address[i] = newValue }
    }
    public func toArray() -> [Element] { Array(UnsafeBufferPointer(start: pointer.address, count: count)) }
}
