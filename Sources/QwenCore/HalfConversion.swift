// Conversions between fp32 and the 16-bit storage formats bf16 and f16, bit for bit as PyTorch's
// CPU `tensor.to(torch.bfloat16)` / `.to(torch.float16)` / `.float()` give them (x86, torch 2.x):
//   - fp32 → bf16/f16 round to nearest, ties to even; overflow goes to ±Inf; f16 subnormals are
//     produced exactly; widening is exact.
//   - NaN: torch's bit patterns depend on the code path, so we follow its vectorised kernels, the
//     path every tensor of more than a handful of elements takes:
//       fp32 → bf16: every NaN becomes 0xFFFF (ATen's AVX2/AVX-512 `cvtfp32_bf16` blends in 0xffff);
//       fp32 → f16 and f16 → fp32: F16C semantics — sign kept, quiet bit set, top payload bits kept;
//       bf16 → fp32: the bits shifted left by 16 (payload and all).
// Fixtures from torch: Tests/QwenCoreTests/Fixtures/half_conversion.json (Scripts/fixtures/half_conversion.py).

/// The bf16 bits nearest to `x` (ties to even); NaN → 0xFFFF as torch's vectorised CPU path.
@inlinable @inline(__always)
public func bf16Bits(fromFloat x: Float) -> UInt16 {
    let w = x.bitPattern
    if w & 0x7FFF_FFFF > 0x7F80_0000 { return 0xFFFF }
    // Adding 0x7FFF plus the lowest kept bit rounds half to even; a carry into the exponent is
    // the right answer, including the step from the largest finite value to Inf.
    return UInt16(truncatingIfNeeded: (w &+ 0x7FFF &+ ((w >> 16) & 1)) >> 16)
}

/// The fp32 value of bf16 bits (exact).
@inlinable @inline(__always)
public func floatFromBF16(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// The f16 bits nearest to `x` (ties to even), with f16 subnormals and overflow to ±Inf.
/// Written without branches (every case computed, then selected) so bulk loops vectorise.
@inlinable @inline(__always)
public func f16Bits(fromFloat x: Float) -> UInt16 {
    let w = x.bitPattern
    let sign = (w >> 16) & 0x8000
    let a = w & 0x7FFF_FFFF
    // Normal f16 (|x| in [2^-14, 65520)): rebias the exponent (127 → 15) and round the 13
    // dropped mantissa bits half to even; a carry into the exponent is the right answer.
    let normal = ((a &+ 0xFFF &+ ((a >> 13) & 1)) >> 13) &- (112 << 10)
    // Subnormal or zero (|x| < 2^-14): in |x| + 0.5 the last mantissa bit is worth 2^-24, the
    // f16 subnormal step, so the FPU's own round-half-even does the rounding; the low bits are
    // then the count of steps (1024 = rounded up to the smallest normal, also correct).
    let subnormal = (Float(bitPattern: a) + 0.5).bitPattern &- 0x3F00_0000
    // NaN: quiet, payload's top 10 bits kept (F16C vcvtps2ph).
    let nan = 0x7E00 | ((a >> 13) & 0x3FF)
    var r = a < 0x3880_0000 ? subnormal : normal
    // 65520 is halfway between 65504 (the largest f16) and 65536; ties-to-even rounds it up.
    r = a >= 0x477F_F000 ? 0x7C00 : r
    r = a > 0x7F80_0000 ? nan : r
    return UInt16(truncatingIfNeeded: r | sign)
}

/// The fp32 value of f16 bits (exact); NaN keeps its sign and payload and is quieted (F16C).
/// Branch-free like `f16Bits(fromFloat:)`.
@inlinable @inline(__always)
public func floatFromF16(_ bits: UInt16) -> Float {
    let h = UInt32(bits)
    let sign = (h & 0x8000) << 16
    let magnitude = h & 0x7FFF
    let mantissa = magnitude & 0x3FF
    let normal = (magnitude << 13) &+ (112 << 23)
    // Zero or subnormal: mantissa · 2^-24, exact in fp32.
    let subnormal = (Float(Int32(bitPattern: mantissa)) * 0x1p-24).bitPattern
    let infOrNaN = 0x7F80_0000 | (mantissa << 13) | (mantissa != 0 ? 0x40_0000 : 0)
    var r = magnitude < 0x400 ? subnormal : normal
    r = magnitude >= 0x7C00 ? infOrNaN : r
    return Float(bitPattern: r | sign)
}

// MARK: - Bulk converters (threaded over `Threading.count`)

/// Chunks below this many elements run on the calling thread: threads cost more than they save.
@usableFromInline let conversionMinChunk = 1 << 16

/// dst[i] = floatFromBF16(src[i]) for i in 0..<count
@inlinable
public func convertBF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: conversionMinChunk) { r in
        for i in r { dst[i] = floatFromBF16(src[i]) }
    }
}

