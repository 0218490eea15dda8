import CBLAS
import QwenCore

// Linear layers over stored weights.
// inp (N,C), weight (OC,C) in f32/bf16/f16, bias (OC) f32, out (N,OC): out = inp · weightᵀ + bias.
//
// For a few rows of input (decoding) a fused kernel reads each weight once in its stored dtype,
// which is what makes bf16 decoding twice as fast as fp32 (it is memory-bound). For more rows,
// fp32 weights go straight to GEMM; half-precision ones go to GEMM's packed kernel in their
// stored dtype where it takes the shape (`GEMM.mixed`), else (NF4, small shapes, other
// architectures) they are widened tile by tile into a scratch and multiplied by GEMM (a whole
// projection at small widths; see `LinearScratch`).

/// Rows of input at or below which the fused dot-product kernel runs instead of BLAS.
let fusedRowLimit = 4

/// Reusable fp32 scratch for widened weight tiles; one per model run (not shared across threads).
///
/// Tiles hold up to `tileElements` floats (32 MB by default), so a whole projection of the
/// 0.5B–3B widths is one tile and is multiplied exactly as an fp32 weight would be (one GEMM,
/// split over the threads like any other, the same bits). The cap keeps 7B–14B projections
/// (68M elements) and the lm_head in tiles of hundreds to thousands of rows: with the former
/// 1M-element tiles a 7B down_proj came in 55-row tiles and the 0.5B lm_head in 130 tiles a
/// product, each a separate threaded GEMM with its own packing, edge tiles and C traffic — the
/// bf16-base step ran at about 64 % of the sgemm ceiling against 84 % for fp32 (issue 17).
/// The buffer grows to the largest tile actually used.
public final class LinearScratch: @unchecked Sendable {
    /// The default cap on a widened tile, in floats.
    public static let defaultTileElements = 1 << 23
    /// The cap on a widened tile, in floats (tests set it small to cover several tiles).
    public let tileElements: Int
    var buffer: AlignedBuffer<Float>?
    var paired: AlignedBuffer<Float>?
    public init(tileElements: Int = LinearScratch.defaultTileElements) {
        self.tileElements = max(1, tileElements)
    }
    /// Room for `weight`'s tiles (see `WeightMatrix.forEachWidenedTile`).
    func tile(for weight: WeightMatrix) -> UnsafeMutablePointer<Float> {
        let need = weight.widenedTileRows(tileElements: tileElements) * weight.cols
        if let buffer, buffer.count >= need { return buffer.pointer }
        buffer = nil  // free the smaller one first
        let b = AlignedBuffer<Float>(count: need)
        buffer = b
        return b.pointer
    }
    /// Room for `count` floats of reordered decoding input (see `decodingInput`).
    func pairedInput(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let paired, paired.count >= count { return paired.pointer }
        let b = AlignedBuffer<Float>(count: count)
        paired = b
        return b.pointer
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
        let x = decodingInput(inp, weight: weight, N: N, scratch: scratch)
        fusedLinear(out: out, inp: x, weight: weight, N: N, accumulate: accumulate)
    } else if let w = weight.float32 {
        GEMM.nt(N, OC, C, inp, w, out, accumulate: accumulate)
    } else if weight.nf4 == nil,
              GEMM.mixed(transB: true, N, OC, C, inp, lda: C, weight.base, dtype: weight.dtype, ldb: C,
                         beta: accumulate ? 1 : 0, out, ldc: OC) {
        // bf16/f16 weight widened by the packed kernel as it packs (GEMM.packedTakes).
    } else {
        let tile = scratch.tile(for: weight)
        weight.forEachWidenedTile(into: tile, tileElements: scratch.tileElements) { r0, rows in
            GEMM.general(transA: false, transB: true, N, rows, C, inp, lda: C, tile, ldb: C,
                         beta: accumulate ? 1 : 0, out + r0, ldc: OC)
        }
    }
    if let bias { addBias(out, bias, N: N, OC: OC) }
}

