import QwenCore

// The inference adapter (an unmerged PEFT LoRA over a frozen linear) and the merge's B·A.

/// out (N,OUT) += scale · (inp (N,IN) · Aᵀ) · Bᵀ; `tmp` holds (N, r).
public func loraForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        lora: LoRAWeights, N: Int, tmp: UnsafeMutablePointer<Float>) {
    rankProject(N, lora.rank, lora.inFeatures, inp, lora.a.pointer, tmp)
    withTransposed(lora.b.pointer, rows: lora.outFeatures, cols: lora.rank) { bt in
        rankExpand(N, lora.outFeatures, lora.rank, UnsafePointer(tmp), bt, out, alpha: lora.scale, accumulate: true)
    }
}

/// weight (out, in) += scale · B (out, r) · A (r, in), the product formed first in f32.
public func loraMerge(weight: UnsafeMutablePointer<Float>, lora w: LoRAWeights) {
    let n = w.outFeatures * w.inFeatures
    let delta = AlignedBuffer<Float>(count: n)
    GEMM.nn(w.outFeatures, w.inFeatures, w.rank, w.b.pointer, w.a.pointer, delta.pointer)
    let s = w.scale, d = delta.pointer
    parallelChunks(n, minChunk: 1 << 16) { r in
        for i in r { weight[i] += d[i] * s }
    }
}
