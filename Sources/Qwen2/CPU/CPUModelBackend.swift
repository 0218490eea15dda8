import QwenCore

// The CPU implementation of the layer ops: each forwards to its kernel in this folder (Kernels/,
// Backward/), BLAS plus threaded Swift loops over host memory. The free kernel functions are the
// CPU backend's internals (and what the kernel tests call); the model and training passes reach
// them only through `ModelBackend`.

extension CPUBackend: ModelBackend {
    public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>, table: WeightMatrix, N: Int) {
        Qwen2.embeddingForward(out: out, ids: ids, table: table, N: N)
    }
    public func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                                  N: Int, C: Int) {
        Qwen2.embeddingBackward(dtable: dtable, dout: dout, ids: ids, N: N, C: C)
    }
    public func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float) {
        Qwen2.rmsNormForward(out: out, rstd: rstd, inp: inp, weight: weight, N: N, C: C, eps: eps)
    }
    public func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int) {
        Qwen2.rmsNormBackward(dinp: dinp, dweight: dweight, dout: dout, inp: inp, weight: weight, rstd: rstd, N: N, C: C)
    }
    public func residualAdd(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        Qwen2.residualAdd(out, inp, count: count)
    }

    public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: WeightMatrix,
                              bias: UnsafePointer<Float>?, N: Int, scratch: LinearScratch, accumulate: Bool) {
        Qwen2.linearForward(out: out, inp: inp, weight: weight, bias: bias, N: N, scratch: scratch, accumulate: accumulate)
    }
    public func linearForwardMany(_ parts: [(out: UnsafeMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                                  inp: UnsafePointer<Float>, N: Int, scratch: LinearScratch) {
        Qwen2.linearForwardMany(parts, inp: inp, N: N, scratch: scratch)
    }
    public func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                               dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                               weight: WeightMatrix, N: Int, accumulateInput: Bool, scratch: LinearScratch) {
        Qwen2.linearBackward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight, N: N,
                             accumulateInput: accumulateInput, scratch: scratch)
    }
    public func loraForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, lora: LoRAWeights, N: Int,
                            tmp: UnsafeMutablePointer<Float>) {
        Qwen2.loraForward(out: out, inp: inp, lora: lora, N: N, tmp: tmp)
    }
    public func loraMerge(weight: UnsafeMutablePointer<Float>, lora: LoRAWeights) {
        Qwen2.loraMerge(weight: weight, lora: lora)
    }
    public func loraForward(out: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                            A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float, dropout: LoRADropout,
                            dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int) {
        Qwen2.loraForward(out: out, xa: xa, inp: inp, A: A, B: B, scale: scale, dropout: dropout, dropped: dropped,
                          N: N, C: C, OC: OC, r: r)
    }
    public func loraProjectInput(xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, A: UnsafePointer<Float>,
                                 dropout: LoRADropout, dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, r: Int) {
        Qwen2.loraProjectInput(xa: xa, inp: inp, A: A, dropout: dropout, dropped: dropped, N: N, C: C, r: r)
    }
    public func loraBackward(dinp: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?,
                             dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, xa: UnsafePointer<Float>,
                             A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float, dropout: LoRADropout,
                             dxa: UnsafeMutablePointer<Float>, dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int) {
        Qwen2.loraBackward(dinp: dinp, dA: dA, dB: dB, dout: dout, inp: inp, xa: xa, A: A, B: B, scale: scale,
                           dropout: dropout, dxa: dxa, dropped: dropped, N: N, C: C, OC: OC, r: r)
    }

    public func ropeForward(_ x: UnsafeMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                            positions: UnsafePointer<Int32>?) {
        Qwen2.ropeForward(x, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions)
    }
    public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                             positions: UnsafePointer<Int32>?) {
        Qwen2.ropeBackward(dx, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions)
    }
    public func kvStoreWrite(store: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, B: Int, T: Int, KVH: Int, hd: Int,
                             S: Int, firstPosition: Int) {
        Qwen2.kvStoreWrite(store: store, inp: inp, B: B, T: T, KVH: KVH, hd: hd, S: S, firstPosition: firstPosition)
    }
    public func attentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                                 kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                 B: Int, T: Int, NH: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int) {
        Qwen2.attentionForward(out: out, lse: lse, q: q, kStore: kStore, vStore: vStore, keyMask: keyMask,
                               B: B, T: T, NH: NH, KVH: KVH, hd: hd, S: S, firstPosition: firstPosition)
    }
    public func trainingAttentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                         kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                         segments: UnsafePointer<Int32>?, scratch: UnsafeMutablePointer<Float>,
                                         B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
        blockedAttentionForward(out: out, lse: lse, q: q, kStore: kStore, vStore: vStore, keyMask: keyMask,
                                segments: segments, scratch: scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
    }
    public func trainingAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                          dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, q: UnsafePointer<Float>,
                                          kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                          lse: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>, segments: UnsafePointer<Int32>?,
                                          scratchD: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                          B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
        blockedAttentionBackward(dq: dq, dk: dk, dv: dv, dout: dout, q: q, kStore: kStore, vStore: vStore, out: out,
                                 lse: lse, keyMask: keyMask, segments: segments, scratchD: scratchD, scratch: scratch,
                                 B: B, T: T, NH: NH, KVH: KVH, hd: hd)
    }
    public func attentionScratchCount(T: Int) -> Int { blockedAttentionScratch(T: T) }

    public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Qwen2.swigluForward(out: out, gate: gate, up: up, count: count)
    }
    public func swigluForwardFast(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Qwen2.swigluForwardFast(out: out, gate: gate, up: up, count: count)
    }
    public func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                               gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        Qwen2.swigluBackward(dgate: dgate, dup: dup, dout: dout, gate: gate, up: up, count: count)
    }

    public func scoreLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int, V: Int) -> TokenScores {
        Qwen2.scoreLogits(logits, targets: targets, n: n, V: V)
    }
}