/// dst[i] = bf16Bits(fromFloat: src[i]) for i in 0..<count
@inlinable
public func convertF32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    parallelChunks(count, minChunk: conversionMinChunk) { r in
        for i in r { dst[i] = bf16Bits(fromFloat: src[i]) }
    }
}

/// dst[i] = floatFromF16(src[i]) for i in 0..<count
@inlinable
public func convertF16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: conversionMinChunk) { r in
        for i in r { dst[i] = floatFromF16(src[i]) }
    }
}

/// dst[i] = f16Bits(fromFloat: src[i]) for i in 0..<count
@inlinable
public func convertF32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    parallelChunks(count, minChunk: conversionMinChunk) { r in
        for i in r { dst[i] = f16Bits(fromFloat: src[i]) }
    }
}

/// Rounds every value to bf16 and back in place: what a bf16 round trip does to fp32 weights.
@inlinable
public func roundToBF16InPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: conversionMinChunk) { r in
        for i in r { values[i] = floatFromBF16(bf16Bits(fromFloat: values[i])) }
    }
}

/// dst (count Floats) = the values at `src` stored as `dtype`, which must be F32, BF16, F16 or
/// F64 (`dtype.isFloatStorage || dtype == .f64`). `src` must be aligned to `dtype.elementSize`.
public func convertToFloat(_ src: UnsafeRawPointer, dtype: DType, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    switch dtype {
    case .f32:
        let s = src.assumingMemoryBound(to: Float.self)
        parallelChunks(count, minChunk: conversionMinChunk) { r in
            (dst + r.lowerBound).update(from: s + r.lowerBound, count: r.count)
        }
    case .bf16: convertBF16ToF32(src.assumingMemoryBound(to: UInt16.self), dst, count: count)
    case .f16: convertF16ToF32(src.assumingMemoryBound(to: UInt16.self), dst, count: count)
    case .f64:
        let s = src.assumingMemoryBound(to: Double.self)
        parallelChunks(count, minChunk: conversionMinChunk) { r in
            for i in r { dst[i] = Float(s[i]) }
        }
    default:
        preconditionFailure("convertToFloat: \(dtype) is not a floating-point storage type")
    }
}

/// dst (count elements of `dtype`) = src narrowed (or widened, for F64) to `dtype`, which must be
/// F32, BF16, F16 or F64. `dst` must be aligned to `dtype.elementSize`.
public func convertFromFloat(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, dtype: DType, count: Int) {
    switch dtype {
    case .f32:
        let d = dst.assumingMemoryBound(to: Float.self)
        parallelChunks(count, minChunk: conversionMinChunk) { r in
            (d + r.lowerBound).update(from: src + r.lowerBound, count: r.count)
        }
    case .bf16: convertF32ToBF16(src, dst.assumingMemoryBound(to: UInt16.self), count: count)
    case .f16: convertF32ToF16(src, dst.assumingMemoryBound(to: UInt16.self), count: count)
    case .f64:
        let d = dst.assumingMemoryBound(to: Double.self)
        parallelChunks(count, minChunk: conversionMinChunk) { r in
            for i in r { d[i] = Double(src[i]) }
        }
    default:
        preconditionFailure("convertFromFloat: \(dtype) is not a floating-point storage type")
    }
}
