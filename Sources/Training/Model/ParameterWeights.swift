import QwenCore
import Qwen2

/// Full fine-tuning's weights: a WeightProvider whose tensors are views into the f32 master
/// parameters of a TrainableState laid out by `TrainableParameters.fullLayout`. The model and the
/// training pass read the weights AdamW updates, with no copy; a tied lm_head is the embedding.
public final class ParameterWeights: WeightProvider {
    public let config: Qwen2Config
    public let state: TrainableState
    public let embedding: WeightMatrix
    public let lmHead: WeightMatrix
    public let finalNorm: UnsafePointer<Float>
    private let layers: [LayerWeights]

    public init(config c: Qwen2Config, state: TrainableState) throws {
        self.config = c
        self.state = state
        func p(_ name: String) throws -> UnsafePointer<Float> { UnsafePointer(try state.param(name).baseAddress!) }
        func m(_ name: String, _ rows: Int, _ cols: Int) throws -> WeightMatrix {
            WeightMatrix(rows: rows, cols: cols, float32: try p(name))
        }
        embedding = try m("model.embed_tokens.weight", c.vocabSize, c.hiddenSize)
        lmHead = c.tieWordEmbeddings ? embedding : try m("lm_head.weight", c.vocabSize, c.hiddenSize)
        finalNorm = try p("model.norm.weight")
        var layers: [LayerWeights] = []
        for l in 0..<c.numHiddenLayers {
            func n(_ s: String) -> String { TrainableParameters.layerName(l, s) }
            func proj(_ pr: Projection) throws -> WeightMatrix {
                let s = pr.shape(c)
                return try m(n(pr.modulePath + ".weight"), s.rows, s.cols)
            }
            layers.append(LayerWeights(
                inputNorm: try p(n("input_layernorm.weight")),
                postAttentionNorm: try p(n("post_attention_layernorm.weight")),
                q: try proj(.q), k: try proj(.k), v: try proj(.v), o: try proj(.o),
                qBias: try p(n("self_attn.q_proj.bias")), kBias: try p(n("self_attn.k_proj.bias")),
                vBias: try p(n("self_attn.v_proj.bias")),
                gate: try proj(.gate), up: try proj(.up), down: try proj(.down)))
        }
        self.layers = layers
    }

    public func acquireLayer(_ index: Int) throws -> LayerWeights { layers[index] }
    public func releaseLayer(_ index: Int) {}
    public var residentBytes: Int { state.storageCount * MemoryLayout<Float>.stride }
}
