import QwenCore
import Qwen2

// What the training forward keeps for backward, per decoder layer, and the scratch both share.
// N = B·T tokens, C hidden, Q = heads·hd, KV = kv heads·hd, I intermediate, r LoRA rank.

/// One layer's saved activations. Without gradient checkpointing there is one per layer; with it,
/// each layer keeps its input and its attention's result (`att` and `lse`: the quadratic attention
/// is not worth recomputing for NH·(hd+1) floats a token), and shares the rest (q, k, v, mid,
/// gate, up, LoRA xa) with the other layers, refilled by recomputation in backward.
/// The normed inputs of attention and MLP are not kept: backward recomputes them from the layer
/// input / `mid` and the kept rstd (the same code on the same numbers, so the same bits) — two
/// (N,C) buffers less per layer for one RMSNorm each.
final class LayerTape {
    let rstd1, q, kStore, vStore, att, lse, mid, rstd2, gate, up: AlignedBuffer<Float>
    /// xa = dropout(x)·Aᵀ (N,r) of each LoRA target.
    var loraXA: [Projection: AlignedBuffer<Float>] = [:]

    /// `sharing`: a tape whose recomputable buffers this one uses too (checkpointing).
    init(config c: Qwen2Config, N: Int, lora: LoRASpec?, sharing other: LayerTape? = nil) {
        let C = c.hiddenSize, I = c.intermediateSize
        att = AlignedBuffer(count: N * c.qDim)        // attention output, o_proj's input
        lse = AlignedBuffer(count: N * c.numAttentionHeads)  // (B,NH,T)
        if let other {
            mid = other.mid
            rstd2 = other.rstd2
            rstd1 = other.rstd1
            q = other.q
            kStore = other.kStore
            vStore = other.vStore
            gate = other.gate
            up = other.up
            loraXA = other.loraXA
            return
        }
        rstd1 = AlignedBuffer(count: N)               // of the input norm
        q = AlignedBuffer(count: N * c.qDim)          // rotated queries (B,T,NH,hd)
        kStore = AlignedBuffer(count: N * c.kvDim)    // rotated keys (B,KVH,T,hd)
        vStore = AlignedBuffer(count: N * c.kvDim)    // values (B,KVH,T,hd)
        mid = AlignedBuffer(count: N * C)             // residual after attention
        rstd2 = AlignedBuffer(count: N)               // of the post-attention norm
        gate = AlignedBuffer(count: N * I)
        up = AlignedBuffer(count: N * I)
        if let lora {
            for p in lora.targets { loraXA[p] = AlignedBuffer(count: N * lora.rank) }
        }
    }

    /// Floats one tape holds for N tokens (the activation memory of one layer).
    static func floats(config c: Qwen2Config, N: Int, lora: LoRASpec?) -> Int {
        let perToken = c.hiddenSize + 2 * c.qDim + 2 * c.kvDim + c.numAttentionHeads + 2
            + 2 * c.intermediateSize + (lora.map { $0.rank * $0.targets.count } ?? 0)
        return N * perToken
    }

    /// Floats of the part each layer keeps for itself under checkpointing (att, lse).
    static func ownFloats(config c: Qwen2Config, N: Int) -> Int { N * (c.qDim + c.numAttentionHeads) }

    /// Its buffers, each once (shared ones included).
    var buffers: [AlignedBuffer<Float>] { [rstd1, q, kStore, vStore, att, lse, mid, rstd2, gate, up] + Array(loraXA.values) }
}

