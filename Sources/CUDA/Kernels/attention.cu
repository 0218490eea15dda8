// Grouped-query causal attention with a key padding mask: KV-cache writes, forward with an online
// softmax (no T×T score matrix), and the flash-style backward that recomputes probabilities from
// the forward's log-sum-exp. CPU counterparts: Sources/Qwen2/Kernels/Attention.swift,
// Backward/AttentionBackward.swift (same layouts, same formulas).
//
// q (B,T,NH,hd), kStore/vStore (B,KVH,S,hd), keyMask (B,S) 1 for real tokens, lse (B,NH,T).
// Query t of row b sits at position firstPosition + t and sees keys j <= that position with
// keyMask[b,j] = 1; query head h reads kv head h / (NH / KVH). scale = 1/√hd (from the host).
//
// One warp per query (or key): lane l holds elements l, l+32, … of a head vector, so hd <= 256.

#define MAX_PER_LANE 8

// store (B,KVH,S,hd) at positions firstPosition..<firstPosition+T  <-  inp (B,T,KVH,hd)
extern "C" __global__ void kv_store_write(float *store, const float *inp, int B, int T, int KVH, int hd,
                                          int S, int firstPosition) {
    FOR_EACH(k, (i64)B * T * KVH * hd) {
        int e = (int)(k % hd);
        i64 r = k / hd;
        int h = (int)(r % KVH);
        i64 bt = r / KVH;
        int t = (int)(bt % T), b = (int)(bt / T);
        store[(((i64)b * KVH + h) * S + firstPosition + t) * hd + e] = inp[k];
    }
}

// Σ a[e]·b[e] over a head vector, summed across the warp; every lane gets it.
__device__ __forceinline__ float warp_dot(const float *a, const float *b, int hd, int lane) {
    float s = 0.0f;
    for (int e = lane; e < hd; e += 32) s += a[e] * b[e];
    return warp_sum(s);
}

// out (B,T,NH,hd) = softmax(q·kᵀ·scale + mask) · v; lse (B,NH,T) when not null.
// One warp per (b, h, t); blockDim.x a multiple of 32.
extern "C" __global__ void attention_forward(float *out, float *lse, const float *q, const float *kStore,
                                             const float *vStore, const u8 *keyMask, int B, int T, int NH,
                                             int KVH, int hd, int S, int firstPosition, float scale) {
    int lane = threadIdx.x & 31;
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (item >= (i64)B * NH * T) return;
    int t = (int)(item % T), h = (int)((item / T) % NH), b = (int)(item / ((i64)T * NH));
    int rep = NH / KVH;
    const float *qv = q + (((i64)b * T + t) * NH + h) * hd;
    i64 kvBase = ((i64)b * KVH + h / rep) * S * hd;
    const float *keys = kStore + kvBase, *values = vStore + kvBase;
    const u8 *mask = keyMask + (i64)b * S;
    float o[MAX_PER_LANE];
    for (int r = 0; r < MAX_PER_LANE; r++) o[r] = 0.0f;
    float runningMax = __int_as_float(0xFF800000), runningSum = 0.0f;
    int last = firstPosition + t;
    for (int j = 0; j <= last; j++) {
        if (mask[j] == 0) continue;
        float s = warp_dot(qv, keys + (i64)j * hd, hd, lane) * scale;
        float newMax = fmaxf(runningMax, s);
        float correction = expf(runningMax - newMax);   // 0 for the first key (−inf − s)
        float p = expf(s - newMax);
        runningSum = runningSum * correction + p;
        const float *vj = values + (i64)j * hd;
        for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) o[r] = o[r] * correction + p * vj[e];
        runningMax = newMax;
    }
    float inv = runningSum > 0.0f ? 1.0f / runningSum : 0.0f;
    float *dst = out + (((i64)b * T + t) * NH + h) * hd;
    for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) dst[e] = o[r] * inv;
    if (lse != 0 && lane == 0) lse[((i64)b * NH + h) * T + t] = runningMax + logf(runningSum);
}

// D (B,NH,T) = Σ dout·out per query. One warp per query.
extern "C" __global__ void attention_backward_d(float *D, const float *dout, const float *out,
                                                int B, int T, int NH, int hd) {
    int lane = threadIdx.x & 31;
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (item >= (i64)B * NH * T) return;
    int t = (int)(item % T), h = (int)((item / T) % NH), b = (int)(item / ((i64)T * NH));
    i64 off = (((i64)b * T + t) * NH + h) * hd;
    float d = warp_dot(dout + off, out + off, hd, lane);
    if (lane == 0) D[item] = d;
}

