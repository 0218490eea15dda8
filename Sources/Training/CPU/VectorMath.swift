/// exp over 8 floats at once, for the softmax of a 151,936-token vocabulary (the scalar libm call
/// was the cost of the whole loss). Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, a
/// degree-7 Taylor polynomial for e^r, and 2^n built in the exponent bits: within 2 ulp of expf
/// over [ln(FLT_MIN), ln(FLT_MAX)]; below that 0 (softmax terms that small do not matter), above
/// it +inf, NaN stays NaN. Written in plain lane arithmetic and bit casts so it vectorises; no
/// fma, which without `-target-cpu` support (the package builds for baseline x86-64) is a libm
/// call per lane and made this 8× slower.
@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let log2e = SIMD8<Float>(repeating: 1.442_695_04)
    let ln2Hi = SIMD8<Float>(repeating: -0.693_145_75)
    let ln2Lo = SIMD8<Float>(repeating: -1.428_606_8e-6)
    let hi = SIMD8<Float>(repeating: 88.722_83)      // ln(Float.greatestFiniteMagnitude)
    let lo = SIMD8<Float>(repeating: -87.336_54)     // ln(Float.leastNormalMagnitude)
    // Masked selects (vminps/vblendvps), not pointwiseMin/Max (a call and a scalar lane loop).
    let xc = x.replacing(with: hi, where: x .> hi).replacing(with: lo, where: x .< lo)
    // n = round(x·log2e): adding 1.5·2^23 rounds to an integer held in the low mantissa bits.
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let shifted = xc * log2e + magic
    let n = shifted - magic
    let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let r = (xc + n * ln2Hi) + n * ln2Lo
    // e^r ≈ Σ_{k≤7} r^k / k! (Horner); truncation error below 1e-8 relative for |r| ≤ ln2/2.
    var p = SIMD8<Float>(repeating: 1.984_127e-4)
    p = SIMD8<Float>(repeating: 1.388_888_9e-3) + p * r
    p = SIMD8<Float>(repeating: 8.333_333e-3) + p * r
    p = SIMD8<Float>(repeating: 4.166_666_8e-2) + p * r
    p = SIMD8<Float>(repeating: 0.166_666_67) + p * r
    p = SIMD8<Float>(repeating: 0.5) + p * r
    p = SIMD8<Float>(repeating: 1) + p * r
    p = SIMD8<Float>(repeating: 1) + p * r
    // 2^n for n in [-126, 128], as two factors so both ends stay representable.
    let half = ni &>> 1
    let scale1 = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
    let scale2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
    var result = p * scale1 * scale2
    result.replace(with: SIMD8(repeating: 0), where: x .< lo)
    result.replace(with: SIMD8(repeating: .infinity), where: x .> hi)
    result.replace(with: x, where: x .!= x)
    return result
}
