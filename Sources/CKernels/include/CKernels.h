// CKernels: a packed single-precision GEMM of our own (BLIS-style: a 6x16 AVX2/FMA register
// micro-kernel over packed panels, cache-blocked), for the products that dominate a training
// step. See gemm.c for the layout and the blocking, QwenCore's GEMM.swift for where it is used.
#ifndef QWENFT_CKERNELS_H
#define QWENFT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The stored dtype of the B operand: it is widened to f32 while it is packed.
enum { QK_F32 = 0, QK_BF16 = 1, QK_F16 = 2 };

/// 1 when this build has the AVX2/FMA kernel (x86-64); 0 elsewhere (the caller keeps BLAS).
int qk_available(void);

/// Floats of the packed A operand of an (M, K) product (see qk_pack_a).
size_t qk_packed_a_floats(long M, long K);

/// A buffer of at least `floats` floats, 64-byte aligned, owned by the calling thread and reused
/// by its next call (for the packed A that the threads of one product share). NULL if out of memory.
float *qk_thread_scratch_a(size_t floats);

/// The width of the K blocks of an (., K) product (each summed by one FMA chain per element).
long qk_k_block(long K);

/// The span of K (a multiple of qk_k_block(K)) whose packed A fits the kernel's 8 MB cap: a
/// product is multiplied one span at a time (the same sums, so the same bits, as in one go).
long qk_k_span(long M, long K);

/// Panels of 6 rows in an M-row A.
long qk_a_panels(long M);

/// Packs row panels [panel0, panel1) (6 rows each) of the K blocks that start in [k0, k1) (k0 a
/// multiple of qk_k_block(K)) of A (M, K), row-major with leading dimension lda, into Ap
/// (qk_packed_a_floats(M, k1 - k0) floats). Threads may pack disjoint panel ranges.
void qk_pack_a(long M, long K, const float *A, long lda, long k0, long k1,
               long panel0, long panel1, float *Ap);

/// C[:, n0..<n1] = alpha * A[:, k0..<k1] * op(B)[k0..<k1, n0..<n1] + beta' * C[:, n0..<n1] over the
/// packed A of qk_pack_a(k0, k1), where beta' is beta for the first K block (k0 == 0) and 1 after.
/// op(B) is (K, N): with transB, B is stored (N, K) (ldb >= K), otherwise (K, N) (ldb >= N), in
/// `bdtype` (QK_F32/BF16/F16), widened while packed. beta must be 0 or 1.
/// Each element of C is summed in the same order whatever n0/n1 are (so whatever the thread split).
/// Returns 0, or -1 if the packing buffer could not be allocated (or there is no kernel).
int qk_gemm_packed(long M, long N, long K, long k0, long k1, float alpha, const float *Ap,
                   const void *B, int bdtype, int transB, long ldb,
                   float beta, float *C, long ldc, long n0, long n1);

/// The whole product on the calling thread: packs A into the thread's scratch, then qk_gemm_packed.
int qk_gemm(long M, long N, long K, float alpha, const float *A, long lda,
            const void *B, int bdtype, int transB, long ldb, float beta, float *C, long ldc);

#ifdef __cplusplus
}
#endif
#endif
