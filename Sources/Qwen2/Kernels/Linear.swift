import CBLAS
import QwenCore

// Linear layers over stored weights.
// inp (N,C), weight (OC,C) in f32/bf16/f16, bias (OC) f32, out (N,OC): out = inp · weightᵀ + bias.
//
// For a few rows of input (decoding) a fused kernel reads each weight once in its stored dtype,
// which is what makes bf16 decoding twice as fast as fp32 (it is memory-bound). For more rows,
// fp32 weights go straight to BLAS, and half-precision ones are widened tile by tile into a
// cache-sized scratch and multiplied by BLAS, never widened whole.

/// Rows of input at or below which the fused dot-product kernel runs instead of BLAS.
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
    if N <= fusedRowLimit {
        // Decoding: memory-bound dot products on our own threads. (Handing fp32 to BLAS's sgemv
        // is as fast alone, but its threads spin between calls and fight ours for the cores.)
        fusedLinear(out: out, inp: inp, weight: weight, N: N, accumulate: accumulate)
    } else if let w = weight.float32 {
        GEMM.nt(N, OC, C, inp, w, out, accumulate: accumulate)
    } else {
        let tileRows = max(1, min(OC, LinearScratch.tileElements / max(1, C)))
        let tile = scratch.tile()
        var r0 = 0
        while r0 < OC {
            let rows = min(tileRows, OC - r0)
            parallelChunks(rows, minChunk: 16) { r in
                weight.widenRows((r0 + r.lowerBound)..<(r0 + r.upperBound), into: tile + r.lowerBound * C)
            }
            GEMM.general(transA: false, transB: true, N, rows, C, inp, lda: C, tile, ldb: C,
                         beta: accumulate ? 1 : 0, out + r0, ldc: OC)
            r0 += rows
        }
    }
    if let bias { addBias(out, bias, N: N, OC: OC) }
}

/// Several Linear layers over the same input (q/k/v, gate/up): one parallel pass over all their
/// rows when decoding, so each token pays one thread hand-off instead of one per matrix.
public func linearForwardMany(_ parts: [(out: UnsafeMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                              inp: UnsafePointer<Float>, N: Int, scratch: LinearScratch) {
    guard N <= fusedRowLimit, parts.count > 1, parts.allSatisfy({ $0.weight.cols == parts[0].weight.cols }) else {
        for p in parts { linearForward(out: p.out, inp: inp, weight: p.weight, bias: p.bias, N: N, scratch: scratch) }
        return
    }
    var starts: [Int] = []
    var total = 0
    for p in parts { starts.append(total); total += p.weight.rows }
    parts.withUnsafeBufferPointer { ps in
        starts.withUnsafeBufferPointer { st in
            parallelChunks(total, minChunk: 64) { range in
                var m = 0
                var r = range.lowerBound
                while r < range.upperBound {
                    while r >= st[m] + ps[m].weight.rows { m += 1 }
                    let lo = r - st[m], hi = min(range.upperBound - st[m], ps[m].weight.rows)
                    fusedRows(out: ps[m].out, inp: inp, weight: ps[m].weight, rows: lo..<hi, N: N, accumulate: false)
                    r = st[m] + hi
                }
            }
        }
    }
    for p in parts { if let b = p.bias { addBias(p.out, b, N: N, OC: p.weight.rows) } }
}

/// out (N,OC) += bias (OC) broadcast over rows.
public func addBias(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, N: Int, OC: Int) {
    for n in 0..<N {
        let row = out + n * OC
        for o in 0..<OC { row[o] += bias[o] }
    }
}

/// The decoding kernel: each output row's weights are read once, in their stored dtype, and
/// dotted with all N input rows; output rows split across threads.
func fusedLinear(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                     weight: WeightMatrix, N: Int, accumulate: Bool) {
    parallelChunks(weight.rows, minChunk: 64) { range in
        fusedRows(out: out, inp: inp, weight: weight, rows: range, N: N, accumulate: accumulate)
    }
}

/// Rows `rows` of the fused kernel, on the calling thread.
@inline(__always)
func fusedRows(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: WeightMatrix,
               rows: Range<Int>, N: Int, accumulate: Bool) {
    let OC = weight.rows, C = weight.cols
    let dtype = weight.dtype
    for o in rows {
        for n in 0..<N {
            let x = inp + n * C
            let d: Float
            switch dtype {
            case .f32: d = dot(weight.base.assumingMemoryBound(to: Float.self) + o * C, x, C)
            case .bf16: d = dotBF16(weight.base.assumingMemoryBound(to: UInt16.self) + o * C, x, C)
            default: d = dotF16(weight.base.assumingMemoryBound(to: UInt16.self) + o * C, x, C)
            }
            if accumulate { out[n * OC + o] += d } else { out[n * OC + o] = d }
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

/// The input gradient of a frozen Linear layer, for backward passes:
/// dinp (N,C) (+)= dout (N,OC) · weight (OC,C). Half-precision weights are widened tile by tile
/// as in the forward, so no fp32 copy of the whole matrix is ever made.
public func linearBackwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                weight: WeightMatrix, N: Int, scratch: LinearScratch, accumulate: Bool = false) {
    let OC = weight.rows, C = weight.cols
    if N == 0 || C == 0 { return }
    if let w = weight.float32 {
        GEMM.nn(N, C, OC, dout, w, dinp, accumulate: accumulate)
        return
    }
    let tileRows = max(1, min(OC, LinearScratch.tileElements / max(1, C)))
    let tile = scratch.tile()
    var r0 = 0
    while r0 < OC {
        let rows = min(tileRows, OC - r0)
        parallelChunks(rows, minChunk: 16) { r in
            weight.widenRows((r0 + r.lowerBound)..<(r0 + r.upperBound), into: tile + r.lowerBound * C)
        }
        GEMM.general(transA: false, transB: false, N, C, rows, dout + r0, lda: OC, tile, ldb: C,
                     beta: (accumulate || r0 > 0) ? 1 : 0, dinp, ldc: C)
        r0 += rows
    }
}
