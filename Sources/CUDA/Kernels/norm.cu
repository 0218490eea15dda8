// Token embedding and RMSNorm, forward and backward.
// CPU counterparts: Sources/Qwen2/Kernels/Norm.swift, Backward/NormBackward.swift,
// Backward/EmbeddingBackward.swift.

// out (N,C) = table[ids[n]], the (V,C) table stored as dtype, widened to fp32.
// Grid: N blocks (one row each). Ids are checked on the host (0 <= id < V).
extern "C" __global__ void embedding_forward(float *out, const int *ids, const void *table, int dtype,
                                             int N, int C) {
    int n = blockIdx.x;
    if (n >= N) return;
    i64 row = (i64)ids[n] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[(i64)n * C + c] = load_as_f32(table, dtype, row + c);
}

// dtable (V,C) += Σ over tokens n with ids[n] = v of dout[n]; dout (N,C).
// One thread per column walking the tokens in order (no atomics): the same bits every run and the
// same order of additions as the CPU.
extern "C" __global__ void embedding_backward(float *dtable, const float *dout, const int *ids, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    for (int n = 0; n < N; n++) {
        float *cell = dtable + (i64)ids[n] * C + c;
        *cell = __fadd_rn(*cell, dout[(i64)n * C + c]);
    }
}

// out (N,C) = inp · rsqrt(mean(inp²) + eps) · weight in fp32 (transformers' Qwen2RMSNorm);
// rstd (N), when not null, keeps each row's 1/√(mean + eps) for backward. Grid: N blocks.
extern "C" __global__ void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                                           int N, int C, float eps) {
    int n = blockIdx.x;
    if (n >= N) return;
    const float *x = inp + (i64)n * C;
    float *y = out + (i64)n * C;
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s = fmaf(x[c], x[c], s);
    s = block_sum(s);
    float r = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(s, (float)C), eps)));
    if (rstd != 0 && threadIdx.x == 0) rstd[n] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = __fmul_rn(weight[c], __fmul_rn(x[c], r));
}

// dinp (N,C) += r·(w⊙dy) − x · r³/C · Σ_c (w⊙dy⊙x)   (accumulates: the residual stream's gradient)
// inp (N,C), weight (C), rstd (N) from the forward, dout (N,C). Grid: N blocks.
extern "C" __global__ void rmsnorm_backward(float *dinp, const float *dout, const float *inp, const float *weight,
                                            const float *rstd, int N, int C) {
    int n = blockIdx.x;
    if (n >= N) return;
    const float *x = inp + (i64)n * C, *dy = dout + (i64)n * C;
    float *dx = dinp + (i64)n * C;
    float r = rstd[n];
    float dot = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += weight[c] * dy[c] * x[c];
    dot = block_sum(dot);
    float k = dot * r * r * r / (float)C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += r * weight[c] * dy[c] - k * x[c];
}

// dweight (C) += Σ_n dy ⊙ x·r. One thread per column, rows in order (deterministic).
extern "C" __global__ void rmsnorm_backward_weight(float *dweight, const float *dout, const float *inp,
                                                   const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = dweight[c];
    for (int n = 0; n < N; n++) s += dout[(i64)n * C + c] * inp[(i64)n * C + c] * rstd[n];
    dweight[c] = s;
}
