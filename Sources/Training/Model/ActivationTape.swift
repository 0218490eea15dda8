import QwenCore
import Qwen2

// What the training forward keeps for backward, per decoder layer, and the scratch both share.
// N = B·T tokens, C hidden, Q = heads·hd, KV = kv heads·hd, I intermediate, r LoRA rank.
// Every buffer is the backend's memory (`DeviceBuffer`); the host fills the batch's ids, masks
// and targets and reads the losses through the backend's explicit host access.

/// One layer's saved activations. A layer that is not recomputed (no gradient checkpointing, or a
/// layer past `recompute_num_layers`) has a whole one; a recomputed layer keeps its input and its
/// attention's result (`att` and `lse`: the quadratic attention is not worth recomputing for
/// NH·(hd+1) floats a token), and shares the rest (q, k, v, mid, gate, up, LoRA xa) with the other
/// recomputed layers, refilled by recomputation in backward (see `TrainingWorkspace`).
/// The normed inputs of attention and MLP are not kept: backward recomputes them from the layer
/// input / `mid` and the kept rstd (the same code on the same numbers, so the same bits) — two
/// (N,C) buffers less per layer for one RMSNorm each.
final class LayerTape {
    let rstd1, q, kStore, vStore, att, lse, mid, rstd2, gate, up: DeviceBuffer<Float>
    /// xa = dropout(x)·Aᵀ (N,r) of each LoRA target.
    var loraXA: [Projection: DeviceBuffer<Float>] = [:]

