/// The operations the model and trainer run, written once against this protocol: a CPU
/// implementation (BLAS plus threaded Swift loops) now, a CUDA one through the shim later.
/// Buffers are the backend's (`DeviceBuffer`, `DevicePointer`: see DeviceMemory.swift): host
/// code reaches them only through `copyToDevice`, `copyToHost` and `withHostAccess`, which the
/// CPU backend answers with the same memory. Shapes follow llm.c: `// inp (B,T,C), weight (OC,C)`;
/// matrices are row-major.
///
/// This is the base of one protocol family, refined where the types it needs live:
/// `ModelBackend` (Qwen2: embedding, RMSNorm, linear over stored/NF4 weights, LoRA, RoPE,
/// attention, SwiGLU, lm_head scoring) and `TrainingBackend` (Training: cross-entropy, AdamW,
/// gradient-norm clipping). `CPUBackend` conforms to all three, each level's kernels in its
/// module's `CPU/` folder; `Backends.make(_ device:)` is where a `Device` becomes a backend.
public protocol Backend: Sendable {
    /// A short name for logs: "cpu", "cuda:0".
    var name: String { get }

    // MARK: Memory and host copies

    /// `count` elements of the backend's memory, zero-filled unless `zeroed` is false (for a
    /// buffer the caller overwrites in full at once).
    func allocate<T>(_ type: T.Type, count: Int, zeroed: Bool) -> DeviceBuffer<T>
    /// dst[0..<count] (backend memory) = src[0..<count] (host memory).
    func copyToDevice<T>(_ dst: DeviceMutablePointer<T>, from src: UnsafePointer<T>, count: Int)
    /// dst[0..<count] (host memory) = src[0..<count] (backend memory).
    func copyToHost<T>(_ dst: UnsafeMutablePointer<T>, from src: DevicePointer<T>, count: Int)
    /// Runs `body` on a host view of p[0..<count] whose writes land in p: the CPU backend hands
    /// the same memory (no copy); a device backend copies down, runs, copies back.
    func withHostAccess<T, R>(_ p: DeviceMutablePointer<T>, count: Int,
                              _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R
    /// The host address of backend memory the host can address directly (the CPU backend: all
    /// of it; a discrete GPU: nil). For state host code holds across calls — the trainable
    /// flat buffers that MPI collectives and checkpoints read in place (`TrainableState`).
    func hostAddress<T>(_ p: DeviceMutablePointer<T>) -> UnsafeMutablePointer<T>?

    // MARK: Products

    /// C (M,N) (+)= alpha · A (M,K) · B (K,N)
    func gemmNN(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                C: DeviceMutablePointer<Float>, alpha: Float, accumulate: Bool)
    /// C (M,N) (+)= alpha · A (M,K) · Bᵀ, B stored (N,K)
    func gemmNT(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                C: DeviceMutablePointer<Float>, alpha: Float, accumulate: Bool)
    /// C (M,N) (+)= alpha · Aᵀ · B, A stored (K,M), B stored (K,N)
    func gemmTN(M: Int, N: Int, K: Int, A: DevicePointer<Float>, B: DevicePointer<Float>,
                C: DeviceMutablePointer<Float>, alpha: Float, accumulate: Bool)

    // MARK: Elementwise

    /// out[i] = value for i in 0..<count
    func fill(_ out: DeviceMutablePointer<Float>, count: Int, value: Float)
    /// out[i] = inp[i]
    func copy(_ out: DeviceMutablePointer<Float>, from inp: DevicePointer<Float>, count: Int)
    /// out[i] += inp[i]
    func add(_ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>, count: Int)

    /// out[i] = Float(inp[i]) for inp's bytes stored as `dtype` (F32, BF16, F16 or F64), rounding as PyTorch.
    func convertToFloat(_ out: DeviceMutablePointer<Float>, from inp: DevicePointer<UInt8>, dtype: DType, count: Int)
    /// out's bytes = inp[i] stored as `dtype` (F32, BF16, F16 or F64), rounding as PyTorch.
    func convertFromFloat(_ out: DeviceMutablePointer<UInt8>, dtype: DType, from inp: DevicePointer<Float>, count: Int)
}

extension Backend {
    /// `count` zero-filled elements of the backend's memory.
    public func allocate<T>(_ type: T.Type, count: Int) -> DeviceBuffer<T> { allocate(type, count: count, zeroed: true) }

    /// A backend buffer holding `values`.
    public func upload<T>(_ values: [T]) -> DeviceBuffer<T> {
        let buffer = allocate(T.self, count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { if let base = $0.baseAddress { copyToDevice(buffer.pointer, from: base, count: values.count) } }
        return buffer
    }

    /// p[0..<count] as a host array (a copy).
    public func download<T>(_ p: DevicePointer<T>, count: Int) -> [T] {
        guard count > 0 else { return [] }
        return [T](unsafeUninitializedCapacity: count) { out, n in
            copyToHost(out.baseAddress!, from: p, count: count)
            n = count
        }
    }
}
