import QwenCore

/// The Qwen2 layer ops, on top of `Backend`'s products, memory and conversions: what the model's
/// forward (prefill and KV-cache decoding) and the trainer's forward and backward run, written
/// once against this protocol. `CPUBackend` implements it with the kernels in `CPU/`; a CUDA
/// backend implements the same list. Pointers are the backend's memory; shapes as llm.c,
/// row-major: `// inp (N,C), weight (OC,C)`, N = B·T tokens.
///
/// Activations, caches, trainable parameters and their gradients are the backend's memory
/// (`DevicePointer`, `DeviceMutablePointer`). Frozen weights arrive from the `WeightProvider` in
/// the provider's memory: `WeightMatrix` in its stored dtype (f32, bf16, f16 or NF4), which the
/// linear ops multiply with f32 accumulation without widening the whole matrix, and the norm
/// and bias vectors (`UnsafePointer<Float>`); an inference adapter arrives as `LoRAWeights`. `scratch` is the caller's per-pass workspace (the CPU widens weight tiles and
/// pair-splits decoding inputs into it); one per model or training pass, not shared by threads.
public protocol ModelBackend: Backend {
    // MARK: Embedding, norms, residual

    /// out (N,C) = table[ids] (N); the table (V,C) in its stored dtype, rows widened to f32.
    func embeddingForward(out: DeviceMutablePointer<Float>, ids: DevicePointer<Int32>, table: WeightMatrix, N: Int)
    /// dtable (V,C) += scatter of dout (N,C) by ids (N).
    func embeddingBackward(dtable: DeviceMutablePointer<Float>, dout: DevicePointer<Float>, ids: DevicePointer<Int32>,
                           N: Int, C: Int)
    /// out (N,C) = inp · rsqrt(mean(inp²) + eps) · weight (C); rstd (N) kept for backward when given.
    func rmsNormForward(out: DeviceMutablePointer<Float>, rstd: DeviceMutablePointer<Float>?, inp: DevicePointer<Float>,
                        weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float)
    /// dinp (N,C) += d inp; dweight (C) += d weight when given.
    func rmsNormBackward(dinp: DeviceMutablePointer<Float>, dweight: DeviceMutablePointer<Float>?, dout: DevicePointer<Float>,
                         inp: DevicePointer<Float>, weight: UnsafePointer<Float>, rstd: DevicePointer<Float>, N: Int, C: Int)
    /// out (count) += inp (count): the residual stream.
    func residualAdd(_ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>, count: Int)

    // MARK: Linear layers (weights in their stored dtype, f32 accumulation) and LoRA

