import CBLAS

/// Row-major single-precision matrix products over cblas_sgemm. Names follow the operand
/// layouts: `NT` means C = A · Bᵀ with B stored (N, K) — the shape of a PyTorch Linear weight.
/// With `accumulate`, C += …; otherwise C is overwritten.
///
/// OpenBLAS itself runs single-threaded (see `Threading`): each product is cut into contiguous
/// blocks of C's rows or columns, one per thread of `parallelChunks`, each a single-threaded
/// cblas_sgemm. Every element of C is still one dot product over all of K, but OpenBLAS's edge
/// tiles sum in another order than its full ones, so where the cut falls can move an element by
/// an ulp or so: the bits depend on the thread count (as with OpenBLAS's own threads), never on
/// timing. Why not OpenBLAS's threads: between
/// calls its workers spin on sched_yield for milliseconds, taking the cores from our own kernels
/// (SwiGLU, attention, loss) — ≈ 10 % of a training step on two cores — and every small product
/// (LoRA's rank-8 shapes, attention blocks) paid a hand-off to them.
public enum GEMM {
    /// C (M,N) = A (M,K) · B (K,N)
    @inlinable
    public static func nn(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        general(transA: false, transB: false, M, N, K, alpha: alpha, A, lda: K, B, ldb: N,
                beta: accumulate ? 1 : 0, C, ldc: N)
    }

    /// C (M,N) = A (M,K) · Bᵀ, B stored (N,K)
    @inlinable
    public static func nt(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        general(transA: false, transB: true, M, N, K, alpha: alpha, A, lda: K, B, ldb: K,
                beta: accumulate ? 1 : 0, C, ldc: N)
    }

    /// C (M,N) = Aᵀ · B, A stored (K,M), B stored (K,N) — the weight-gradient product.
    @inlinable
    public static func tn(_ M: Int, _ N: Int, _ K: Int,
                          _ A: UnsafePointer<Float>, _ B: UnsafePointer<Float>,
                          _ C: UnsafeMutablePointer<Float>,
                          alpha: Float = 1, accumulate: Bool = false) {
        general(transA: true, transB: false, M, N, K, alpha: alpha, A, lda: M, B, ldb: N,
                beta: accumulate ? 1 : 0, C, ldc: N)
    }

    /// Products below this many multiply-adds run on the calling thread alone. A hand-off to the
    /// other threads costs a few µs, about what 2^18 multiply-adds take; LoRA's rank-8 products
    /// (0.5–10 M) are above it. (On the 0.5B LoRA bench 2^18 and 2^20 are within noise of each
    /// other; 2^24, which keeps most LoRA products on one thread, is 0.05 s per step slower.)
    public static let splitThreshold = 1 << 18

    /// C (M,N) = alpha · op(A) · op(B) + beta · C, row-major with leading dimensions, as
    /// cblas_sgemm: op(A) is (M,K) — A stored (M,K) or, with transA, (K,M) — and op(B) is (K,N) —
    /// B stored (K,N) or, with transB, (N,K). Split over `Threading.count` threads along C's
    /// longer side. `threads: 1` keeps it on the calling thread (inside a parallel loop).
    public static func general(transA: Bool, transB: Bool, _ M: Int, _ N: Int, _ K: Int,
                               alpha: Float = 1, _ A: UnsafePointer<Float>, lda: Int,
                               _ B: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                               _ C: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil) {
        guard M > 0, N > 0 else { return }
        _ = Threading.count  // keeps OpenBLAS single-threaded from the first use on
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        func call(_ m0: Int, _ m: Int, _ n0: Int, _ n: Int) {
            let a = transA ? A + m0 : A + m0 * lda
            let b = transB ? B + n0 * ldb : B + n0
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(K), alpha, a, Int32(lda),
                        b, Int32(ldb), beta, C + m0 * ldc + n0, Int32(ldc))
        }
        let work = M * N * max(K, 1)
        let t = min(threads ?? Threading.count, max(1, work / splitThreshold))
        if t <= 1 {
            call(0, M, 0, N)
            return
        }
        // Blocks are multiples of 16 rows/columns (the kernel's register tile) where possible.
        if N >= M {
            parallelChunks((N + 15) / 16, minChunk: max(1, (N + 15) / 16 / t)) { r in
                let n0 = r.lowerBound * 16, n1 = min(N, r.upperBound * 16)
                if n0 < n1 { call(0, M, n0, n1 - n0) }
            }
        } else {
            parallelChunks((M + 15) / 16, minChunk: max(1, (M + 15) / 16 / t)) { r in
                let m0 = r.lowerBound * 16, m1 = min(M, r.upperBound * 16)
                if m0 < m1 { call(m0, m1 - m0, 0, N) }
            }
        }
    }
}
