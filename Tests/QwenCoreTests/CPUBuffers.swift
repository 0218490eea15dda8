@_spi(CPUBackend) import QwenCore

/// The tests run on the CPU backend, whose buffers are host memory: they read and write them in
/// place here (production code goes through the backend's `withHostAccess` and copies).
extension DeviceBuffer {
    var host: UnsafeMutablePointer<Element> { pointer.address }
    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer.address, count: count) }
    subscript(i: Int) -> Element {
        get { pointer.address[i] }
        set { pointer.address[i] = newValue }
    }
    func toArray() -> [Element] { Array(UnsafeBufferPointer(start: pointer.address, count: count)) }
}
