import QwenCore

// The decoding kernel's NF4 row: Σ W[e0+i]·x[i] for i < n, with W dequantised on the fly
// (codes · block absmax, the exact fp32 values bitsandbytes dequantises to) in chunks that
// stay in L1, then dotted in fp32. Larger batches never come here: they widen tiles of whole
// rows through `WeightMatrix.widenRows` and multiply with BLAS.

/// Elements dequantised per chunk of a row (a multiple of every block size up to 256).
let nf4RowChunk = 256

public func dotNF4(_ q: NF4Layout, from e0: Int, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: nf4RowChunk) { buf -> Float in
        let t = buf.baseAddress!
        var s: Float = 0
        var i = 0
        while i < n {
            let m = min(nf4RowChunk, n - i)
            NF4.dequantize(packed: q.packed, absmax: q.absmax, blocksize: q.blocksize, from: e0 + i, count: m, into: t)
            s += dot(UnsafePointer(t), x + i, m)
            i += m
        }
        return s
    }
}