/// Several Linear layers over the same input (q/k/v, gate/up): one parallel pass over all their
/// rows when decoding, so each token pays one thread hand-off instead of one per matrix.
public func linearForwardMany(_ parts: [(out: UnsafeMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                              inp: UnsafePointer<Float>, N: Int, scratch: LinearScratch) {
    guard N <= fusedRowLimit, parts.count > 1,
          parts.allSatisfy({ $0.weight.cols == parts[0].weight.cols && $0.weight.dtype == parts[0].weight.dtype
              && nf4RowsPlanar($0.weight) == nf4RowsPlanar(parts[0].weight) }) else {
        for p in parts { linearForward(out: p.out, inp: inp, weight: p.weight, bias: p.bias, N: N, scratch: scratch) }
        return
    }
    let x = decodingInput(inp, weight: parts[0].weight, N: N, scratch: scratch)
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
                    fusedRows(out: ps[m].out, inp: x, weight: ps[m].weight, rows: lo..<hi, N: N, accumulate: false)
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
/// dotted with all N input rows; output rows split across threads. bf16 and NF4 weights take the
/// input from `decodingInput` (reordered for their kernels).
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
    #if arch(x86_64)
    if let q = weight.nf4, nf4RowsPlanar(weight) {
        let planes = nf4CodePlanes
        for o in rows {
            for n in 0..<N {
                let d = dotNF4Planar(q, from: o * C, inp + n * C, C, planes: planes)
                if accumulate { out[n * OC + o] += d } else { out[n * OC + o] = d }
            }
        }
        return
    }
    #endif
    let dtype = weight.dtype
    for o in rows {
        for n in 0..<N {
            let x = inp + n * C
            let d: Float
            switch dtype {
            case .f32: d = dot(weight.base.assumingMemoryBound(to: Float.self) + o * C, x, C)
            case .bf16: d = dotBF16Paired(weight.base.assumingMemoryBound(to: UInt16.self) + o * C, x, C)
            case .u8: d = dotNF4(weight.nf4!, from: o * C, x, C)
            default: d = dotF16(weight.base.assumingMemoryBound(to: UInt16.self) + o * C, x, C)
            }
            if accumulate { out[n * OC + o] += d } else { out[n * OC + o] = d }
        }
    }
}

/// The decoding input as the fused kernel reads it: bf16 weights need it pair-split (see
/// `splitPairs`), NF4 rows of whole 64-weight chunks reordered by `planarNF4Order`, other
/// dtypes take it as is.
func decodingInput(_ inp: UnsafePointer<Float>, weight: WeightMatrix, N: Int,
                   scratch: LinearScratch) -> UnsafePointer<Float> {
    let planar = nf4RowsPlanar(weight)
    guard weight.dtype == .bf16 || planar else { return inp }
    let C = weight.cols
    let x = scratch.pairedInput(N * C)
    for n in 0..<N {
        if planar {
            planarNF4Order(inp + n * C, into: x + n * C, count: C)
        } else {
            splitPairs(inp + n * C, into: x + n * C, count: C)
        }
    }
    return UnsafePointer(x)
}

/// Reorders x for `dotBF16Paired`: within every 16-element block, the 8 even-indexed elements
/// first, then the 8 odd-indexed ones; a tail shorter than 16 is copied as is.
///
/// Why: 16 bf16 weights loaded as eight UInt32 hold the even elements in their low halves and the
/// odd ones in their high halves, so `w << 16` and `w & 0xFFFF0000` are the exact fp32 values of
/// the even and odd elements: two bit operations widen 16 weights, with no shuffle.
public func splitPairs(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        for k in 0..<8 {
            out[i + k] = x[i + 2 * k]
            out[i + 8 + k] = x[i + 2 * k + 1]
        }
        i += 16
    }
    while i < count {
        out[i] = x[i]
        i += 1
    }
}

/// Σ w[i]·x[i] with w in bfloat16 and x pair-split by `splitPairs`; four independent 8-wide
/// accumulators hide the add latency. The sum is exact fp32 products summed in fp32.
@inlinable
public func dotBF16Paired(_ w: UnsafePointer<UInt16>, _ xp: UnsafePointer<Float>, _ n: Int) -> Float {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    let wr = UnsafeRawPointer(w), xr = UnsafeRawPointer(xp)
    let high = SIMD8<UInt32>(repeating: 0xFFFF_0000)
    @inline(__always) func words(_ i: Int) -> SIMD8<UInt32> {
        wr.loadUnaligned(fromByteOffset: i * 2, as: SIMD8<UInt32>.self)
    }
    @inline(__always) func xs(_ i: Int) -> SIMD8<Float> {
        xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
    }
    var i = 0
    while i + 32 <= n {
        let u = words(i), v = words(i + 16)
        a0 += unsafeBitCast(u &<< 16, to: SIMD8<Float>.self) * xs(i)
        a1 += unsafeBitCast(u & high, to: SIMD8<Float>.self) * xs(i + 8)
        a2 += unsafeBitCast(v &<< 16, to: SIMD8<Float>.self) * xs(i + 16)
        a3 += unsafeBitCast(v & high, to: SIMD8<Float>.self) * xs(i + 24)
        i += 32
    }
    if i + 16 <= n {
        let u = words(i)
        a0 += unsafeBitCast(u &<< 16, to: SIMD8<Float>.self) * xs(i)
        a1 += unsafeBitCast(u & high, to: SIMD8<Float>.self) * xs(i + 8)
        i += 16
    }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < n {
        s += Float(bitPattern: UInt32(w[i]) << 16) * xp[i]
        i += 1
    }
    return s
}

/// Σ w[i]·x[i] with w in IEEE half: blocks of 256 weights are widened into a stack buffer by
/// `widenF16` (F16C), then dotted 8 lanes at a time.
@inlinable
public func dotF16(_ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    let block = 256
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { buf -> Float in
        guard let t = buf.baseAddress else { return 0 }
        let tr = UnsafeRawPointer(t), xr = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var s: Float = 0
        var i0 = 0
        while i0 < n {
            let m = min(block, n - i0)
            widenF16(w + i0, t, m)
            var k = 0
            while k + 16 <= m {
                a0 += tr.load(fromByteOffset: k * 4, as: SIMD8<Float>.self)
                    * xr.loadUnaligned(fromByteOffset: (i0 + k) * 4, as: SIMD8<Float>.self)
                a1 += tr.load(fromByteOffset: (k + 8) * 4, as: SIMD8<Float>.self)
                    * xr.loadUnaligned(fromByteOffset: (i0 + k + 8) * 4, as: SIMD8<Float>.self)
                k += 16
            }
            while k < m {
                s += t[k] * x[i0 + k]
                k += 1
            }
            i0 += m
        }
        return (a0 + a1).sum() + s
    }
}
