import CBLAS

/// Row-major single-precision matrix products over cblas_sgemm. Names follow the operand
/// layouts: `NT` means C = A · Bᵀ with B stored (N, K) — the shape of a PyTorch Linear weight.
/// With `accumulate`, C += …; otherwise C is overwritten.
public enum GEMM {
    /// C (M,N) = A (M,K) · B (K,N)
    @inlinable
    public static func nn(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        guard M > 0, N > 0 else { return }
        _ = Threading.count  // applies QWENFT_THREADS to OpenBLAS on first use
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(M), Int32(N), Int32(K),
                    alpha, A, Int32(K), B, Int32(N), accumulate ? 1 : 0, C, Int32(N))
    }

    /// C (M,N) = A (M,K) · Bᵀ, B stored (N,K)
    @inlinable
    public static func nt(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        guard M > 0, N > 0 else { return }
        _ = Threading.count  // applies QWENFT_THREADS to OpenBLAS on first use
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(M), Int32(N), Int32(K),
                    alpha, A, Int32(K), B, Int32(K), accumulate ? 1 : 0, C, Int32(N))
    }

    /// C (M,N) = Aᵀ · B, A stored (K,M), B stored (K,N) — the weight-gradient product.
    @inlinable
    public static func tn(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        guard M > 0, N > 0 else { return }
        _ = Threading.count  // applies QWENFT_THREADS to OpenBLAS on first use
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(M), Int32(N), Int32(K),
                    alpha, A, Int32(M), B, Int32(N), accumulate ? 1 : 0, C, Int32(N))
    }
}
