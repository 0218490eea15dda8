// Cross-entropy over one chunk of token rows, forward and backward in one pass, and the greedy
// argmax. CPU counterpart: Sources/Training/CrossEntropy.swift (crossEntropyForwardBackward).
//
// As F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum") · scale:
// log-softmax in fp32 (max, Σ exp(x − max) accumulated in double, log), loss = −logp[target];
// dlogits = scale · (softmax − onehot(target)), zero rows for ignored targets.
// logits (N,V), targets (N) already shifted, dlogits (N,V) may be the same memory as logits,
// losses (N) each row's unscaled loss (0 where ignored), rowScales (N) or null: replaces scale
// row by row (DPO). Targets are range-checked on the host. Grid: N blocks (one row each).
extern "C" __global__ void cross_entropy_forward_backward(float *dlogits, float *losses, const float *logits,
                                                          const int *targets, const float *rowScales,
                                                          int N, int V, float scale) {
    int row = blockIdx.x;
    if (row >= N) return;
    const float *x = logits + (i64)row * V;
    float *d = dlogits + (i64)row * V;
    int t = targets[row];
    if (t == IGNORE_INDEX) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) d[j] = 0.0f;
        if (threadIdx.x == 0) losses[row] = 0.0f;
        return;
    }
    float s = rowScales != 0 ? rowScales[row] : scale;
    float xt = x[t];                  // read before d (which may be x) is overwritten
    float mx = __int_as_float(0xFF800000);
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, x[j]);
    mx = block_max(mx);               // its __syncthreads also orders every read of xt before any write
    double sum = 0.0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float e = expf(x[j] - mx);
        d[j] = e;                     // each thread rewrites only the entries it read
        sum += (double)e;
    }
    sum = block_sum_d(sum);
    if (threadIdx.x == 0) losses[row] = -((xt - mx) - (float)log(sum));
    float k = (float)((double)s / sum);
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float v = __fmul_rn(d[j], k);
        d[j] = j == t ? v - s : v;
    }
}

// out (N) = Σ losses over rows, in double, in a fixed order (one block).
extern "C" __global__ void sum_f32_to_f64(double *out, const float *values, int n) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += (double)values[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) *out = s;
}

// ids (N) = the index of each row's largest logit, the first one on ties (greedy decoding).
// logits (N,V). Grid: N blocks.
extern "C" __global__ void argmax_rows(int *ids, const float *logits, int N, int V) {
    __shared__ float bestValue[32];
    __shared__ int bestIndex[32];
    int row = blockIdx.x;
    if (row >= N) return;
    const float *x = logits + (i64)row * V;
    float bv = __int_as_float(0xFF800000);
    int bi = 0x7FFFFFFF;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float v = x[j];
        if (v > bv) { bv = v; bi = j; }     // j increases per thread: the first maximum stays
    }
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xFFFFFFFFu, bv, o);
        int oi = __shfl_xor_sync(0xFFFFFFFFu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { bestValue[warp] = bv; bestIndex[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
        bv = lane < warps ? bestValue[lane] : __int_as_float(0xFF800000);
        bi = lane < warps ? bestIndex[lane] : 0x7FFFFFFF;
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xFFFFFFFFu, bv, o);
            int oi = __shfl_xor_sync(0xFFFFFFFFu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
        }
        if (lane == 0) ids[row] = bi == 0x7FFFFFFF ? 0 : bi;
    }
}
