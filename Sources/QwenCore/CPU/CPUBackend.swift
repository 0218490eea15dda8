
/// The CPU backend: host memory (`AlignedBuffer`), OpenBLAS for products, `parallelChunks` for
/// elementwise loops. Its device pointers are host pointers, so host copies are free:
/// `withHostAccess` and `hostAddress` hand the same memory.
public struct CPUBackend: Backend {
    public init() {}
    public var name: String { "cpu" }

    public func allocate<T>(_ type: T.Type, count: Int, zeroed: Bool) -> DeviceBuffer<T> {
        let host = zeroed ? AlignedBuffer<T>(count: count) : AlignedBuffer<T>(uninitializedCount: count)
        return DeviceBuffer(pointer: host.pointer, count: count, owner: host)
    }
    public func copyToDevice<T>(_ dst: DeviceMutablePointer<T>, from src: UnsafePointer<T>, count: Int) {
        if dst.address != src { dst.address.update(from: src, count: count) }
    }
    public func copyToHost<T>(_ dst: UnsafeMutablePointer<T>, from src: DevicePointer<T>, count: Int) {
        if UnsafePointer(dst) != src.address { dst.update(from: src.address, count: count) }
    }
    public func withHostAccess<T, R>(_ p: DeviceMutablePointer<T>, count: Int,
                                     _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: p.address, count: count))
    }
    public func hostAddress<T>(_ p: DeviceMutablePointer<T>) -> UnsafeMutablePointer<T>? { p.address }

    public func gemmNN(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                       C: DeviceMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.nn(M, N, K, A.address, B.address, C.address, alpha: alpha, accumulate: accumulate)
    }
    public func gemmNT(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                       C: DeviceMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.nt(M, N, K, A.address, B.address, C.address, alpha: alpha, accumulate: accumulate)
    }
    public func gemmTN(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                       C: DeviceMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.tn(M, N, K, A.address, B.address, C.address, alpha: alpha, accumulate: accumulate)
    }

    public func fill(_ out: DeviceMutablePointer<Float>, count: Int, value: Float) {
        let out = out.address
        parallelChunks(count, minChunk: 1 << 16) { r in
            (out + r.lowerBound).update(repeating: value, count: r.count)
        }
    }
    public func copy(_ out: DeviceMutablePointer<Float>, from inp: DevicePointer<Float>, count: Int) {
        let out = out.address, inp = inp.address
        parallelChunks(count, minChunk: 1 << 16) { r in
            (out + r.lowerBound).update(from: inp + r.lowerBound, count: r.count)
        }
    }
    public func add(_ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>, count: Int) {
        let out = out.address, inp = inp.address
        parallelChunks(count, minChunk: 1 << 16) { r in
            for i in r { out[i] += inp[i] }
        }
    }

    public func convertToFloat(_ out: DeviceMutablePointer<Float>, from inp: DevicePointer<UInt8>, dtype: DType, count: Int) {
        QwenCore.convertToFloat(UnsafeRawPointer(inp.address), dtype: dtype, out.address, count: count)
    }
    public func convertFromFloat(_ out: DeviceMutablePointer<UInt8>, dtype: DType, from inp: DevicePointer<Float>, count: Int) {
        QwenCore.convertFromFloat(inp.address, UnsafeMutableRawPointer(out.address), dtype: dtype, count: count)
    }
}