// Training layout (S = T, firstPosition 0). With p_ij = exp(s_ij − lse_i), s_ij = q_i·k_j·scale:
//   dq_i = Σ_j p_ij (dout_i·v_j − D_i) k_j · scale          (this kernel: one warp per query i)
extern "C" __global__ void attention_backward_dq(float *dq, const float *dout, const float *q, const float *kStore,
                                                 const float *vStore, const float *lse, const float *D,
                                                 const u8 *keyMask, int B, int T, int NH, int KVH, int hd,
                                                 float scale) {
    int lane = threadIdx.x & 31;
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (item >= (i64)B * NH * T) return;
    int i = (int)(item % T), h = (int)((item / T) % NH), b = (int)(item / ((i64)T * NH));
    int rep = NH / KVH;
    i64 off = (((i64)b * T + i) * NH + h) * hd;
    float g[MAX_PER_LANE];
    for (int r = 0; r < MAX_PER_LANE; r++) g[r] = 0.0f;
    float l = lse[item];
    if (isfinite(l)) {
        const float *qi = q + off, *doi = dout + off;
        i64 kvBase = ((i64)b * KVH + h / rep) * T * hd;
        const u8 *mask = keyMask + (i64)b * T;
        float Di = D[item];
        for (int j = 0; j <= i; j++) {
            if (mask[j] == 0) continue;
            const float *kj = kStore + kvBase + (i64)j * hd;
            float p = expf(warp_dot(qi, kj, hd, lane) * scale - l);
            float ds = p * (warp_dot(doi, vStore + kvBase + (i64)j * hd, hd, lane) - Di);
            for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) g[r] += ds * scale * kj[e];
        }
    }
    for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) dq[off + e] = g[r];
}

//   dv_j = Σ_i p_ij dout_i,  dk_j = Σ_i p_ij (dout_i·v_j − D_i) q_i · scale
// summed over the NH/KVH query heads sharing kv head kh and queries i >= j; dk, dv (B,T,KVH,hd).
// One warp per key (b, kh, j).
extern "C" __global__ void attention_backward_dkdv(float *dk, float *dv, const float *dout, const float *q,
                                                   const float *kStore, const float *vStore, const float *lse,
                                                   const float *D, const u8 *keyMask, int B, int T, int NH,
                                                   int KVH, int hd, float scale) {
    int lane = threadIdx.x & 31;
    i64 item = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (item >= (i64)B * KVH * T) return;
    int j = (int)(item % T), kh = (int)((item / T) % KVH), b = (int)(item / ((i64)T * KVH));
    int rep = NH / KVH;
    float gk[MAX_PER_LANE], gv[MAX_PER_LANE];
    for (int r = 0; r < MAX_PER_LANE; r++) { gk[r] = 0.0f; gv[r] = 0.0f; }
    if (keyMask[(i64)b * T + j] != 0) {
        i64 kvBase = ((i64)b * KVH + kh) * T * hd;
        const float *kj = kStore + kvBase + (i64)j * hd, *vj = vStore + kvBase + (i64)j * hd;
        for (int h = kh * rep; h < kh * rep + rep; h++) {
            i64 rowBase = ((i64)b * NH + h) * T;
            for (int i = j; i < T; i++) {
                float l = lse[rowBase + i];
                if (!isfinite(l)) continue;
                i64 off = (((i64)b * T + i) * NH + h) * hd;
                const float *qi = q + off, *doi = dout + off;
                float p = expf(warp_dot(qi, kj, hd, lane) * scale - l);
                float ds = p * (warp_dot(doi, vj, hd, lane) - D[rowBase + i]);
                for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) {
                    gv[r] += p * doi[e];
                    gk[r] += ds * scale * qi[e];
                }
            }
        }
    }
    i64 off = (((i64)b * T + j) * KVH + kh) * hd;
    for (int r = 0, e = lane; r < MAX_PER_LANE && e < hd; r++, e += 32) {
        dk[off + e] = gk[r];
        dv[off + e] = gv[r];
    }
}
