import QwenCore

/// The Qwen2 decoder: embedding → layers (RMSNorm, GQA attention with RoPE and q/k/v biases,
/// RMSNorm, SwiGLU MLP, residuals) → final RMSNorm → lm_head, over a WeightProvider, with
/// optional unmerged LoRA, every op run by `backend` (CPU unless told otherwise). Batches are
/// right-padded (B,T) with an attention mask; new tokens go through a KVCache so prefill and
/// decoding share one code path.
public final class Qwen2Model: @unchecked Sendable {
    public let config: Qwen2Config
    public let weights: WeightProvider
    public var adapter: LoRAAdapter?
    /// Runs every op of the forward; its buffers hold the activations (and the KV caches made
    /// with it: `KVCache(…, backend: model.backend)`).
    public var backend: any ModelBackend {
        didSet { work = nil }
    }

    private var rope: RoPETable
    private let scratch = LinearScratch()
    private var work: ForwardWorkspace?

    public init(weights: WeightProvider, adapter: LoRAAdapter? = nil, backend: any ModelBackend = CPUBackend()) {
        self.config = weights.config
        self.weights = weights
        self.adapter = adapter
        self.backend = backend
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: 256)
    }

    /// Runs B×T new tokens (row-major ids, right padding marked 0 in `attentionMask`) at positions
    /// cache.length ..< cache.length+T, appends their keys/values to the cache and returns the
    /// final-normed hidden states (B·T, C) in the backend's memory, valid until the next call
    /// (`logits(hidden:rows:)` and `score(hidden:targets:)` read them).
    public func forward(ids: [Int32], attentionMask: [Int32]? = nil, B: Int, T: Int,
                        cache: KVCache) throws -> DevicePointer<Float> {
        let c = config
        let N = B * T
        guard ids.count == N, attentionMask.map({ $0.count == N }) ?? true else {
            throw Qwen2Error.badInput("forward: expected \(N) ids and mask values for a (\(B), \(T)) batch, got \(ids.count)")
        }
        guard B == cache.batch else {
            throw Qwen2Error.badInput("forward: the batch has \(B) rows but the KV cache was made for \(cache.batch)")
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw Qwen2Error.badInput("token id \(bad) is outside the vocabulary (0..<\(c.vocabSize))")
        }
        let p0 = cache.length
        if p0 + T > cache.capacity || p0 + T > c.maxPositionEmbeddings {
            throw Qwen2Error.badInput(
                "\(p0 + T) positions exceed the model's limit (max_position_embeddings \(c.maxPositionEmbeddings), cache \(cache.capacity))")
        }
        ensureRope(positions: p0 + T)
        let w = workspace(N: N)
        let be = backend
        be.withHostAccess(cache.keyMask.pointer, count: cache.keyMask.count) { keyMask in
            for b in 0..<B {
                for t in 0..<T {
                    keyMask[b * cache.capacity + p0 + t] = UInt8(attentionMask.map { $0[b * T + t] != 0 ? 1 : 0 } ?? 1)
                }
            }
        }
        ids.withUnsafeBufferPointer { be.copyToDevice(w.ids.pointer, from: $0.baseAddress!, count: N) }
        be.embeddingForward(out: w.x.pointer, ids: w.ids.readOnly, table: weights.embedding, N: N)
        for l in 0..<c.numHiddenLayers {
            let lw = try weights.acquireLayer(l)
            layerForward(layer: l, weights: lw, x: w.x.pointer, acts: w.acts, B: B, T: T, cache: cache)
            weights.releaseLayer(l)
        }
        cache.length = p0 + T
        be.rmsNormForward(out: w.out.pointer, rstd: nil, inp: w.x.readOnly, weight: weights.finalNorm,
                       N: N, C: c.hiddenSize, eps: c.rmsNormEps)
        return w.out.readOnly
    }

    /// One decoder layer on the residual stream x (N,C) in place, for B×T new tokens at positions
    /// cache.length ..< cache.length+T (the caller advances cache.length after the last layer);
    /// `acts` keeps what a backward pass needs (norm outputs and rstd, q/k/v after RoPE, attention
    /// output and log-sum-exp, gate/up/act). A trainer runs it per layer with its own activations.
    public func layerForward(layer l: Int, weights lw: LayerWeights, x: DeviceMutablePointer<Float>,
                      acts a: LayerActivations, B: Int, T: Int, cache: KVCache) {
        let c = config, be = backend
        let N = B * T, C = c.hiddenSize, I = c.intermediateSize
        let lora = adapter.map { $0.layers[l] } ?? [:]
        func linear(_ p: Projection, _ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>,
                    bias: UnsafePointer<Float>? = nil) {
            be.linearForward(out: out, inp: inp, weight: lw.matrix(p), bias: bias, N: N, scratch: scratch, accumulate: false)
            if let pair = lora[p] { be.loraForward(out: out, inp: inp, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        be.rmsNormForward(out: a.ln1.pointer, rstd: a.rstd1.pointer, inp: x.readOnly, weight: lw.inputNorm, N: N, C: C, eps: c.rmsNormEps)
        be.linearForwardMany([(a.q.pointer, lw.q, lw.qBias), (a.k.pointer, lw.k, lw.kBias), (a.v.pointer, lw.v, lw.vBias)],
                          inp: a.ln1.readOnly, N: N, scratch: scratch)
        for (p, out) in [(Projection.q, a.q.pointer), (.k, a.k.pointer), (.v, a.v.pointer)] {
            if let pair = lora[p] { be.loraForward(out: out, inp: a.ln1.readOnly, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        let p0 = cache.length
        be.ropeForward(a.q.pointer, table: rope, N: N, T: T, H: c.numAttentionHeads, firstPosition: p0, positions: nil)
        be.ropeForward(a.k.pointer, table: rope, N: N, T: T, H: c.numKeyValueHeads, firstPosition: p0, positions: nil)
        be.kvStoreWrite(store: cache.keys[l].pointer, inp: a.k.readOnly, B: B, T: T, KVH: c.numKeyValueHeads,
                     hd: c.headDim, S: cache.capacity, firstPosition: p0)
        be.kvStoreWrite(store: cache.values[l].pointer, inp: a.v.readOnly, B: B, T: T, KVH: c.numKeyValueHeads,
                     hd: c.headDim, S: cache.capacity, firstPosition: p0)
        be.attentionForward(out: a.att.pointer, lse: a.lse.pointer, q: a.q.readOnly, kStore: cache.keys[l].readOnly,
                         vStore: cache.values[l].readOnly, keyMask: cache.keyMask.readOnly, B: B, T: T,
                         NH: c.numAttentionHeads, KVH: c.numKeyValueHeads, hd: c.headDim,
                         S: cache.capacity, firstPosition: p0)
        linear(.o, a.attProj.pointer, a.att.readOnly)
        be.residualAdd(x, a.attProj.readOnly, count: N * C)
        be.rmsNormForward(out: a.ln2.pointer, rstd: a.rstd2.pointer, inp: x.readOnly, weight: lw.postAttentionNorm, N: N, C: C, eps: c.rmsNormEps)
        be.linearForwardMany([(a.gate.pointer, lw.gate, nil), (a.up.pointer, lw.up, nil)], inp: a.ln2.readOnly, N: N, scratch: scratch)
        for (p, out) in [(Projection.gate, a.gate.pointer), (.up, a.up.pointer)] {
            if let pair = lora[p] { be.loraForward(out: out, inp: a.ln2.readOnly, lora: pair, N: N, tmp: a.loraTmp.pointer) }
        }
        be.swigluForward(out: a.act.pointer, gate: a.gate.readOnly, up: a.up.readOnly, count: N * I)
        linear(.down, a.mlpOut.pointer, a.act.readOnly)
        be.residualAdd(x, a.mlpOut.readOnly, count: N * C)
    }

    /// logits (rows.count, V) of the given rows of `hidden` (N,C), copied to the host (sampling
    /// and comparisons read them there).
    public func logits(hidden: DevicePointer<Float>, rows: [Int]) -> [Float] {
        let C = config.hiddenSize, V = config.vocabSize
        let be = backend
        let picked = be.allocate(Float.self, count: rows.count * C)
        let out = be.allocate(Float.self, count: rows.count * V)
        for (i, r) in rows.enumerated() { be.copy(picked.pointer + i * C, from: hidden + r * C, count: C) }
        be.linearForward(out: out.pointer, inp: picked.readOnly, weight: weights.lmHead, bias: nil,
                         N: rows.count, scratch: scratch, accumulate: false)
        return be.download(out.readOnly, count: out.count)
    }

    /// Next-token loss and accuracy of hidden (N,C) against targets (N) (−100 = ignored), the
    /// lm_head run `lmHeadChunk` tokens at a time.
    public func score(hidden: DevicePointer<Float>, targets: [Int32]) -> TokenScores {
        let C = config.hiddenSize, V = config.vocabSize, N = targets.count
        let be = backend
        let logits = be.allocate(Float.self, count: min(N, lmHeadChunk) * V)
        let deviceTargets = be.upload(targets)
        var total = TokenScores()
        var n0 = 0
        while n0 < N {
            let n = min(lmHeadChunk, N - n0)
            if targets[n0..<(n0 + n)].contains(where: { $0 >= 0 }) {
                be.linearForward(out: logits.pointer, inp: hidden + n0 * C, weight: weights.lmHead, bias: nil,
                                 N: n, scratch: scratch, accumulate: false)
                total.add(be.scoreLogits(logits.readOnly, targets: deviceTargets.readOnly + n0, n: n, V: V))
            }
            n0 += n
        }
        return total
    }

    /// Makes sure RoPE tables cover `positions` (forward does this; a caller of layerForward must).
    public func ensureRope(positions: Int) {
        if positions <= rope.positions { return }
        var n = rope.positions
        while n < positions { n *= 2 }
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: min(n, max(positions, config.maxPositionEmbeddings)))
    }

    private func workspace(N: Int) -> ForwardWorkspace {
        if let w = work, w.N >= N, w.loraRank >= (adapter?.rank ?? 0) { return w }
        let w = ForwardWorkspace(config: config, N: N, loraRank: adapter?.rank ?? 0, backend: backend)
        work = w
        return w
    }
}

/// The activations of one layer's forward for N tokens (the backend's memory); what a backward
/// pass would save per layer.
public final class LayerActivations {
    public let ln1, rstd1, q, k, v, att, lse, attProj, ln2, rstd2, gate, up, act, mlpOut, loraTmp: DeviceBuffer<Float>

    public init(config c: Qwen2Config, N: Int, loraRank: Int, backend: any Backend) {
        func buffer(_ count: Int) -> DeviceBuffer<Float> { backend.allocate(Float.self, count: count) }
        ln1 = buffer(N * c.hiddenSize)
        rstd1 = buffer(N)
        q = buffer(N * c.qDim)
        k = buffer(N * c.kvDim)
        v = buffer(N * c.kvDim)
        att = buffer(N * c.qDim)
        lse = buffer(N * c.numAttentionHeads)
        attProj = buffer(N * c.hiddenSize)
        ln2 = buffer(N * c.hiddenSize)
        rstd2 = buffer(N)
        gate = buffer(N * c.intermediateSize)
        up = buffer(N * c.intermediateSize)
        act = buffer(N * c.intermediateSize)
        mlpOut = buffer(N * c.hiddenSize)
        loraTmp = buffer(N * max(1, loraRank))
    }
}

/// Buffers for one forward of up to N tokens: the ids, the residual stream, its final norm, one
/// layer's activations.
final class ForwardWorkspace {
    let N: Int
    let loraRank: Int
    let ids: DeviceBuffer<Int32>
    let x: DeviceBuffer<Float>
    let out: DeviceBuffer<Float>
    let acts: LayerActivations

    init(config: Qwen2Config, N: Int, loraRank: Int, backend: any Backend) {
        self.N = N
        self.loraRank = loraRank
        ids = backend.allocate(Int32.self, count: N)
        x = backend.allocate(Float.self, count: N * config.hiddenSize)
        out = backend.allocate(Float.self, count: N * config.hiddenSize)
        acts = LayerActivations(config: config, N: N, loraRank: loraRank, backend: backend)
    }
}
