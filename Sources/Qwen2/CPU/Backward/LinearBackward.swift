import QwenCore

// Linear backward. Forward: out (N,OC) = inp (N,C) · weightᵀ + bias, weight (OC,C) stored
// f32/bf16/f16, bias (OC).
// dinp    (N,C)  = dout · weight        (overwritten, or added to with `accumulateInput`)
// dweight (OC,C) += doutᵀ · inp         (nil for a frozen weight)
// dbias   (OC)   += Σ_n dout[n]         (nil when there is no trainable bias)
// Half-precision weights are widened a tile of rows at a time into `scratch`, never whole.

/// Scratch for widened weight tiles in backward: the forward's kind (one per training pass, not
/// shared across threads).
public typealias BackwardScratch = LinearScratch

public func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                           inp: UnsafePointer<Float>, weight: WeightMatrix, N: Int,
                           accumulateInput: Bool = false, scratch: BackwardScratch) {
    let OC = weight.rows, C = weight.cols
    if N == 0 { return }
    if let dinp {
        linearBackwardInput(dinp: dinp, dout: dout, weight: weight, N: N, scratch: scratch, accumulate: accumulateInput)
    }
    if let dweight {
        GEMM.tn(OC, C, N, dout, inp, dweight, accumulate: true)
    }
    if let dbias {
        biasBackward(dbias: dbias, dout: dout, N: N, OC: OC)
    }
}

/// The input gradient alone (a frozen weight with nothing else to train):
/// dinp (N,C) (+)= dout (N,OC) · weight (OC,C). Half-precision weights go to GEMM's packed kernel
/// in their stored dtype where it takes the shape, else are widened tile by tile as in the
/// forward, so no fp32 copy of the whole matrix is ever made.
public func linearBackwardInput(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                weight: WeightMatrix, N: Int, scratch: LinearScratch, accumulate: Bool = false) {
    let OC = weight.rows, C = weight.cols
    if N == 0 || C == 0 { return }
    if let w = weight.float32 {
        GEMM.nn(N, C, OC, dout, w, dinp, accumulate: accumulate)
        return
    }
    if weight.nf4 == nil,
       GEMM.mixed(transB: false, N, C, OC, dout, lda: OC, weight.base, dtype: weight.dtype, ldb: C,
                  beta: accumulate ? 1 : 0, dinp, ldc: C) {
        return  // bf16/f16 weight widened by the packed kernel as it packs
    }
    let tile = scratch.tile(for: weight)
    weight.forEachWidenedTile(into: tile, tileElements: scratch.tileElements) { r0, rows in
        GEMM.general(transA: false, transB: false, N, C, rows, dout + r0, lda: OC, tile, ldb: C,
                     beta: (accumulate || r0 > 0) ? 1 : 0, dinp, ldc: C)
    }
}

/// dbias (OC) += Σ_n dout[n] (N,OC); columns split across threads, rows summed in order.
public func biasBackward(dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, OC: Int) {
    parallelChunks(OC, minChunk: 64) { cols in
        for n in 0..<N {
            let row = dout + n * OC
            for o in cols { dbias[o] += row[o] }
        }
    }
}