    /// `sharing`: a tape whose recomputable buffers this one uses too (checkpointing).
    init(config c: Qwen2Config, N: Int, lora: LoRASpec?, backend: any Backend, sharing other: LayerTape? = nil) {
        let C = c.hiddenSize, I = c.intermediateSize
        func buffer(_ count: Int) -> DeviceBuffer<Float> { backend.allocate(Float.self, count: count) }
        att = buffer(N * c.qDim)        // attention output, o_proj's input
        lse = buffer(N * c.numAttentionHeads)  // (B,NH,T)
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
        rstd1 = buffer(N)               // of the input norm
        q = buffer(N * c.qDim)          // rotated queries (B,T,NH,hd)
        kStore = buffer(N * c.kvDim)    // rotated keys (B,KVH,T,hd)
        vStore = buffer(N * c.kvDim)    // values (B,KVH,T,hd)
        mid = buffer(N * C)             // residual after attention
        rstd2 = buffer(N)               // of the post-attention norm
        gate = buffer(N * I)
        up = buffer(N * I)
        if let lora {
            for p in lora.targets { loraXA[p] = buffer(N * lora.rank) }
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
    var buffers: [DeviceBuffer<Float>] { [rstd1, q, kStore, vStore, att, lse, mid, rstd2, gate, up] + Array(loraXA.values) }
}

/// Buffers one training pass reuses for a batch of up to N tokens: the residual stream, the
/// final norm, per-layer inputs, the tapes, and the backward's gradients of activations.
final class TrainingWorkspace {
    let N: Int
    let B: Int
    let T: Int
    /// Layers 0..<recomputedLayers are recomputed in backward (gradient checkpointing); the rest
    /// keep their whole tape.
    let recomputedLayers: Int
    /// Each layer's input (N,C), and the last layer's output at index L (the final norm's input).
    let layerInputs: [DeviceBuffer<Float>]
    let tapes: [LayerTape]
    let final: DeviceBuffer<Float>       // final-normed hidden (N,C)
    let rstdFinal: DeviceBuffer<Float>   // (N)
    let keyMask: DeviceBuffer<UInt8>     // (B,T)
    let ids: DeviceBuffer<Int32>         // (N)
    let positions, segments: DeviceBuffer<Int32>  // (N) RoPE positions and segment ids of packed rows
    /// The current batch is packed: `positions` and `segments` apply (else 0..<T and one segment).
    var packed = false
    let targets: DeviceBuffer<Int32>     // (N) labels shifted by one
    /// The same targets on the host (which rows the lm_head scores).
    var hostTargets: [Int32]
    // Scratch (not saved between forward and backward).
    let ln, act, k, v, tmp, dropped: DeviceBuffer<Float>  // ln: a normed layer or MLP input (N,C)
    let dx, dln, datt, dq, dk, dv, dact, dgate, dup, dxa, attD: DeviceBuffer<Float>
    let logits, losses: DeviceBuffer<Float>
    let headIn, headGrad: DeviceBuffer<Float>  // gathered labelled rows (lmHeadRows, C) and their gradient
    let headTargets: DeviceBuffer<Int32>
    let headScales: DeviceBuffer<Float>  // (lmHeadRows) per-row loss weights (DPO)
    let attScratch: DeviceBuffer<Float>  // one block of attention scores and their gradient

    /// `attentionScratch`: floats of the backend's training-attention scratch for T tokens.
    /// `recomputedLayers`: how many layers, from the first, backward recomputes (0: none; at most
    /// all but the last: see `Qwen2TrainingPass.recomputedLayers`).
    init(config c: Qwen2Config, B: Int, T: Int, lora: LoRASpec?, recomputedLayers: Int, lmHeadRows: Int, attentionScratch: Int,
         backend: any Backend) {
        let N = B * T, C = c.hiddenSize, I = c.intermediateSize, L = c.numHiddenLayers
        func buffer(_ count: Int) -> DeviceBuffer<Float> { backend.allocate(Float.self, count: count) }
        self.N = N
        self.B = B
        self.T = T
        self.recomputedLayers = recomputedLayers
        layerInputs = (0...L).map { _ in buffer(N * C) }
        tapes = Self.tapes(config: c, layers: max(1, L), N: N, lora: lora, recomputed: recomputedLayers, backend: backend)
        final = buffer(N * C)
        rstdFinal = buffer(N)
        keyMask = backend.allocate(UInt8.self, count: N)
        ids = backend.allocate(Int32.self, count: N)
        positions = backend.allocate(Int32.self, count: N)
        segments = backend.allocate(Int32.self, count: N)
        targets = backend.allocate(Int32.self, count: N)
        hostTargets = [Int32](repeating: 0, count: N)
        ln = buffer(N * C)
        act = buffer(N * I)
        k = buffer(N * c.kvDim)
        v = buffer(N * c.kvDim)
        tmp = buffer(N * C)
        let r = lora?.rank ?? 0
        let dropout = (lora?.dropout ?? 0) > 0
        dropped = buffer(dropout ? N * max(C, c.qDim, I) : 0)
        dx = buffer(N * C)
        dln = buffer(N * C)
        datt = buffer(N * c.qDim)
        dq = buffer(N * c.qDim)
        dk = buffer(N * c.kvDim)
        dv = buffer(N * c.kvDim)
        dact = buffer(N * I)
        dgate = buffer(N * I)
        dup = buffer(N * I)
        dxa = buffer(N * max(1, r))
        attD = buffer(N * c.numAttentionHeads)
        logits = buffer(lmHeadRows * c.vocabSize)
        losses = buffer(lmHeadRows)
        headIn = buffer(lmHeadRows * C)
        headGrad = buffer(lmHeadRows * C)
        headTargets = backend.allocate(Int32.self, count: lmHeadRows)
        headScales = buffer(lmHeadRows)
        attScratch = buffer(attentionScratch)
    }

    /// The recomputed layers 0..<k (k < L) share one whole tape: that of layer k, the first layer
    /// not recomputed, so sharing costs nothing. Forward fills layer k's tape after the recomputed
    /// layers have used it as scratch, and backward refills it for them only once layer k's
    /// backward is done with it.
    static func tapes(config c: Qwen2Config, layers L: Int, N: Int, lora: LoRASpec?, recomputed k: Int,
                      backend: any Backend) -> [LayerTape] {
        precondition(k < L, "the last layer is never recomputed")
        let owner = LayerTape(config: c, N: N, lora: lora, backend: backend)
        return (0..<L).map { l in
            if l == k { return owner }
            return LayerTape(config: c, N: N, lora: lora, backend: backend, sharing: l < k ? owner : nil)
        }
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
