// Shared by every kernel module: the Swift side prepends this text to each module's source
// before NVRTC compiles it (no #include, no CUDA headers: NVRTC's built-ins only).
// Numerics mirror the CPU kernels in Sources/Qwen2 and Sources/Training; each module says where.
// Launch convention: blockDim.x is a multiple of 32 and at most 1024; element counts are 64-bit.

typedef unsigned char u8;
typedef unsigned short u16;
typedef long long i64;

// Storage dtypes, as the Swift side passes them.
#define DTYPE_F32 0
#define DTYPE_BF16 1
#define DTYPE_F16 2

#define IGNORE_INDEX (-100)

// Grid-stride loop over 0..<n.
#define FOR_EACH(i, n) \
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// ---- 16-bit floats, bit for bit as Sources/QwenCore/HalfConversion.swift (PyTorch's CPU rules) ----

// fp32 -> bf16, round to nearest even; every NaN -> 0xFFFF (ATen's vectorised CPU path).
__device__ __forceinline__ u16 f32_to_bf16(float x) {
    unsigned w = __float_as_uint(x);
    if ((w & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFu;
    return (u16)((w + 0x7FFFu + ((w >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ float bf16_to_f32(u16 b) {
    return __uint_as_float(((unsigned)b) << 16);
}

// fp32 -> f16, round to nearest even, subnormals exact, overflow to Inf, NaN quiet with its top
// payload bits (F16C vcvtps2ph).
__device__ __forceinline__ u16 f32_to_f16(float x) {
    unsigned w = __float_as_uint(x);
    unsigned sign = (w >> 16) & 0x8000u;
    unsigned a = w & 0x7FFFFFFFu;
    unsigned r;
    if (a > 0x7F800000u) {
        r = 0x7E00u | ((a >> 13) & 0x3FFu);
    } else if (a >= 0x477FF000u) {
        r = 0x7C00u;                     // 65520 and up round to Inf
    } else if (a < 0x38800000u) {
        // |x| < 2^-14: in |x| + 0.5 the last mantissa bit is worth 2^-24 (the f16 subnormal
        // step), so the hardware's round-to-nearest-even add does the rounding.
        r = __float_as_uint(__fadd_rn(__uint_as_float(a), 0.5f)) - 0x3F000000u;
    } else {
        r = ((a + 0xFFFu + ((a >> 13) & 1u)) >> 13) - (112u << 10);
    }
    return (u16)(r | sign);
}

__device__ __forceinline__ float f16_to_f32(u16 bits) {
    unsigned h = bits;
    unsigned sign = (h & 0x8000u) << 16;
    unsigned magnitude = h & 0x7FFFu;
    unsigned mantissa = magnitude & 0x3FFu;
    unsigned r;
    if (magnitude >= 0x7C00u) {
        r = 0x7F800000u | (mantissa << 13) | (mantissa != 0u ? 0x400000u : 0u);
    } else if (magnitude < 0x400u) {
        r = __float_as_uint(__fmul_rn((float)mantissa, 5.9604644775390625e-8f));  // · 2^-24, exact
    } else {
        r = (magnitude << 13) + (112u << 23);
    }
    return __uint_as_float(r | sign);
}

// Element i of a buffer stored as `dtype`, widened to fp32.
__device__ __forceinline__ float load_as_f32(const void *p, int dtype, i64 i) {
    if (dtype == DTYPE_BF16) return bf16_to_f32(((const u16 *)p)[i]);
    if (dtype == DTYPE_F16) return f16_to_f32(((const u16 *)p)[i]);
    return ((const float *)p)[i];
}

// Stores v as element i of a buffer of `dtype`.
__device__ __forceinline__ void store_from_f32(void *p, int dtype, i64 i, float v) {
    if (dtype == DTYPE_BF16) ((u16 *)p)[i] = f32_to_bf16(v);
    else if (dtype == DTYPE_F16) ((u16 *)p)[i] = f32_to_f16(v);
    else ((float *)p)[i] = v;
}

// ---- Reductions ----

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}

// Sum over the whole block; every thread gets the total. The order is fixed by blockDim, so the
// same launch gives the same bits.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();                  // a previous call may still be reading `partial`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ double block_sum_d(double v) {
    __shared__ double partial_d[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) partial_d[warp] = v;
    __syncthreads();
    v = lane < warps ? partial_d[lane] : 0.0;
    return warp_sum_d(v);
}

__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial_m[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial_m[warp] = v;
    __syncthreads();
    v = lane < warps ? partial_m[lane] : -__int_as_float(0x7F800000);
    return warp_max(v);
}
