// Fill, copy, add, scale, dtype conversion, bias add/backward, the non-finite check.
// CPU counterparts: CPUBackend (Sources/QwenCore/Backend.swift), HalfConversion.swift,
// Kernels/Linear.swift (bias), GradientClipping.scale (Training/AdamW.swift).

// out[i] = value
extern "C" __global__ void fill_f32(float *out, i64 n, float value) {
    FOR_EACH(i, n) out[i] = value;
}

// out[i] = inp[i]
extern "C" __global__ void copy_f32(float *out, const float *inp, i64 n) {
    FOR_EACH(i, n) out[i] = inp[i];
}

// out[i] += inp[i]  (the residual connection, gradient accumulation)
extern "C" __global__ void add_f32(float *out, const float *inp, i64 n) {
    FOR_EACH(i, n) out[i] = __fadd_rn(out[i], inp[i]);
}

// out[i] *= factor  (gradient clipping, loss-scale unscaling)
extern "C" __global__ void scale_f32(float *out, i64 n, float factor) {
    FOR_EACH(i, n) out[i] = __fmul_rn(out[i], factor);
}

// out[i] = float(inp[i]) for inp stored as dtype (F32, BF16, F16)
extern "C" __global__ void convert_to_f32(float *out, const void *inp, int dtype, i64 n) {
    FOR_EACH(i, n) out[i] = load_as_f32(inp, dtype, i);
}

// out[i] = inp[i] stored as dtype (F32, BF16, F16), rounding as PyTorch
extern "C" __global__ void convert_from_f32(void *out, int dtype, const float *inp, i64 n) {
    FOR_EACH(i, n) store_from_f32(out, dtype, i, inp[i]);
}

// out (N,C) += bias (C)
extern "C" __global__ void add_bias_f32(float *out, const float *bias, i64 N, int C) {
    FOR_EACH(i, N * C) out[i] = __fadd_rn(out[i], bias[i % C]);
}

// dbias (C) += Σ_n dout (N,C). One thread per column, rows summed in order: deterministic.
extern "C" __global__ void bias_backward_f32(float *dbias, const float *dout, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = dbias[c];
    for (int n = 0; n < N; n++) s = __fadd_rn(s, dout[(i64)n * C + c]);
    dbias[c] = s;
}

// *flag = 1 if any x[i] is Inf or NaN (fp16 loss scaling: an overflow skips the step).
// *flag must be 0 before the launch; only ever set, so concurrent writers agree.
extern "C" __global__ void find_nonfinite_f32(int *flag, const float *x, i64 n) {
    int found = 0;
    FOR_EACH(i, n) {
        if ((__float_as_uint(x[i]) & 0x7F800000u) == 0x7F800000u) found = 1;
    }
    if (__any_sync(0xFFFFFFFFu, found) && (threadIdx.x & 31) == 0) atomicOr(flag, 1);
}