/// Buffers one training pass reuses for a batch of up to N tokens: the residual stream, the
/// final norm, per-layer inputs, the tapes, and the backward's gradients of activations.
final class TrainingWorkspace {
    let N: Int
    let B: Int
    let T: Int
    let checkpointing: Bool
    /// Each layer's input (N,C), and the last layer's output at index L (the final norm's input).
    let layerInputs: [AlignedBuffer<Float>]
    let tapes: [LayerTape]
    let final: AlignedBuffer<Float>       // final-normed hidden (N,C)
    let rstdFinal: AlignedBuffer<Float>   // (N)
    let keyMask: AlignedBuffer<UInt8>     // (B,T)
    let ids: AlignedBuffer<Int32>         // (N)
    let positions, segments: AlignedBuffer<Int32>  // (N) RoPE positions and segment ids of packed rows
    /// The current batch is packed: `positions` and `segments` apply (else 0..<T and one segment).
    var packed = false
    let targets: AlignedBuffer<Int32>     // (N) labels shifted by one
    // Scratch (not saved between forward and backward).
    let ln, act, k, v, tmp, dropped: AlignedBuffer<Float>  // ln: a normed layer or MLP input (N,C)
    let dx, dln, datt, dq, dk, dv, dact, dgate, dup, dxa, attD: AlignedBuffer<Float>
    let logits, losses: AlignedBuffer<Float>
    let headIn, headGrad: AlignedBuffer<Float>  // gathered labelled rows (lmHeadRows, C) and their gradient
    let headTargets: AlignedBuffer<Int32>
    let attScratch: AlignedBuffer<Float>  // one block of attention scores and their gradient

    /// `attentionScratch`: floats of the backend's training-attention scratch for T tokens.
    init(config c: Qwen2Config, B: Int, T: Int, lora: LoRASpec?, checkpointing: Bool, lmHeadRows: Int, attentionScratch: Int) {
        let N = B * T, C = c.hiddenSize, I = c.intermediateSize, L = c.numHiddenLayers
        self.N = N
        self.B = B
        self.T = T
        self.checkpointing = checkpointing
        layerInputs = (0...L).map { _ in AlignedBuffer(count: N * C) }
        let first = LayerTape(config: c, N: N, lora: lora)
        tapes = [first] + (1..<max(1, L)).map { _ in LayerTape(config: c, N: N, lora: lora, sharing: checkpointing ? first : nil) }
        final = AlignedBuffer(count: N * C)
        rstdFinal = AlignedBuffer(count: N)
        keyMask = AlignedBuffer(count: N)
        ids = AlignedBuffer(count: N)
        positions = AlignedBuffer(count: N)
        segments = AlignedBuffer(count: N)
        targets = AlignedBuffer(count: N)
        ln = AlignedBuffer(count: N * C)
        act = AlignedBuffer(count: N * I)
        k = AlignedBuffer(count: N * c.kvDim)
        v = AlignedBuffer(count: N * c.kvDim)
        tmp = AlignedBuffer(count: N * C)
        let r = lora?.rank ?? 0
        let dropout = (lora?.dropout ?? 0) > 0
        dropped = AlignedBuffer(count: dropout ? N * max(C, c.qDim, I) : 0)
        dx = AlignedBuffer(count: N * C)
        dln = AlignedBuffer(count: N * C)
        datt = AlignedBuffer(count: N * c.qDim)
        dq = AlignedBuffer(count: N * c.qDim)
        dk = AlignedBuffer(count: N * c.kvDim)
        dv = AlignedBuffer(count: N * c.kvDim)
        dact = AlignedBuffer(count: N * I)
        dgate = AlignedBuffer(count: N * I)
        dup = AlignedBuffer(count: N * I)
        dxa = AlignedBuffer(count: N * max(1, r))
        attD = AlignedBuffer(count: N * c.numAttentionHeads)
        logits = AlignedBuffer(count: lmHeadRows * c.vocabSize)
        losses = AlignedBuffer(count: lmHeadRows)
        headIn = AlignedBuffer(count: lmHeadRows * C)
        headGrad = AlignedBuffer(count: lmHeadRows * C)
        headTargets = AlignedBuffer(count: lmHeadRows)
        attScratch = AlignedBuffer(count: attentionScratch)
    }

    func tape(_ layer: Int) -> LayerTape { tapes[layer] }

    /// Bytes of activations kept from forward to backward: the layer inputs and the tapes
    /// (scratch, which both modes need equally, is not counted).
    var savedActivationBytes: Int {
        var seen = Set<ObjectIdentifier>()
        let kept = tapes.flatMap(\.buffers).filter { seen.insert(ObjectIdentifier($0)).inserted }
        let floats = layerInputs.reduce(0) { $0 + $1.count } + kept.reduce(0) { $0 + $1.count }
        return floats * MemoryLayout<Float>.stride
    }
}
