@_spi(CPUBackend) import QwenCore

// The CPU implementation of the layer ops: each forwards to its kernel in this folder (Kernels/,
// Backward/), BLAS plus threaded Swift loops over host memory (a CPU device pointer's `address`). The free kernel functions are the
// CPU backend's internals (and what the kernel tests call); the model and training passes reach
// them only through `ModelBackend`.

extension CPUBackend: ModelBackend {
    public func embeddingForward(out: DeviceMutablePointer<Float>, ids: DevicePointer<Int32>, table: WeightMatrix, N: Int) {
        Qwen2.embeddingForward(out: out.address, ids: ids.address, table: table, N: N)
    }
    public func embeddingBackward(dtable: DeviceMutablePointer<Float>, dout: DevicePointer<Float>, ids: DevicePointer<Int32>,
                                  N: Int, C: Int) {
        Qwen2.embeddingBackward(dtable: dtable.address, dout: dout.address, ids: ids.address, N: N, C: C)
    }
    public func rmsNormForward(out: DeviceMutablePointer<Float>, rstd: DeviceMutablePointer<Float>?, inp: DevicePointer<Float>,
                               weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float) {
        Qwen2.rmsNormForward(out: out.address, rstd: rstd?.address, inp: inp.address, weight: weight, N: N, C: C, eps: eps)
    }
    public func rmsNormBackward(dinp: DeviceMutablePointer<Float>, dweight: DeviceMutablePointer<Float>?, dout: DevicePointer<Float>,
                                inp: DevicePointer<Float>, weight: UnsafePointer<Float>, rstd: DevicePointer<Float>, N: Int, C: Int) {
        Qwen2.rmsNormBackward(dinp: dinp.address, dweight: dweight?.address, dout: dout.address, inp: inp.address, weight: weight, rstd: rstd.address, N: N, C: C)
    }
    public func residualAdd(_ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>, count: Int) {
        Qwen2.residualAdd(out.address, inp.address, count: count)
    }

