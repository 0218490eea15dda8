import CBLAS
import CKernels
import Foundation

/// Row-major single-precision matrix products over cblas_sgemm and, for the large NN/NT products
/// of a step (`packedTakes`), our own packed kernel (Sources/CKernels/gemm.c). Names follow the
/// operand layouts: `NT` means C = A · Bᵀ with B stored (N, K) — the shape of a PyTorch Linear
/// weight. With `accumulate`, C += …; otherwise C is overwritten.
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
    ///
    /// Large NT products (`packedTakes`) run on our packed kernel, the rest on OpenBLAS.
    public static func general(transA: Bool, transB: Bool, _ M: Int, _ N: Int, _ K: Int,
                               alpha: Float = 1, _ A: UnsafePointer<Float>, lda: Int,
                               _ B: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                               _ C: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil) {
        if !transA, transB, packedTakes(M, N, K, beta: beta),
           packed(transB: transB, M, N, K, alpha: alpha, A, lda: lda, UnsafeRawPointer(B), dtype: .f32,
                  ldb: ldb, beta: beta, C, ldc: ldc, threads: threads) {
            return
        }
        blas(transA: transA, transB: transB, M, N, K, alpha: alpha, A, lda: lda, B, ldb: ldb, beta: beta,
             C, ldc: ldc, threads: threads)
    }

    /// C (M,N) = alpha · A · op(B) + beta · C with B in its stored dtype (f32, bf16 or f16), A
    /// (M,K) f32: a Linear layer's product with a half-precision weight, which the packed kernel
    /// widens while it packs (no f32 copy of the weight). Returns false, having done nothing,
    /// where the packed kernel does not take the product (small shapes, other dtypes, another
    /// architecture): the caller widens the weight itself and calls `general`.
    @discardableResult
    public static func mixed(transB: Bool, _ M: Int, _ N: Int, _ K: Int, alpha: Float = 1,
                             _ A: UnsafePointer<Float>, lda: Int, _ B: UnsafeRawPointer, dtype: DType,
                             ldb: Int, beta: Float = 0, _ C: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int? = nil) -> Bool {
        guard packedTakes(M, N, K, beta: beta) else { return false }
        return packed(transB: transB, M, N, K, alpha: alpha, A, lda: lda, B, dtype: dtype, ldb: ldb,
                      beta: beta, C, ldc: ldc, threads: threads)
    }

    /// Whether our packed kernel (Sources/CKernels/gemm.c) is built in: x86-64 with AVX2/FMA/F16C.
    public static let packedBuiltIn = qk_available() != 0

    /// Whether GEMM picks the packed kernel for the products it takes: built in, and not switched
    /// off with `QWENFT_GEMM=openblas` (for timing both with one binary, Scripts/bench/README.md).
    public static let packedAvailable: Bool = {
        packedBuiltIn && ProcessInfo.processInfo.environment["QWENFT_GEMM"] != "openblas"
    }()

    /// Which products run on our packed kernel rather than OpenBLAS's sgemm: those with beta 0 or
    /// 1, every side at least 128 (M at least 16) and 2^24 multiply-adds, that are NT (x·Wᵀ: a
    /// step's projections and lm_head forward) in any dtype, or NN (dy·W: their input gradients)
    /// with a bf16/f16 weight (`mixed`). Measured with `qwenft-bench gemm --kernels` on the 0.5B
    /// shapes at 256 tokens, GFLOP/s per CPU second of one thread, best of 5, on the shared
    /// machine (Scripts/bench/README.md):
    ///
    /// | product | sgemm f32 | ours f32 | widen + sgemm bf16 | ours bf16 |
    /// | --- | --- | --- | --- | --- |
    /// | NT 896→896 / 896→4864 / 4864→896 / lm_head | 82.9 / 84.7 / 84.6 / 86.5 | 88.8 / 89.3 / 82.3 / 90.8 | 84.6 / 78.8 / 80.3 / 81.1 | 90.4 / 89.7 / 86.9 / 91.7 |
    /// | NN same shapes | 88.8 / 87.8 / 89.1 / 88.7 | 74.6 / 83.8 / 90.6 / 85.2 | 85.7 / 81.5 / 80.5 / 82.7 | 90.1 / 85.4 / 91.5 / 85.8 |
    ///
    /// So f32 NN stays on sgemm (our NN panel is 16 floats of each of K rows, a strided read that
    /// OpenBLAS's row-wise block packing does better), while with a half-precision weight ours
    /// wins both ways: it reads the weight once, in half the bytes, where the tiles were widened
    /// to f32 and then packed again. Left to OpenBLAS as well: TN (the weight gradients, where A
    /// is the transposed operand), LoRA's rank-8 products (N or K = 8: half of sgemm's rate on a
    /// 6×16 register tile), attention's head-dimension (64) products, anything under 2^24.
    @inlinable
    public static func packedTakes(_ M: Int, _ N: Int, _ K: Int, beta: Float) -> Bool {
        packedAvailable && (beta == 0 || beta == 1) && M >= 16 && N >= 128 && K >= 128
            && M * N * K >= 1 << 24
    }

    /// The packed kernel on any NN/NT product (beta 0 or 1), split over the threads along N;
    /// false where it is not built in or beta is another value. The activations A are packed once
    /// into the calling thread's scratch (the threads share it), each thread packs and multiplies
    /// its own columns. The bits depend on the shape only: not on the thread count (every element
    /// is summed over the same K blocks in the same order whichever thread has its column).
    @discardableResult
    public static func packed(transB: Bool, _ M: Int, _ N: Int, _ K: Int, alpha: Float = 1,
                              _ A: UnsafePointer<Float>, lda: Int, _ B: UnsafeRawPointer, dtype: DType,
                              ldb: Int, beta: Float = 0, _ C: UnsafeMutablePointer<Float>, ldc: Int,
                              threads: Int? = nil) -> Bool {
        let code: Int32
        switch dtype {
        case .f32: code = Int32(QK_F32)
        case .bf16: code = Int32(QK_BF16)
        case .f16: code = Int32(QK_F16)
        default: return false
        }
        guard packedBuiltIn, beta == 0 || beta == 1 else { return false }
        guard M > 0, N > 0 else { return true }
        _ = Threading.count
        let work = M * N * max(K, 1)
        let t = min(threads ?? Threading.count, max(1, work / splitThreshold))
        let panels = qk_a_panels(M), span = K > 0 ? qk_k_span(M, K) : 0
        var k0 = 0
        repeat {
            let k1 = min(K, k0 + span)
            // Scratch of the calling thread, shared read-only by the workers below.
            guard let ap = qk_thread_scratch_a(qk_packed_a_floats(M, k1 - k0)) else {
                preconditionFailure("out of memory for GEMM's packed operand (\(M)x\(k1 - k0) floats)")
            }
            func compute(_ n0: Int, _ n1: Int) {
                let rc = qk_gemm_packed(M, N, K, k0, k1, alpha, ap, B, code, transB ? 1 : 0, ldb,
                                        beta, C, ldc, n0, n1)
                precondition(rc == 0, "out of memory for GEMM's packing buffer")
            }
            if t <= 1 {
                qk_pack_a(M, K, A, lda, k0, k1, 0, panels, ap)
                compute(0, N)
            } else {
                parallelChunks(panels, minChunk: max(1, panels / t)) { r in
                    qk_pack_a(M, K, A, lda, k0, k1, r.lowerBound, r.upperBound, ap)
                }
                let blocks = (N + 15) / 16
                parallelChunks(blocks, minChunk: max(1, blocks / t)) { r in
                    compute(r.lowerBound * 16, min(N, r.upperBound * 16))
                }
            }
            k0 = k1
        } while k0 < K
        return true
    }

    /// `general` on OpenBLAS's cblas_sgemm alone (single-threaded, one call per thread's block).
    public static func blas(transA: Bool, transB: Bool, _ M: Int, _ N: Int, _ K: Int,
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
