// A packed single-precision GEMM for the products that dominate a training step (issue 17):
// C = alpha * A * op(B) + beta * C, row-major, A (M, K) the activations in f32, B the weight in
// f32, bf16 or f16, stored (N, K) ("NT", x * W^T) or (K, N) ("NN", dy * W).
//
// Layout (BLIS's): A is packed once per product into row panels of MR = 6 rows, k-major
// (Ap[k*6 + r]); B is packed one column panel of NR = 16 at a time (Bp[k*16 + j]), widened from
// its stored dtype as it is packed, so a bf16 weight is never written out whole in f32. The
// micro-kernel keeps a 6x16 block of C in 12 ymm accumulators: per k, two loads of B, six
// broadcasts of A, twelve FMAs. K is cut into blocks of at most KC_MAX (a KC x 16 panel of B,
// 20 KB, stays in L1 while every A panel of the block streams past it from L2), M into blocks of
// at most MC_PANELS panels (the packed A block, <= 368 KB, stays in L2). While one B panel is
// multiplied, the source rows of the next one are prefetched a few lines per micro-kernel call:
// the weights come from DRAM once per product, and hiding that latency behind the FMAs is what
// a separate packing pass (OpenBLAS's) cannot do.
//
// Determinism: every element of C is the sum over its K blocks in order, each block summed by
// one FMA chain in k order, whatever the panel or the thread range: the bits depend on the shape
// only, not on n0/n1 (the thread split) nor on timing.
#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define QK_HAVE_KERNEL 1
#include <immintrin.h>
#else
#define QK_HAVE_KERNEL 0
#endif

#ifndef QK_KC
#define QK_KC 320
#endif
/// The packed A of one call covers at most this many floats (8 MB): a longer K (the lm_head's
/// input gradient, K = vocabulary) is multiplied in spans of whole K blocks, same sums, same bits.
#define QK_A_SPAN_FLOATS (1L << 21)
enum { MR = 6, NR = 16, KC_MAX = QK_KC, MC_PANELS = 48, NC_MAX = 1024 };

int qk_available(void) { return QK_HAVE_KERNEL; }

long qk_a_panels(long M) { return (M + MR - 1) / MR; }

size_t qk_packed_a_floats(long M, long K) { return (size_t)qk_a_panels(M) * MR * (size_t)(K > 0 ? K : 1); }

/// K cut into equal blocks of at most KC_MAX (the last one shorter): the block width.
static long kc_width(long K) {
    long blocks = (K + KC_MAX - 1) / KC_MAX;
    if (blocks < 1) blocks = 1;
    return (K + blocks - 1) / blocks;
}

static void *aligned_grow(void **buf, size_t *cap, size_t bytes) {
    if (*cap >= bytes && *buf) return *buf;
    free(*buf);
    *buf = NULL;
    *cap = 0;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) return NULL;
    *buf = p;
    *cap = rounded;
    return p;
}

static _Thread_local void *tls_a;
static _Thread_local size_t tls_a_cap;
static _Thread_local void *tls_b;
static _Thread_local size_t tls_b_cap;

float *qk_thread_scratch_a(size_t floats) {
    return (float *)aligned_grow(&tls_a, &tls_a_cap, floats * sizeof(float));
}

long qk_k_block(long K) { return kc_width(K); }

void qk_pack_a(long M, long K, const float *A, long lda, long k0, long k1,
               long panel0, long panel1, float *Ap) {
    long Mp = qk_a_panels(M) * MR, kc = kc_width(K);
    if (k1 > K) k1 = K;
    for (long pc = k0; pc < k1; pc += kc) {
        long kw = K - pc < kc ? K - pc : kc;
        float *block = Ap + (pc - k0) * Mp;
        for (long p = panel0; p < panel1; p++) {
            float *ap = block + p * MR * kw;
            long i0 = p * MR, mr = M - i0 < MR ? M - i0 : MR;
            for (long r = 0; r < MR; r++) {
                if (r < mr) {
                    const float *a = A + (i0 + r) * lda + pc;
                    for (long k = 0; k < kw; k++) ap[k * MR + r] = a[k];
                } else {
                    for (long k = 0; k < kw; k++) ap[k * MR + r] = 0;
                }
            }
        }
    }
}

#if QK_HAVE_KERNEL

static inline float load1(const void *B, int dtype, long i) {
    switch (dtype) {
    case QK_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)B)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case QK_F16: return _cvtsh_ss(((const uint16_t *)B)[i]);
    default: return ((const float *)B)[i];
    }
}

static inline __m256 load8(const void *B, int dtype, long i) {
    switch (dtype) {
    case QK_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)B + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case QK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)B + i)));
    default: return _mm256_loadu_ps((const float *)B + i);
    }
}