    public func linearForward(out: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, weight: WeightMatrix,
                              bias: UnsafePointer<Float>?, N: Int, scratch: LinearScratch, accumulate: Bool) {
        Qwen2.linearForward(out: out.address, inp: inp.address, weight: weight, bias: bias, N: N, scratch: scratch, accumulate: accumulate)
    }
    public func linearForwardMany(_ parts: [(out: DeviceMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                                  inp: DevicePointer<Float>, N: Int, scratch: LinearScratch) {
        Qwen2.linearForwardMany(parts.map { (out: $0.out.address, weight: $0.weight, bias: $0.bias) }, inp: inp.address, N: N, scratch: scratch)
    }
    public func linearBackward(dinp: DeviceMutablePointer<Float>?, dweight: DeviceMutablePointer<Float>?,
                               dbias: DeviceMutablePointer<Float>?, dout: DevicePointer<Float>, inp: DevicePointer<Float>,
                               weight: WeightMatrix, N: Int, accumulateInput: Bool, scratch: LinearScratch) {
        Qwen2.linearBackward(dinp: dinp?.address, dweight: dweight?.address, dbias: dbias?.address, dout: dout.address, inp: inp.address, weight: weight, N: N,
                             accumulateInput: accumulateInput, scratch: scratch)
    }
    public func loraForward(out: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, lora: LoRAWeights, N: Int,
                            tmp: DeviceMutablePointer<Float>) {
        Qwen2.loraForward(out: out.address, inp: inp.address, lora: lora, N: N, tmp: tmp.address)
    }
    public func loraMerge(weight: DeviceMutablePointer<Float>, lora: LoRAWeights) {
        Qwen2.loraMerge(weight: weight.address, lora: lora)
    }
    public func loraForward(out: DeviceMutablePointer<Float>, xa: DeviceMutablePointer<Float>, inp: DevicePointer<Float>,
                            A: DevicePointer<Float>, B: DevicePointer<Float>, scale: Float, dropout: LoRADropout,
                            dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int) {
        Qwen2.loraForward(out: out.address, xa: xa.address, inp: inp.address, A: A.address, B: B.address, scale: scale, dropout: dropout, dropped: dropped?.address,
                          N: N, C: C, OC: OC, r: r)
    }
    public func loraProjectInput(xa: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, A: DevicePointer<Float>,
                                 dropout: LoRADropout, dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, r: Int) {
        Qwen2.loraProjectInput(xa: xa.address, inp: inp.address, A: A.address, dropout: dropout, dropped: dropped?.address, N: N, C: C, r: r)
    }
    public func loraBackward(dinp: DeviceMutablePointer<Float>?, dA: DeviceMutablePointer<Float>?, dB: DeviceMutablePointer<Float>?,
                             dout: DevicePointer<Float>, inp: DevicePointer<Float>, xa: DevicePointer<Float>,
                             A: DevicePointer<Float>, B: DevicePointer<Float>, scale: Float, dropout: LoRADropout,
                             dxa: DeviceMutablePointer<Float>, dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int) {
        Qwen2.loraBackward(dinp: dinp?.address, dA: dA?.address, dB: dB?.address, dout: dout.address, inp: inp.address, xa: xa.address, A: A.address, B: B.address, scale: scale,
                           dropout: dropout, dxa: dxa.address, dropped: dropped?.address, N: N, C: C, OC: OC, r: r)
    }

    public func ropeForward(_ x: DeviceMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                            positions: DevicePointer<Int32>?) {
        Qwen2.ropeForward(x.address, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions?.address)
    }
    public func ropeBackward(_ dx: DeviceMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                             positions: DevicePointer<Int32>?) {
        Qwen2.ropeBackward(dx.address, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions?.address)
    }
    public func kvStoreWrite(store: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, B: Int, T: Int, KVH: Int, hd: Int,
                             S: Int, firstPosition: Int) {
        Qwen2.kvStoreWrite(store: store.address, inp: inp.address, B: B, T: T, KVH: KVH, hd: hd, S: S, firstPosition: firstPosition)
    }
    public func attentionForward(out: DeviceMutablePointer<Float>, lse: DeviceMutablePointer<Float>?, q: DevicePointer<Float>,
                                 kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, keyMask: DevicePointer<UInt8>,
                                 B: Int, T: Int, NH: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int) {
        Qwen2.attentionForward(out: out.address, lse: lse?.address, q: q.address, kStore: kStore.address, vStore: vStore.address, keyMask: keyMask.address,
                               B: B, T: T, NH: NH, KVH: KVH, hd: hd, S: S, firstPosition: firstPosition)
    }
    public func trainingAttentionForward(out: DeviceMutablePointer<Float>, lse: DeviceMutablePointer<Float>, q: DevicePointer<Float>,
                                         kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, keyMask: DevicePointer<UInt8>,
                                         segments: DevicePointer<Int32>?, scratch: DeviceMutablePointer<Float>,
                                         B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
        blockedAttentionForward(out: out.address, lse: lse.address, q: q.address, kStore: kStore.address, vStore: vStore.address, keyMask: keyMask.address,
                                segments: segments?.address, scratch: scratch.address, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
    }
    public func trainingAttentionBackward(dq: DeviceMutablePointer<Float>, dk: DeviceMutablePointer<Float>,
                                          dv: DeviceMutablePointer<Float>, dout: DevicePointer<Float>, q: DevicePointer<Float>,
                                          kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, out: DevicePointer<Float>,
                                          lse: DevicePointer<Float>, keyMask: DevicePointer<UInt8>, segments: DevicePointer<Int32>?,
                                          scratchD: DeviceMutablePointer<Float>, scratch: DeviceMutablePointer<Float>,
                                          B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
        blockedAttentionBackward(dq: dq.address, dk: dk.address, dv: dv.address, dout: dout.address, q: q.address, kStore: kStore.address, vStore: vStore.address, out: out.address,
                                 lse: lse.address, keyMask: keyMask.address, segments: segments?.address, scratchD: scratchD.address, scratch: scratch.address,
                                 B: B, T: T, NH: NH, KVH: KVH, hd: hd)
    }
    public func attentionScratchCount(T: Int) -> Int { blockedAttentionScratch(T: T) }

    public func swigluForward(out: DeviceMutablePointer<Float>, gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int) {
        Qwen2.swigluForward(out: out.address, gate: gate.address, up: up.address, count: count)
    }
    public func swigluForwardFast(out: DeviceMutablePointer<Float>, gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int) {
        Qwen2.swigluForwardFast(out: out.address, gate: gate.address, up: up.address, count: count)
    }
    public func swigluBackward(dgate: DeviceMutablePointer<Float>, dup: DeviceMutablePointer<Float>, dout: DevicePointer<Float>,
                               gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int) {
        Qwen2.swigluBackward(dgate: dgate.address, dup: dup.address, dout: dout.address, gate: gate.address, up: up.address, count: count)
    }

    public func scoreLogits(_ logits: DevicePointer<Float>, targets: DevicePointer<Int32>, n: Int, V: Int) -> TokenScores {
        Qwen2.scoreLogits(logits.address, targets: targets.address, n: n, V: V)
    }
}
