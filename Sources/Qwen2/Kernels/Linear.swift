import CBLAS
import QwenCore

// Linear layers over stored weights.
// inp (N,C), weight (OC,C) in f32/bf16/f16, bias (OC) f32, out (N,OC): out = inp · weightᵀ + bias.
//
// fp32 weights go straight to BLAS. Half-precision weights are never widened whole: for a few
// rows of input (decoding) a fused kernel reads the 2-byte weights once, which is what makes
// bf16 decoding twice as fast as fp32 (it is memory-bound); for more rows, tiles of the weight
// are widened into a cache-sized scratch and multiplied by BLAS.

/// Rows of input at or below which half-precision weights use the fused dot-product kernel.
let fusedRowLimit = 4

/// Reusable fp32 scratch for widened weight tiles; one per model run (not shared across threads).
public final class LinearScratch: @unchecked Sendable {
    public static let tileElements = 1 << 20
    var buffer: AlignedBuffer<Float>?
    public init() {}
    func tile() -> UnsafeMutablePointer<Float> {
        if buffer == nil { buffer = AlignedBuffer<Float>(count: Self.tileElements) }
        return buffer!.pointer
    }
}

/// out (N,OC) = inp (N,C) · weightᵀ (+ bias); with `accumulate`, out += … (bias still added once).
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          weight: WeightMatrix, bias: UnsafePointer<Float>?, N: Int,
                          scratch: LinearScratch, accumulate: Bool = false) {
    let OC = weight.rows, C = weight.cols
    if N == 0 || OC == 0 { return }
    if let w = weight.float32 {
        if N == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(OC), Int32(C), 1, w, Int32(C), inp, 1,
                        accumulate ? 1 : 0, out, 1)
        } else {
            GEMM.nt(N, OC, C, inp, w, out, accumulate: accumulate)
        }
    } else if N <= fusedRowLimit {
        halfLinearFused(out: out, inp: inp, weight: weight, N: N, accumulate: accumulate)
    } else {
        let tileRows = max(1, min(OC, LinearScratch.tileElements / max(1, C)))
        let tile = scratch.tile()
        var r0 = 0
        while r0 < OC {
            let rows = min(tileRows, OC - r0)
            parallelChunks(rows, minChunk: 16) { r in
                weight.widenRows((r0 + r.lowerBound)..<(r0 + r.upperBound), into: tile + r.lowerBound * C)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(N), Int32(rows), Int32(C),
                        1, inp, Int32(C), tile, Int32(C), accumulate ? 1 : 0, out + r0, Int32(OC))
            r0 += rows
        }
    }
    if let bias { addBias(out, bias, N: N, OC: OC) }
}

/// out (N,OC) += bias (OC) broadcast over rows.
public func addBias(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, N: Int, OC: Int) {
    for n in 0..<N {
        let row = out + n * OC
        for o in 0..<OC { row[o] += bias[o] }
    }
}

/// The fused half-precision kernel: each output row's weights are read once and dotted with all
/// N input rows, output rows split across threads.
func halfLinearFused(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                     weight: WeightMatrix, N: Int, accumulate: Bool) {
    let OC = weight.rows, C = weight.cols
    let w = weight.base.assumingMemoryBound(to: UInt16.self)
    let isBF16 = weight.dtype == .bf16
    parallelChunks(OC, minChunk: 64) { range in
        var o = range.lowerBound
        while o < range.upperBound {
            let row = w + o * C
            for n in 0..<N {
                let d = isBF16 ? dotBF16(row, inp + n * C, C) : dotF16(row, inp + n * C, C)
                if accumulate { out[n * OC + o] += d } else { out[n * OC + o] = d }
            }
            o += 1
        }
    }
}

/// Σ w[i]·x[i] with w in bfloat16, four independent 8-wide accumulators to hide FMA latency.
@inlinable
public func dotBF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    let wr = UnsafeRawPointer(w), xr = UnsafeRawPointer(x)
    @inline(__always) func load(_ i: Int) -> SIMD8<Float> {
        let h = wr.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt16>.self)
        return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD8<Float>.self)
    }
    @inline(__always) func xs(_ i: Int) -> SIMD8<Float> {
        xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
    }
    var i = 0
    while i + 32 <= n {
        a0 += load(i) * xs(i)
        a1 += load(i + 8) * xs(i + 8)
        a2 += load(i + 16) * xs(i + 16)
        a3 += load(i + 24) * xs(i + 24)
        i += 32
    }
    while i + 8 <= n {
        a0 += load(i) * xs(i)
        i += 8
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < n {
        s += Float(bitPattern: UInt32(w[i]) << 16) * x[i]
        i += 1
    }
    return s
}

/// Σ w[i]·x[i] with w in IEEE half.
@inlinable
public func dotF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    for i in 0..<n { s += floatFromF16(w[i]) * x[i] }
    return s
}