static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// Bp (kw x 16) from op(B)[pc..<pc+kw, j0..<j0+nr], zero past nr.
static void pack_b(const void *B, int dtype, int transB, long ldb, long pc, long kw,
                   long j0, long nr, float *restrict bp) {
    if (transB) {
        // B stored (N, K): 16 rows of kw contiguous elements, transposed 8x8 at a time.
        long k = 0;
        if (nr == NR) {
            for (; k + 8 <= kw; k += 8) {
                for (int h = 0; h < 2; h++) {
                    __m256 r[8];
                    for (int j = 0; j < 8; j++) r[j] = load8(B, dtype, (j0 + h * 8 + j) * ldb + pc + k);
                    transpose8(r);
                    for (int t = 0; t < 8; t++) _mm256_store_ps(bp + (k + t) * NR + h * 8, r[t]);
                }
            }
        }
        for (; k < kw; k++)
            for (long j = 0; j < NR; j++)
                bp[k * NR + j] = j < nr ? load1(B, dtype, (j0 + j) * ldb + pc + k) : 0.0f;
    } else {
        // B stored (K, N): kw rows of 16 contiguous elements.
        if (nr == NR) {
            for (long k = 0; k < kw; k++) {
                long i = (pc + k) * ldb + j0;
                _mm256_store_ps(bp + k * NR, load8(B, dtype, i));
                _mm256_store_ps(bp + k * NR + 8, load8(B, dtype, i + 8));
            }
        } else {
            for (long k = 0; k < kw; k++)
                for (long j = 0; j < NR; j++)
                    bp[k * NR + j] = j < nr ? load1(B, dtype, (pc + k) * ldb + j0 + j) : 0.0f;
        }
    }
}

/// C (mr x nr block, ldc) = alpha * Ap(6 x kw) * Bp(kw x 16) (+ C when beta1).
static void micro_kernel(long kw, const float *restrict a, const float *restrict b, float *restrict c,
                         long ldc, float alpha, int beta1, long mr, long nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define QK_STEP(o)                                                                  \
    do {                                                                            \
        __m256 b0 = _mm256_load_ps(b + (o) * NR), b1 = _mm256_load_ps(b + (o) * NR + 8); \
        __m256 av;                                                                  \
        av = _mm256_broadcast_ss(a + (o) * MR + 0);                                 \
        c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);     \
        av = _mm256_broadcast_ss(a + (o) * MR + 1);                                 \
        c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);     \
        av = _mm256_broadcast_ss(a + (o) * MR + 2);                                 \
        c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);     \
        av = _mm256_broadcast_ss(a + (o) * MR + 3);                                 \
        c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);     \
        av = _mm256_broadcast_ss(a + (o) * MR + 4);                                 \
        c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);     \
        av = _mm256_broadcast_ss(a + (o) * MR + 5);                                 \
        c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);     \
    } while (0)
    long k = 0;
    for (; k + 4 <= kw; k += 4) {
        QK_STEP(0); QK_STEP(1); QK_STEP(2); QK_STEP(3);
        a += 4 * MR;
        b += 4 * NR;
    }
    for (; k < kw; k++) {
        QK_STEP(0);
        a += MR;
        b += NR;
    }
#undef QK_STEP
    __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    __m256 al = _mm256_set1_ps(alpha);
    if (mr == MR && nr == NR) {
        for (int r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 v0 = acc[2 * r], v1 = acc[2 * r + 1];
            if (beta1) {
                _mm256_storeu_ps(cr, _mm256_fmadd_ps(al, v0, _mm256_loadu_ps(cr)));
                _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(al, v1, _mm256_loadu_ps(cr + 8)));
            } else {
                _mm256_storeu_ps(cr, _mm256_mul_ps(al, v0));
                _mm256_storeu_ps(cr + 8, _mm256_mul_ps(al, v1));
            }
        }
        return;
    }
    // Edge block: the same arithmetic per element (fma(alpha, acc, c) / alpha * acc) on the valid part.
    _Alignas(32) float t[MR * NR];
    for (int r = 0; r < MR; r++) {
        _mm256_store_ps(t + r * NR, acc[2 * r]);
        _mm256_store_ps(t + r * NR + 8, acc[2 * r + 1]);
    }
    for (long r = 0; r < mr; r++)
        for (long j = 0; j < nr; j++) {
            float *cp = c + r * ldc + j;
            *cp = beta1 ? __builtin_fmaf(alpha, t[r * NR + j], *cp) : alpha * t[r * NR + j];
        }
}

/// Where the source of a B panel lies: `rows` runs of `bytes` bytes, `stride` bytes apart.
typedef struct {
    const char *base;
    long rows, stride, lines_per_row;
} Source;

static Source panel_source(const void *B, int dtype, int transB, long ldb, long pc, long kw, long j0, long nr) {
    long es = dtype == QK_F32 ? 4 : 2;
    Source s;
    if (transB) {
        s.base = (const char *)B + (j0 * ldb + pc) * es;
        s.rows = nr;
        s.lines_per_row = (kw * es + 63) / 64 + 1;
    } else {
        s.base = (const char *)B + (pc * ldb + j0) * es;
        s.rows = kw;
        s.lines_per_row = (nr * es + 63) / 64 + 1;
    }
    s.stride = ldb * es;
    return s;
}

