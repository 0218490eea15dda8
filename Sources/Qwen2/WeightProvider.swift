import QwenCore

/// One decoder layer's frozen weights. Matrices are in their stored dtype (kernels widen them to
/// fp32 tile by tile, or read half precision directly when decoding); norms and biases are fp32.
/// Shapes: q (NH·hd, C), k/v (KVH·hd, C), o (C, NH·hd), gate/up (I, C), down (C, I).
public struct LayerWeights: @unchecked Sendable {
    public var inputNorm: UnsafePointer<Float>          // (C)
    public var postAttentionNorm: UnsafePointer<Float>  // (C)
    public var q: WeightMatrix, k: WeightMatrix, v: WeightMatrix, o: WeightMatrix
    public var qBias: UnsafePointer<Float>, kBias: UnsafePointer<Float>, vBias: UnsafePointer<Float>
    public var gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix

    public init(inputNorm: UnsafePointer<Float>, postAttentionNorm: UnsafePointer<Float>,
                q: WeightMatrix, k: WeightMatrix, v: WeightMatrix, o: WeightMatrix,
                qBias: UnsafePointer<Float>, kBias: UnsafePointer<Float>, vBias: UnsafePointer<Float>,
                gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix) {
        self.inputNorm = inputNorm
        self.postAttentionNorm = postAttentionNorm
        self.q = q; self.k = k; self.v = v; self.o = o
        self.qBias = qBias; self.kBias = kBias; self.vBias = vBias
        self.gate = gate; self.up = up; self.down = down
    }

    public func matrix(_ p: Projection) -> WeightMatrix {
        switch p {
        case .q: return q
        case .k: return k
        case .v: return v
        case .o: return o
        case .gate: return gate
        case .up: return up
        case .down: return down
        }
    }
}

/// The seven Linear layers of a decoder layer, named as in Hugging Face module paths.
public enum Projection: String, CaseIterable, Sendable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// "self_attn.q_proj", "mlp.down_proj": the module path inside `model.layers.N`.
    public var modulePath: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn.\(rawValue)"
        case .gate, .up, .down: return "mlp.\(rawValue)"
        }
    }

    /// (out, in) features for a config.
    public func shape(_ c: Qwen2Config) -> (rows: Int, cols: Int) {
        switch self {
        case .q: return (c.qDim, c.hiddenSize)
        case .k, .v: return (c.kvDim, c.hiddenSize)
        case .o: return (c.hiddenSize, c.qDim)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }
}

/// Hands the model its frozen weights one layer at a time. The forward (and later backward)
/// pass calls `acquireLayer`, runs the layer and calls `releaseLayer`, so an implementation may
/// keep only its stored form resident and materialise a layer on demand: the mapped file as is
/// (fp32, bf16, f16: `StoredWeights`), NF4 dequantised into a layer-sized buffer, or a ZeRO-3
/// shard all-gathered from the other ranks. What it hands out stays valid until the release.
public protocol WeightProvider: AnyObject {
    var config: Qwen2Config { get }
    /// (V,C) token embedding.
    var embedding: WeightMatrix { get }
    /// (V,C) output projection; the embedding itself when `tie_word_embeddings`.
    var lmHead: WeightMatrix { get }
    /// (C) final RMSNorm weight.
    var finalNorm: UnsafePointer<Float> { get }
    func acquireLayer(_ index: Int) throws -> LayerWeights
    func releaseLayer(_ index: Int)
    /// `embedding`, `lmHead` and `finalNorm` are read between these calls. A provider that
    /// partitions them (ZeRO-3) gathers them here and frees them on release; the default does
    /// nothing (they are always there).
    func acquireShared() throws
    func releaseShared()
    /// Bytes of weights held resident (what the model costs in memory).
    var residentBytes: Int { get }
}

extension WeightProvider {
    public func acquireShared() throws {}
    public func releaseShared() {}
}
