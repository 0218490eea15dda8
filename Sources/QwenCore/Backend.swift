/// The operations the model and trainer run, written once against this protocol: a CPU
/// implementation (BLAS plus threaded Swift loops) now, a CUDA one through the shim later.
/// Pointers are device pointers of the backend; for the CPU they are ordinary host memory.
/// Shapes follow llm.c: `// inp (B,T,C), weight (OC,C)`; matrices are row-major.
///
/// This is the base of one protocol family, refined where the types it needs live:
/// `ModelBackend` (Qwen2: embedding, RMSNorm, linear over stored/NF4 weights, LoRA, RoPE,
/// attention, SwiGLU, lm_head scoring) and `TrainingBackend` (Training: cross-entropy, AdamW,
/// gradient-norm clipping). `CPUBackend` conforms to all three, each level's kernels in its
/// module's `CPU/` folder; `Backends.make(_ device:)` is where a `Device` becomes a backend.
public protocol Backend: Sendable {
    /// A short name for logs: "cpu", "cuda:0".
    var name: String { get }

    /// C (M,N) (+)= alpha · A (M,K) · B (K,N)
    func gemmNN(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                C: UnsafeMutablePointer<Float>, alpha: Float, accumulate: Bool)
    /// C (M,N) (+)= alpha · A (M,K) · Bᵀ, B stored (N,K)
    func gemmNT(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                C: UnsafeMutablePointer<Float>, alpha: Float, accumulate: Bool)
    /// C (M,N) (+)= alpha · Aᵀ · B, A stored (K,M), B stored (K,N)
    func gemmTN(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                C: UnsafeMutablePointer<Float>, alpha: Float, accumulate: Bool)

    /// out[i] = value for i in 0..<count
    func fill(_ out: UnsafeMutablePointer<Float>, count: Int, value: Float)
    /// out[i] = inp[i]
    func copy(_ out: UnsafeMutablePointer<Float>, from inp: UnsafePointer<Float>, count: Int)
    /// out[i] += inp[i]
    func add(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int)

    /// out[i] = Float(inp[i]) for inp stored as `dtype` (F32, BF16, F16 or F64), rounding as PyTorch.
    func convertToFloat(_ out: UnsafeMutablePointer<Float>, from inp: UnsafeRawPointer, dtype: DType, count: Int)
    /// out[i] = inp[i] stored as `dtype` (F32, BF16, F16 or F64), rounding as PyTorch.
    func convertFromFloat(_ out: UnsafeMutableRawPointer, dtype: DType, from inp: UnsafePointer<Float>, count: Int)
}

/// The CPU backend: OpenBLAS for products, `parallelChunks` for elementwise loops.
public struct CPUBackend: Backend {
    public init() {}
    public var name: String { "cpu" }

    public func gemmNN(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                       C: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.nn(M, N, K, A, B, C, alpha: alpha, accumulate: accumulate)
    }
    public func gemmNT(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                       C: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.nt(M, N, K, A, B, C, alpha: alpha, accumulate: accumulate)
    }
    public func gemmTN(M: Int, N: Int, K: Int, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                       C: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
        GEMM.tn(M, N, K, A, B, C, alpha: alpha, accumulate: accumulate)
    }

    public func fill(_ out: UnsafeMutablePointer<Float>, count: Int, value: Float) {
        parallelChunks(count, minChunk: 1 << 16) { r in
            (out + r.lowerBound).update(repeating: value, count: r.count)
        }
    }
    public func copy(_ out: UnsafeMutablePointer<Float>, from inp: UnsafePointer<Float>, count: Int) {
        parallelChunks(count, minChunk: 1 << 16) { r in
            (out + r.lowerBound).update(from: inp + r.lowerBound, count: r.count)
        }
    }
    public func add(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        parallelChunks(count, minChunk: 1 << 16) { r in
            for i in r { out[i] += inp[i] }
        }
    }

    public func convertToFloat(_ out: UnsafeMutablePointer<Float>, from inp: UnsafeRawPointer, dtype: DType, count: Int) {
        QwenCore.convertToFloat(inp, dtype: dtype, out, count: count)
    }
    public func convertFromFloat(_ out: UnsafeMutableRawPointer, dtype: DType, from inp: UnsafePointer<Float>, count: Int) {
        QwenCore.convertFromFloat(inp, out, dtype: dtype, count: count)
    }
}