    /// out (N,OC) (+)= inp (N,C) · weightᵀ (+ bias (OC), added once).
    func linearForward(out: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, weight: WeightMatrix,
                       bias: UnsafePointer<Float>?, N: Int, scratch: LinearScratch, accumulate: Bool)
    /// Several linears over the same input (q/k/v, gate/up): one pass when decoding.
    func linearForwardMany(_ parts: [(out: DeviceMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                           inp: DevicePointer<Float>, N: Int, scratch: LinearScratch)
    /// dinp (N,C) (+)= dout · weight; dweight (OC,C) += doutᵀ · inp; dbias (OC) += Σ_n dout.
    func linearBackward(dinp: DeviceMutablePointer<Float>?, dweight: DeviceMutablePointer<Float>?,
                        dbias: DeviceMutablePointer<Float>?, dout: DevicePointer<Float>, inp: DevicePointer<Float>,
                        weight: WeightMatrix, N: Int, accumulateInput: Bool, scratch: LinearScratch)
    /// Inference adapter: out (N,OUT) += scale · (inp (N,IN) · Aᵀ) · Bᵀ; `tmp` holds (N, r).
    func loraForward(out: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, lora: LoRAWeights, N: Int,
                     tmp: DeviceMutablePointer<Float>)
    /// Merge: weight (OUT,IN) += scale · B · A, the product formed first in f32.
    func loraMerge(weight: DeviceMutablePointer<Float>, lora: LoRAWeights)
    /// Training adapter: xa (N,r) = dropout(inp) · Aᵀ (kept for backward); out (N,OC) += scale · xa · Bᵀ.
    func loraForward(out: DeviceMutablePointer<Float>, xa: DeviceMutablePointer<Float>, inp: DevicePointer<Float>,
                     A: DevicePointer<Float>, B: DevicePointer<Float>, scale: Float, dropout: LoRADropout,
                     dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int)
    /// xa (N,r) = dropout(inp) · Aᵀ alone (the checkpointing recompute of the down projection).
    func loraProjectInput(xa: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, A: DevicePointer<Float>,
                          dropout: LoRADropout, dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, r: Int)
    /// dA (r,C), dB (OC,r) += their gradients; dinp (N,C) += the adapter's share when given.
    func loraBackward(dinp: DeviceMutablePointer<Float>?, dA: DeviceMutablePointer<Float>?, dB: DeviceMutablePointer<Float>?,
                      dout: DevicePointer<Float>, inp: DevicePointer<Float>, xa: DevicePointer<Float>,
                      A: DevicePointer<Float>, B: DevicePointer<Float>, scale: Float, dropout: LoRADropout,
                      dxa: DeviceMutablePointer<Float>, dropped: DeviceMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int)

    // MARK: RoPE and attention

    /// Rotates x (N, H·hd) in place at positions firstPosition + t, or positions (N) (packed rows).
    func ropeForward(_ x: DeviceMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                     positions: DevicePointer<Int32>?)
    /// The inverse rotation of dx (N, H·hd) in place.
    func ropeBackward(_ dx: DeviceMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                      positions: DevicePointer<Int32>?)
    /// store (B,KVH,S,hd) at positions firstPosition..<+T = inp (B,T,KVH·hd).
    func kvStoreWrite(store: DeviceMutablePointer<Float>, inp: DevicePointer<Float>, B: Int, T: Int, KVH: Int, hd: Int,
                      S: Int, firstPosition: Int)
    /// Inference GQA attention (prefill and KV-cache decoding): out (B,T,NH·hd) of q (B,T,NH·hd)
    /// over the cache's keys/values (B,KVH,S,hd) 0..<firstPosition+T, causal, keyMask (B,S); lse (B,NH,T).
    func attentionForward(out: DeviceMutablePointer<Float>, lse: DeviceMutablePointer<Float>?, q: DevicePointer<Float>,
                          kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, keyMask: DevicePointer<UInt8>,
                          B: Int, T: Int, NH: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int)
    /// Training GQA attention forward over (B,KVH,T,hd) stores, causal, keyMask (B,T), packed
    /// `segments` (B·T) when given; keeps lse (B,NH,T). scratch: `attentionScratchCount(T:)` floats.
    func trainingAttentionForward(out: DeviceMutablePointer<Float>, lse: DeviceMutablePointer<Float>, q: DevicePointer<Float>,
                                  kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, keyMask: DevicePointer<UInt8>,
                                  segments: DevicePointer<Int32>?, scratch: DeviceMutablePointer<Float>,
                                  B: Int, T: Int, NH: Int, KVH: Int, hd: Int)
    /// Its backward: dq (B,T,NH·hd), dk, dv (B,T,KVH·hd) written. scratchD (B,NH,T).
    func trainingAttentionBackward(dq: DeviceMutablePointer<Float>, dk: DeviceMutablePointer<Float>,
                                   dv: DeviceMutablePointer<Float>, dout: DevicePointer<Float>, q: DevicePointer<Float>,
                                   kStore: DevicePointer<Float>, vStore: DevicePointer<Float>, out: DevicePointer<Float>,
                                   lse: DevicePointer<Float>, keyMask: DevicePointer<UInt8>, segments: DevicePointer<Int32>?,
                                   scratchD: DeviceMutablePointer<Float>, scratch: DeviceMutablePointer<Float>,
                                   B: Int, T: Int, NH: Int, KVH: Int, hd: Int)
    /// Floats of scratch the training attention needs for sequences of T tokens.
    func attentionScratchCount(T: Int) -> Int

    // MARK: MLP

    /// out = silu(gate) · up (count), as PyTorch rounds it (inference).
    func swigluForward(out: DeviceMutablePointer<Float>, gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int)
    /// The same with a vectorised exp (training: forward and its recompute in backward agree bit for bit).
    func swigluForwardFast(out: DeviceMutablePointer<Float>, gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int)
    /// dgate, dup (count) = the gradients of silu(gate) · up.
    func swigluBackward(dgate: DeviceMutablePointer<Float>, dup: DeviceMutablePointer<Float>, dout: DevicePointer<Float>,
                        gate: DevicePointer<Float>, up: DevicePointer<Float>, count: Int)

    // MARK: lm_head scoring

    /// Loss and accuracy of logits (n,V) against targets (n) (−100 ignored), summed.
    func scoreLogits(_ logits: DevicePointer<Float>, targets: DevicePointer<Int32>, n: Int, V: Int) -> TokenScores
}
