// SwiGLU, forward and backward.
// CPU counterparts: Sources/Qwen2/Kernels/Norm.swift (swigluForward), Backward/SwiGLUBackward.swift.

// out = silu(gate) · up, silu(g) = g / (1 + e^−g); gate, up, out (n)
extern "C" __global__ void swiglu_forward(float *out, const float *gate, const float *up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i];
        out[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
    }
}

// dup = dout·silu(g), dgate = dout·u·σ(g)·(1 + g·(1 − σ(g))); all (n)
extern "C" __global__ void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                                           const float *up, i64 n) {
    FOR_EACH(i, n) {
        float g = gate[i], d = dout[i], u = up[i];
        float sig = 1.0f / (1.0f + expf(-g));
        dup[i] = d * g * sig;
        dgate[i] = d * u * sig * (1.0f + g * (1.0f - sig));
    }
}