static inline void prefetch_lines(const Source *s, long from, long to) {
    long total = s->rows * s->lines_per_row;
    if (to > total) to = total;
    for (long l = from; l < to; l++) {
        long r = l / s->lines_per_row, o = l % s->lines_per_row;
        _mm_prefetch(s->base + r * s->stride + o * 64, _MM_HINT_T0);
    }
}

int qk_gemm_packed(long M, long N, long K, long k0, long k1, float alpha, const float *Ap,
                   const void *B, int dtype, int transB, long ldb,
                   float beta, float *C, long ldc, long n0, long n1) {
    if (M <= 0 || n1 <= n0) return 0;
    if (n1 > N) n1 = N;
    if (k1 > K) k1 = K;
    if (K <= 0) {
        for (long i = 0; i < M; i++)
            for (long j = n0; j < n1; j++) C[i * ldc + j] = beta != 0 ? C[i * ldc + j] : 0.0f;
        return 0;
    }
    long panels = qk_a_panels(M), Mp = panels * MR, kc = kc_width(K);
    long icBlocks = (panels + MC_PANELS - 1) / MC_PANELS;
    long perIc = (panels + icBlocks - 1) / icBlocks;
    long ncMax = icBlocks > 1 ? NC_MAX : NR;  // one M block: one panel buffer, reused
    float *bbuf = (float *)aligned_grow(&tls_b, &tls_b_cap, (size_t)kc * ncMax * sizeof(float));
    if (!bbuf) return -1;
    for (long jc = n0; jc < n1; jc += NC_MAX) {
        long nc = n1 - jc < NC_MAX ? n1 - jc : NC_MAX;
        long npan = (nc + NR - 1) / NR;
        for (long pc = k0; pc < k1; pc += kc) {
            long kw = K - pc < kc ? K - pc : kc;
            int beta1 = pc > 0 || beta != 0;
            const float *ablock = Ap + (pc - k0) * Mp;
            for (long ib = 0; ib < icBlocks; ib++) {
                long p0 = ib * perIc, p1 = p0 + perIc < panels ? p0 + perIc : panels;
                for (long jr = 0; jr < npan; jr++) {
                    long j0 = jc + jr * NR, nr = n1 - j0 < NR ? n1 - j0 : NR;
                    float *bp = icBlocks > 1 ? bbuf + jr * kw * NR : bbuf;
                    Source next = {0};
                    long per = 0;
                    if (ib == 0) {
                        pack_b(B, dtype, transB, ldb, pc, kw, j0, nr, bp);
                        if (jr + 1 < npan) {
                            long j1 = j0 + NR;
                            next = panel_source(B, dtype, transB, ldb, pc, kw, j1, n1 - j1 < NR ? n1 - j1 : NR);
                            long total = next.rows * next.lines_per_row, calls = p1 - p0;
                            per = (total + calls - 1) / calls;
                        }
                    }
                    for (long p = p0; p < p1; p++) {
                        if (per) prefetch_lines(&next, (p - p0) * per, (p - p0 + 1) * per);
                        long i0 = p * MR, mr = M - i0 < MR ? M - i0 : MR;
                        micro_kernel(kw, ablock + p * MR * kw, bp, C + i0 * ldc + j0, ldc, alpha, beta1, mr, nr);
                    }
                }
            }
        }
    }
    return 0;
}

#else  // no AVX2/FMA kernel on this architecture: callers check qk_available() and keep BLAS.

int qk_gemm_packed(long M, long N, long K, long k0, long k1, float alpha, const float *Ap,
                   const void *B, int dtype, int transB, long ldb,
                   float beta, float *C, long ldc, long n0, long n1) {
    (void)M; (void)N; (void)K; (void)k0; (void)k1; (void)alpha; (void)Ap; (void)B; (void)dtype; (void)transB;
    (void)ldb; (void)beta; (void)C; (void)ldc; (void)n0; (void)n1;
    return -1;
}

#endif

long qk_k_span(long M, long K) {
    long kc = kc_width(K), per = QK_A_SPAN_FLOATS / (qk_a_panels(M) * MR * kc);
    if (per < 1) per = 1;
    return per * kc;
}

int qk_gemm(long M, long N, long K, float alpha, const float *A, long lda,
            const void *B, int bdtype, int transB, long ldb, float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) return qk_gemm_packed(M, N, K, 0, 0, alpha, NULL, B, bdtype, transB, ldb, beta, C, ldc, 0, N);
    long span = qk_k_span(M, K);
    float *ap = qk_thread_scratch_a(qk_packed_a_floats(M, span));
    if (!ap) return -1;
    for (long k0 = 0; k0 < K; k0 += span) {
        long k1 = k0 + span < K ? k0 + span : K;
        qk_pack_a(M, K, A, lda, k0, k1, 0, qk_a_panels(M), ap);
        int rc = qk_gemm_packed(M, N, K, k0, k1, alpha, ap, B, bdtype, transB, ldb, beta, C, ldc, 0, N);
        if (rc) return rc;
    }
    return 0;
}
