import QwenCore

/// The Qwen2 layer ops, on top of `Backend`'s products, memory and conversions: what the model's
/// forward (prefill and KV-cache decoding) and the trainer's forward and backward run, written
/// once against this protocol. `CPUBackend` implements it with the kernels in `CPU/`; a CUDA
/// backend implements the same list. Pointers are the backend's memory; shapes as llm.c,
/// row-major: `// inp (N,C), weight (OC,C)`, N = B·T tokens.
///
/// Frozen weights arrive as `WeightMatrix` from the `WeightProvider` in their stored dtype (f32,
/// bf16, f16 or NF4): the linear ops multiply them with f32 accumulation without widening the
/// whole matrix. `scratch` is the caller's per-pass workspace (the CPU widens weight tiles and
/// pair-splits decoding inputs into it); one per model or training pass, not shared by threads.
public protocol ModelBackend: Backend {
    // MARK: Embedding, norms, residual

    /// out (N,C) = table[ids] (N); the table (V,C) in its stored dtype, rows widened to f32.
    func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>, table: WeightMatrix, N: Int)
    /// dtable (V,C) += scatter of dout (N,C) by ids (N).
    func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ids: UnsafePointer<Int32>,
                           N: Int, C: Int)
    /// out (N,C) = inp · rsqrt(mean(inp²) + eps) · weight (C); rstd (N) kept for backward when given.
    func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float)
    /// dinp (N,C) += d inp; dweight (C) += d weight when given.
    func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int)
    /// out (count) += inp (count): the residual stream.
    func residualAdd(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int)

    // MARK: Linear layers (weights in their stored dtype, f32 accumulation) and LoRA

    /// out (N,OC) (+)= inp (N,C) · weightᵀ (+ bias (OC), added once).
    func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: WeightMatrix,
                       bias: UnsafePointer<Float>?, N: Int, scratch: LinearScratch, accumulate: Bool)
    /// Several linears over the same input (q/k/v, gate/up): one pass when decoding.
    func linearForwardMany(_ parts: [(out: UnsafeMutablePointer<Float>, weight: WeightMatrix, bias: UnsafePointer<Float>?)],
                           inp: UnsafePointer<Float>, N: Int, scratch: LinearScratch)
    /// dinp (N,C) (+)= dout · weight; dweight (OC,C) += doutᵀ · inp; dbias (OC) += Σ_n dout.
    func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                        dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                        weight: WeightMatrix, N: Int, accumulateInput: Bool, scratch: LinearScratch)
    /// Inference adapter: out (N,OUT) += scale · (inp (N,IN) · Aᵀ) · Bᵀ; `tmp` holds (N, r).
    func loraForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, lora: LoRAWeights, N: Int,
                     tmp: UnsafeMutablePointer<Float>)
    /// Merge: weight (OUT,IN) += scale · B · A, the product formed first in f32.
    func loraMerge(weight: UnsafeMutablePointer<Float>, lora: LoRAWeights)
    /// Training adapter: xa (N,r) = dropout(inp) · Aᵀ (kept for backward); out (N,OC) += scale · xa · Bᵀ.
    func loraForward(out: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                     A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float, dropout: LoRADropout,
                     dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int)
    /// xa (N,r) = dropout(inp) · Aᵀ alone (the checkpointing recompute of the down projection).
    func loraProjectInput(xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, A: UnsafePointer<Float>,
                          dropout: LoRADropout, dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, r: Int)
    /// dA (r,C), dB (OC,r) += their gradients; dinp (N,C) += the adapter's share when given.
    func loraBackward(dinp: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?,
                      dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, xa: UnsafePointer<Float>,
                      A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float, dropout: LoRADropout,
                      dxa: UnsafeMutablePointer<Float>, dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int)

    // MARK: RoPE and attention

    /// Rotates x (N, H·hd) in place at positions firstPosition + t, or positions (N) (packed rows).
    func ropeForward(_ x: UnsafeMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                     positions: UnsafePointer<Int32>?)
    /// The inverse rotation of dx (N, H·hd) in place.
    func ropeBackward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int, firstPosition: Int,
                      positions: UnsafePointer<Int32>?)
    /// store (B,KVH,S,hd) at positions firstPosition..<+T = inp (B,T,KVH·hd).
    func kvStoreWrite(store: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, B: Int, T: Int, KVH: Int, hd: Int,
                      S: Int, firstPosition: Int)
    /// Inference GQA attention (prefill and KV-cache decoding): out (B,T,NH·hd) of q (B,T,NH·hd)
    /// over the cache's keys/values (B,KVH,S,hd) 0..<firstPosition+T, causal, keyMask (B,S); lse (B,NH,T).
    func attentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                          kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                          B: Int, T: Int, NH: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int)
    /// Training GQA attention forward over (B,KVH,T,hd) stores, causal, keyMask (B,T), packed
    /// `segments` (B·T) when given; keeps lse (B,NH,T). scratch: `attentionScratchCount(T:)` floats.
    func trainingAttentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                                  kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                  segments: UnsafePointer<Int32>?, scratch: UnsafeMutablePointer<Float>,
                                  B: Int, T: Int, NH: Int, KVH: Int, hd: Int)
    /// Its backward: dq (B,T,NH·hd), dk, dv (B,T,KVH·hd) written. scratchD (B,NH,T).
    func trainingAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                   dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, q: UnsafePointer<Float>,
                                   kStore: UnsafePointer<Float>, vStore: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                   lse: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>, segments: UnsafePointer<Int32>?,
                                   scratchD: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                   B: Int, T: Int, NH: Int, KVH: Int, hd: Int)
    /// Floats of scratch the training attention needs for sequences of T tokens.
    func attentionScratchCount(T: Int) -> Int

    // MARK: MLP

    /// out = silu(gate) · up (count), as PyTorch rounds it (inference).
    func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int)
    /// The same with a vectorised exp (training: forward and its recompute in backward agree bit for bit).
    func swigluForwardFast(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int)
    /// dgate, dup (count) = the gradients of silu(gate) · up.
    func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int)

    // MARK: lm_head scoring

    /// Loss and accuracy of logits (n,V) against targets (n) (−100 ignored), summed.
    func scoreLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int, V: Int) -> TokenScores
}
