import Foundation
import QwenCore

// The CPU kernels of the optimizer: AdamW's element loop and gradient-norm clipping, as torch
// runs them for CPU tensors. `AdamW` (AdamW.swift) and the trainer reach them through
// `TrainingBackend` (CPUTrainingBackend.swift).

/// params, grads, m, v: (count). The element-wise body of torch's single-tensor AdamW:
///   p *= 1 - lr·wd                      (decoupled decay, before the moments)
///   m.lerp_(g, 1 - beta1)               (torch's vectorised lerp: an fma)
///   v = v·beta2 + (1 - beta2)·g·g       (mul_ then addcmul_, an fma)
///   denom = sqrt(v) / sqrt(bc2) + eps   (our sqrt is correctly rounded; torch's CPU sqrt goes
///                                        through MKL's vector math and is up to 1 ulp off, the
///                                        one place where we differ from torch in the last bit)
///   p += (-step_size · m) / denom       (addcdiv_)
public func adamwUpdate(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                        m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                        count: Int, decay: Bool, _ c: AdamWScalars) {
    // p·1 is p exactly, so a no-decay range multiplies by 1 instead of branching.
    let decayFactor: Float = decay ? c.decayFactor : 1
    let w = c.lerpWeight
    var i = 0
    if abs(w) < 0.5 {
        // 4 lanes at a time (SSE2 is what the baseline x86-64 build has); the same operations
        // lane by lane as the scalar tail below.
        let df = SIMD4(repeating: decayFactor), w4 = SIMD4(repeating: w)
        let b2 = SIMD4(repeating: c.beta2), omb2 = SIMD4(repeating: c.oneMinusBeta2)
        let bc2 = SIMD4(repeating: c.biasCorrection2Sqrt), eps = SIMD4(repeating: c.eps)
        let neg = SIMD4(repeating: c.negStepSize)
        while i + 4 <= count {
            let p = load4(params + i) * df
            let g = load4(grads + i), mi = load4(m + i)
            let mNew = fusedMultiplyAdd(w4, g - mi, mi)
            let vNew = fusedMultiplyAdd(omb2 * g, g, load4(v + i) * b2)
            let denom = vNew.squareRoot() / bc2 + eps
            store4(params + i, p + neg * mNew / denom)
            store4(m + i, mNew)
            store4(v + i, vNew)
            i += 4
        }
    }
    let wMinusOne = w - 1
    while i < count {
        let p = params[i] * decayFactor
        let g = grads[i], mi = m[i]
        // at::native lerp: small weight → fma(w, end - start, start), else fma(w - 1, end - start, end).
        let mNew = abs(w) < 0.5 ? fusedMultiplyAdd(w, g - mi, mi) : fusedMultiplyAdd(wMinusOne, g - mi, g)
        // torch's addcmul_ kernel is compiled with fp-contract: fma(value·g, g, v·beta2).
        let vNew = fusedMultiplyAdd(c.oneMinusBeta2 * g, g, v[i] * c.beta2)
        let denom = vNew.squareRoot() / c.biasCorrection2Sqrt + c.eps
        params[i] = p + c.negStepSize * mNew / denom
        m[i] = mNew
        v[i] = vNew
        i += 1
    }
}

@inline(__always) func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always) func store4(_ p: UnsafeMutablePointer<Float>, _ x: SIMD4<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD4<Float>.self)
}

@inline(__always)
func fusedMultiplyAdd(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) -> SIMD4<Float> {
    let r = SIMD4<Double>(Double(a[0]), Double(a[1]), Double(a[2]), Double(a[3]))
        * SIMD4<Double>(Double(b[0]), Double(b[1]), Double(b[2]), Double(b[3]))
        + SIMD4<Double>(Double(c[0]), Double(c[1]), Double(c[2]), Double(c[3]))
    return SIMD4<Float>(Float(r[0]), Float(r[1]), Float(r[2]), Float(r[3]))
}

/// a·b + c rounded once, as an fma: the f32 product is exact in double and the double sum is
/// rounded to f32 (a double rounding that differs from a true fma only when the double sum lands
/// exactly on an f32 midpoint, about once in 2^29). Unlike `Float.addingProduct` it vectorises
/// without hardware fma (the package builds for baseline x86-64, where that is a libm call).
@inline(__always)
func fusedMultiplyAdd(_ a: Float, _ b: Float, _ c: Float) -> Float {
    Float(Double(a) * Double(b) + Double(c))
}

/// Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_`: the 2-norm over all
/// gradients as one vector, clip_coef = max_norm / (norm + 1e-6) clamped to 1, grads scaled by it.
/// Split in three so ZeRO can sum the squared norms of its shards across ranks in between.
public enum GradientClipping {
    /// Σ g² over `range`, accumulated in double in fixed blocks of 4096 summed in order, so the
    /// result does not depend on the thread count.
    public static func squaredNorm(_ grads: UnsafePointer<Float>, range: Range<Int>) -> Double {
        let block = 4096
        let n = range.count
        if n <= 0 { return 0 }
        let blocks = (n + block - 1) / block
        let partial = AlignedBuffer<Double>(count: blocks)
        let out = partial.pointer
        let base = grads + range.lowerBound
        parallelFor(blocks, minChunk: 16) { b in
            var s: Double = 0
            let lo = b * block, hi = min(n, lo + block)
            for i in lo ..< hi { let g = Double(base[i]); s += g * g }
            out[b] = s
        }
        var total: Double = 0
        for b in 0 ..< blocks { total += out[b] }
        return total
    }

    /// The f32 total norm torch reports, from a summed square norm.
    public static func norm(squaredNorm: Double) -> Float { Float(squaredNorm.squareRoot()) }

    /// torch's `clamp(max_norm / (total_norm + 1e-6), max=1)` in f32; `max_norm / t` is
    /// `t.reciprocal() * max_norm` in torch (Tensor.__rtruediv__).
    public static func clipCoefficient(totalNorm: Float, maxNorm: Double) -> Float {
        let denom = totalNorm + Float(1e-6)
        let coef = (1 / denom) * Float(maxNorm)
        return coef.isNaN ? coef : min(coef, 1)
    }

    /// grads[range] *= coef (skipped when coef is exactly 1: multiplying by 1 changes nothing).
    public static func scale(_ grads: UnsafeMutablePointer<Float>, range: Range<Int>, by coef: Float) {
        if coef == 1 { return }
        let base = grads + range.lowerBound
        parallelChunks(range.count, minChunk: 1 << 16) { r in
            for i in r { base[i] = base[i] * coef }
        }
    }

    /// Single-process clipping of `grads[0..<count]`: returns the total norm before clipping (what
    /// transformers logs as grad_norm). No clipping when maxNorm ≤ 0 (norm still computed). A NaN
    /// or infinite norm leaves the gradients as they are: the caller must then skip the AdamW
    /// step (torch would scale everything by NaN and corrupt the weights).
    @discardableResult
    public static func clipGlobalNorm(_ grads: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Float {
        let total = norm(squaredNorm: squaredNorm(grads, range: 0 ..< count))
        if maxNorm > 0 && total.isFinite {
            scale(grads, range: 0 ..< count, by: clipCoefficient(totalNorm: total, maxNorm: maxNorm))
        }
        return total
    }
}
