// AdamW and the global gradient norm. CPU counterparts: Sources/Training/AdamW.swift (adamwUpdate,
// GradientClipping.squaredNorm).

// params, grads, m, v (count); decay (count) 1 where weight decay applies, or null for "all".
// The element-wise body of torch's single-tensor AdamW, with the host's f32 scalars:
//   p *= 1 − lr·wd;  m = lerp(m, g, 1 − beta1)  (an fma);  v = fma((1 − beta2)·g, g, v·beta2)
//   p += (−step_size · m) / (sqrt(v) / sqrt(bc2) + eps)
// Explicit _rn intrinsics keep the compiler from fusing what the CPU rounds separately.
extern "C" __global__ void adamw_step(float *params, const float *grads, float *m, float *v, const u8 *decay,
                                      i64 count, float decayFactor, float lerpWeight, float beta2,
                                      float oneMinusBeta2, float biasCorrection2Sqrt, float eps,
                                      float negStepSize) {
    FOR_EACH(i, count) {
        float df = (decay == 0 || decay[i] != 0) ? decayFactor : 1.0f;
        float p = __fmul_rn(params[i], df);
        float g = grads[i], mi = m[i];
        float diff = __fsub_rn(g, mi);
        float mNew = fabsf(lerpWeight) < 0.5f ? fmaf(lerpWeight, diff, mi) : fmaf(lerpWeight - 1.0f, diff, g);
        float vNew = fmaf(__fmul_rn(oneMinusBeta2, g), g, __fmul_rn(v[i], beta2));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vNew), biasCorrection2Sqrt), eps);
        params[i] = __fadd_rn(p, __fdiv_rn(__fmul_rn(negStepSize, mNew), denom));
        m[i] = mNew;
        v[i] = vNew;
    }
}

#define NORM_BLOCK 4096

// partial[b] = Σ g² (in double) over grads[b·4096 ..< (b+1)·4096], n elements in all.
// Grid: ceil(n / 4096) blocks. A fixed reduction order: the same bits every run.
extern "C" __global__ void squared_norm_partials(double *partial, const float *grads, i64 n) {
    i64 lo = (i64)blockIdx.x * NORM_BLOCK;
    i64 hi = lo + NORM_BLOCK < n ? lo + NORM_BLOCK : n;
    double s = 0.0;
    for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double g = (double)grads[i];
        s += g * g;
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// out = Σ partial[0..<n] (one block, fixed order).
extern "C" __global__ void sum_f64(double *out, const double *partial, int n) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) *out = s;
}
