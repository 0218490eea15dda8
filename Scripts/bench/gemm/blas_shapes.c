// Single-threaded cblas_sgemm on the per-thread pieces of a LoRA training step's products, for
// comparing BLAS libraries (OpenBLAS under each OPENBLAS_CORETYPE, BLIS) on the exact shapes.
// Built and run by blas_shapes.sh; linked against one library at a time.
//
// Every product is cut as qwenft's GEMM.general cuts it for THREADS threads (along C's longer
// side, in multiples of 16; products under 2^18 multiply-adds stay whole) and thread 0's piece is
// timed with the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), best of REPEATS after one warm-up
// call, so other processes on a shared machine cost wall-clock time but not the figure.
// Output: one line per shape, `name count flops seconds`, where count is how often a step of the
// model runs the product (its weight in the step's total) and flops/seconds are the piece's.
//
// Usage: blas_shapes MODEL [REPEATS]   MODEL: 0.5b or 7b
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// The standard CBLAS enum values; both libraries use them, so no header is needed.
enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);

static double thread_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *filled(size_t n) {
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    if (!p) { fprintf(stderr, "blas_shapes: out of memory (%zu floats)\n", n); exit(1); }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

static int repeats = 5, threads = 2;

// op: "nt" C(M,N) = A(M,K)·Bᵀ, B (N,K); "nn" C = A(M,K)·B(K,N); "tn" C = Aᵀ·B, A (K,M), B (K,N).
static void run(const char *name, long count, const char *op, int M, int N, int K, int accumulate) {
    // GEMM.general's split: thread 0's block of the longer side, in multiples of 16.
    long work = (long)M * N * (K > 0 ? K : 1);
    int t = threads;
    if (work / (1 << 18) < t) t = (int)(work / (1 << 18) > 1 ? work / (1 << 18) : 1);
    int m = M, n = N;
    if (t > 1) {
        int blocks = ((N >= M ? N : M) + 15) / 16, per = (blocks + t - 1) / t;
        if (N >= M) n = per * 16 < N ? per * 16 : N; else m = per * 16 < M ? per * 16 : M;
    }
    int ta = op[0] == 't' ? Trans : NoTrans, tb = op[1] == 't' ? Trans : NoTrans;
    // Leading dimensions are those of the whole product (the piece is a view into it).
    int lda = ta == Trans ? M : K, ldb = tb == Trans ? K : N, ldc = N;
    size_t asz = (size_t)(ta == Trans ? K : m) * lda, bsz = (size_t)(tb == Trans ? n : K) * ldb;
    float *a = filled(asz), *b = filled(bsz), *c = filled((size_t)m * ldc);
    float beta = accumulate ? 1.0f : 0.0f;
    double best = 1e30;
    for (int r = 0; r <= repeats; r++) {
        double t0 = thread_seconds();
        cblas_sgemm(RowMajor, ta, tb, m, n, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
        double dt = thread_seconds() - t0;
        if (r > 0 && dt < best) best = dt;  // r = 0 warms the caches and the library
    }
    printf("%s %ld %.6g %.6g\n", name, count, 2.0 * m * n * K, best);
    fflush(stdout);
    free(a); free(b); free(c);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: blas_shapes 0.5b|7b [repeats]\n"); return 1; }
    if (argc > 2) repeats = atoi(argv[2]);
    if (getenv("THREADS")) threads = atoi(getenv("THREADS"));
    // Which kernels the library picked (looked up at run time: each library has only its own).
    const char *(*corename)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    int (*archid)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "bli_arch_query_id");
    const char *(*archstr)(int) = (const char *(*)(int))dlsym(RTLD_DEFAULT, "bli_arch_string");
    if (corename) printf("# library openblas, core %s\n", corename());
    else if (archid && archstr) printf("# library blis, arch %s\n", archstr(archid()));
    else printf("# library unknown\n");

    int C, KV, I, V = 151936, layers, T = 256, r = 8;
    if (strcmp(argv[1], "0.5b") == 0) { C = 896; KV = 128; I = 4864; layers = 24; }
    else if (strcmp(argv[1], "7b") == 0) { C = 3584; KV = 512; I = 18944; layers = 4; V = 152064; }
    else { fprintf(stderr, "blas_shapes: model %s is not 0.5b or 7b\n", argv[1]); return 1; }
    // The head is timed on a 16384-row slice of the vocabulary (the whole one is 0.5–2 GB); a
    // step runs it V/16384 times over.
    int Vs = 16384;
    long vcount = (V + Vs - 1) / Vs;
    char name[64];
    // Base products of a LoRA step (frozen weights: forward x·Wᵀ, input gradient dy·W), per
    // projection shape (out, in) and how many projections of the layer have it.
    struct { const char *p; int out, in, per; } proj[] = {
        {"q/o", C, C, 2}, {"k/v", KV, C, 2}, {"gate/up", I, C, 2}, {"down", C, I, 1},
    };
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "NT:%s:%dx%d", proj[i].p, proj[i].out, proj[i].in);
        run(name, (long)proj[i].per * layers, "nt", T, proj[i].out, proj[i].in, 0);
        snprintf(name, sizeof name, "NN:%s:%dx%d", proj[i].p, proj[i].out, proj[i].in);
        run(name, (long)proj[i].per * layers, "nn", T, proj[i].in, proj[i].out, 0);
    }
    snprintf(name, sizeof name, "NT:lm_head:%dx%d", Vs, C);
    run(name, vcount, "nt", T, Vs, C, 0);
    snprintf(name, sizeof name, "NN:lm_head:%dx%d", Vs, C);
    run(name, vcount, "nn", T, C, Vs, 0);
    // LoRA's rank-r products (loraForward / loraBackward), per projection shape.
    for (int i = 0; i < 4; i++) {
        int in = proj[i].in, out = proj[i].out;
        long n = (long)proj[i].per * layers;
        snprintf(name, sizeof name, "lora:%s:xA", proj[i].p);     run(name, n, "nt", T, r, in, 0);
        snprintf(name, sizeof name, "lora:%s:xaB", proj[i].p);    run(name, n, "nt", T, out, r, 1);
        snprintf(name, sizeof name, "lora:%s:dB", proj[i].p);     run(name, n, "tn", out, r, T, 1);
        snprintf(name, sizeof name, "lora:%s:dxa", proj[i].p);    run(name, n, "nn", T, r, out, 0);
        snprintf(name, sizeof name, "lora:%s:dA", proj[i].p);     run(name, n, "tn", r, in, T, 1);
        snprintf(name, sizeof name, "lora:%s:dinp", proj[i].p);   run(name, n, "nn", T, in, r, 1);
    }
    return 0;
}
