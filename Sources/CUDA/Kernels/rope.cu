// Rotary position embedding, forward and backward, in place.
// CPU counterpart: Sources/Qwen2/Kernels/RoPE.swift (ropeRotate), Backward/RoPEBackward.swift.
// cosT, sinT (positions, d/2): the RoPETable the host computed (fp32, as transformers), uploaded.

// x (N,H,d), half-split (rotate_half): (x1, x2) -> (x1·c − x2·s, x2·c + x1·s) with s = sinSign·sin,
// at position positions[n] when positions is not null, else firstPosition + n mod T.
// sinSign 1: forward; −1: backward (the inverse rotation). One thread per (n, h, i < d/2).
extern "C" __global__ void rope_rotate(float *x, const float *cosT, const float *sinT, const int *positions,
                                       int N, int T, int H, int d, int firstPosition, float sinSign) {
    int half = d / 2;
    FOR_EACH(k, (i64)N * H * half) {
        int i = (int)(k % half);
        i64 nh = k / half;
        int n = (int)(nh / H);
        int p = positions != 0 ? positions[n] : firstPosition + n % T;
        float c = cosT[(i64)p * half + i], s = sinSign * sinT[(i64)p * half + i];
        float *v = x + nh * d;
        float x1 = v[i], x2 = v[i + half];
        v[i] = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s));
        v[i + half] = __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
    }
}
