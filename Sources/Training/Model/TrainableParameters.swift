import Foundation
import QwenCore
import Qwen2

// What a training run trains, and where each tensor sits in the flat parameter store:
// LoRA A/B of chosen projections (names as PEFT's adapter_model.safetensors), or every parameter
// of the model (names as Hugging Face's, in PyTorch's `named_parameters()` order, a tied
// embedding once).

/// LoRA hyper-parameters as PEFT's LoraConfig: rank, alpha, dropout, rsLoRA, target modules.
public struct LoRASpec: Sendable, Equatable {
    public let rank: Int
    public let alpha: Double
    public let dropout: Float
    public let useRSLoRA: Bool
    /// Targets in the model's order (q, k, v, o, gate, up, down).
    public let targets: [Projection]

    /// Checks the values as a config would give them: `targetModules` names from q_proj … down_proj,
    /// or "all-linear" (every projection; lm_head is never a target, as in PEFT).
    public init(rank: Int, alpha: Double, dropout: Float = 0, useRSLoRA: Bool = false,
                targetModules: [String]) throws {
        let source = "training config"
        guard rank > 0 else {
            throw TrainingError.badConfigValue(key: "lora_rank", source: source, message: "must be at least 1, got \(rank)")
        }
        guard alpha.isFinite, alpha > 0 else {
            throw TrainingError.badConfigValue(key: "lora_alpha", source: source, message: "must be positive, got \(alpha)")
        }
        guard dropout >= 0, dropout < 1 else {
            throw TrainingError.badConfigValue(key: "lora_dropout", source: source, message: "must be in [0, 1), got \(dropout)")
        }
        var chosen = Set<Projection>()
        for name in targetModules {
            let n = name.trimmingCharacters(in: .whitespaces)
            if n == "all-linear" || n == "all_linear" || n == "all" {
                chosen.formUnion(Projection.allCases)
            } else if let p = Projection(rawValue: n) {
                chosen.insert(p)
            } else {
                let known = Projection.allCases.map(\.rawValue) + ["all-linear"]
                let hint = closestMatch(to: n, in: known).map { " Did you mean \"\($0)\"?" } ?? ""
                throw TrainingError.badConfigValue(
                    key: "lora_target_modules", source: source,
                    message: "unknown module \"\(n)\".\(hint) Use any of \(known.joined(separator: ", ")).")
            }
        }
        guard !chosen.isEmpty else {
            throw TrainingError.badConfigValue(key: "lora_target_modules", source: source,
                                               message: "names no module; give e.g. [\"q_proj\", \"v_proj\"] or \"all-linear\"")
        }
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.useRSLoRA = useRSLoRA
        targets = Projection.allCases.filter { chosen.contains($0) }
    }

    /// PEFT's scaling: alpha / r, or alpha / √r with rsLoRA.
    public var scale: Float { LoRAAdapter.scale(alpha: alpha, rank: rank, rsLoRA: useRSLoRA) }

    /// The LoRA keys of a training config: lora_rank, lora_alpha, lora_dropout, use_rslora,
    /// lora_target_modules.
    public init(config: TrainingConfig) throws {
        try self.init(rank: config.loraRank, alpha: config.loraAlpha, dropout: Float(config.trainingLoRADropout),
                      useRSLoRA: config.useRSLoRA, targetModules: config.loraTargetModules)
    }
}

/// Full fine-tuning or LoRA.
public enum TrainingMode: Sendable, Equatable {
    case full
    case lora(LoRASpec)
}

public enum TrainableParameters {
    /// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" (PEFT's saved key).
    public static func loraName(layer: Int, _ p: Projection, _ part: String) -> String {
        "base_model.model.model.layers.\(layer).\(p.modulePath).lora_\(part).weight"
    }

    /// "model.layers.3.mlp.down_proj.weight", "model.layers.3.input_layernorm.weight"…
    public static func layerName(_ layer: Int, _ suffix: String) -> String { "model.layers.\(layer).\(suffix)" }

    /// A (r, in) and B (out, r) for each target of each layer, as PEFT orders its parameters.
    public static func loraLayout(config c: Qwen2Config, spec: LoRASpec) throws -> ParameterLayout {
        var layout = ParameterLayout()
        for l in 0..<c.numHiddenLayers {
            for p in spec.targets {
                let s = p.shape(c)
                try layout.append(loraName(layer: l, p, "A"), shape: [spec.rank, s.cols])
                try layout.append(loraName(layer: l, p, "B"), shape: [s.rows, spec.rank])
            }
        }
        return layout
    }

    /// Every parameter, in `Qwen2ForCausalLM.named_parameters()` order; lm_head only when untied.
    public static func fullLayout(config c: Qwen2Config) throws -> ParameterLayout {
        var layout = ParameterLayout()
        try layout.append("model.embed_tokens.weight", shape: [c.vocabSize, c.hiddenSize])
        for l in 0..<c.numHiddenLayers {
            for p in Projection.allCases {
                let s = p.shape(c)
                try layout.append(layerName(l, p.modulePath + ".weight"), shape: [s.rows, s.cols])
                if p == .q || p == .k || p == .v {
                    try layout.append(layerName(l, p.modulePath + ".bias"), shape: [s.rows])
                }
            }
            try layout.append(layerName(l, "input_layernorm.weight"), shape: [c.hiddenSize])
            try layout.append(layerName(l, "post_attention_layernorm.weight"), shape: [c.hiddenSize])
        }
        try layout.append("model.norm.weight", shape: [c.hiddenSize])
        if !c.tieWordEmbeddings {
            try layout.append("lm_head.weight", shape: [c.vocabSize, c.hiddenSize])
        }
        return layout
    }

    /// PEFT's fresh adapter: A kaiming-uniform(a=√5), i.e. U(−1/√in, 1/√in), B zeros. Seeded
    /// (SplitMix64), so the same seed gives the same adapter; the values differ from torch's.
    public static func initializeLoRA(_ state: TrainableState, config c: Qwen2Config, spec: LoRASpec, seed: UInt64) throws {
        var rng = seed
        for l in 0..<c.numHiddenLayers {
            for p in spec.targets {
                let a = try state.param(loraName(layer: l, p, "A"))
                let bound = 1 / Float(p.shape(c).cols).squareRoot()
                for i in a.indices { a[i] = (2 * uniform01(&rng) - 1) * bound }
                let b = try state.param(loraName(layer: l, p, "B"))
                for i in b.indices { b[i] = 0 }
            }
        }
    }

    /// Copies an existing adapter (e.g. one loaded from a PEFT folder) into the parameters, to
    /// continue training it. Every target must be present with matching shapes.
    public static func loadLoRA(_ state: TrainableState, from adapter: LoRAAdapter, config c: Qwen2Config,
                                spec: LoRASpec, source: String = "adapter") throws {
        guard adapter.layers.count == c.numHiddenLayers else {
            throw Qwen2Error.badAdapter(path: source, detail: "has \(adapter.layers.count) layers, the model \(c.numHiddenLayers)")
        }
        for l in 0..<c.numHiddenLayers {
            for p in spec.targets {
                guard let w = adapter.layers[l][p] else {
                    throw Qwen2Error.badAdapter(path: source, detail: "no LoRA weights for layer \(l) \(p.modulePath), which lora_target_modules names")
                }
                let s = p.shape(c)
                guard w.rank == spec.rank, w.inFeatures == s.cols, w.outFeatures == s.rows else {
                    throw Qwen2Error.badAdapter(
                        path: source,
                        detail: "layer \(l) \(p.modulePath): A (\(w.rank), \(w.inFeatures)), B (\(w.outFeatures), \(w.rank)) do not fit rank \(spec.rank) and the layer's (\(s.rows), \(s.cols))")
                }
                let a = try state.param(loraName(layer: l, p, "A")), b = try state.param(loraName(layer: l, p, "B"))
                a.baseAddress!.update(from: w.a.pointer, count: a.count)
                b.baseAddress!.update(from: w.b.pointer, count: b.count)
            }
        }
    }

    /// The trained LoRA weights as the model's adapter (for evaluation, generation or saving).
    public static func makeAdapter(_ state: TrainableState, config c: Qwen2Config, spec: LoRASpec) throws -> LoRAAdapter {
        let adapter = LoRAAdapter(rank: spec.rank, alpha: spec.alpha, useRSLoRA: spec.useRSLoRA, layerCount: c.numHiddenLayers)
        for l in 0..<c.numHiddenLayers {
            for p in spec.targets {
                let s = p.shape(c)
                let w = LoRAWeights(rank: spec.rank, inFeatures: s.cols, outFeatures: s.rows, scale: spec.scale)
                let a = try state.param(loraName(layer: l, p, "A")), b = try state.param(loraName(layer: l, p, "B"))
                w.a.pointer.update(from: a.baseAddress!, count: a.count)
                w.b.pointer.update(from: b.baseAddress!, count: b.count)
                adapter.layers[l][p] = w
            }
        }
        return adapter
    }

    /// Every tensor of a model, by its Hugging Face name, in checkpoint order: the matrices
    /// (embedding, the seven projections of each layer, an untied lm_head) to `matrix`, the
    /// vectors (biases, norms) with their length to `vector`. Each layer is acquired and released.
    static func forEachBaseTensor(of weights: WeightProvider, matrix put: (String, WeightMatrix) throws -> Void,
                                  vector putVector: (String, UnsafePointer<Float>, Int) throws -> Void) throws {
        let c = weights.config
        try put("model.embed_tokens.weight", weights.embedding)
        for l in 0..<c.numHiddenLayers {
            let lw = try weights.acquireLayer(l)
            defer { weights.releaseLayer(l) }
            for p in Projection.allCases { try put(layerName(l, p.modulePath + ".weight"), lw.matrix(p)) }
            try putVector(layerName(l, "self_attn.q_proj.bias"), lw.qBias, c.qDim)
            try putVector(layerName(l, "self_attn.k_proj.bias"), lw.kBias, c.kvDim)
            try putVector(layerName(l, "self_attn.v_proj.bias"), lw.vBias, c.kvDim)
            try putVector(layerName(l, "input_layernorm.weight"), lw.inputNorm, c.hiddenSize)
            try putVector(layerName(l, "post_attention_layernorm.weight"), lw.postAttentionNorm, c.hiddenSize)
        }
        try putVector("model.norm.weight", weights.finalNorm, c.hiddenSize)
        if !c.tieWordEmbeddings { try put("lm_head.weight", weights.lmHead) }
    }

    /// Full fine-tuning's f32 master weights from the model's stored weights (widened).
    public static func copyWeights(from weights: WeightProvider, into state: TrainableState) throws {
        func put(_ name: String, _ m: WeightMatrix) throws {
            let dst = try state.param(name)
            m.widenRows(0..<m.rows, into: dst.baseAddress!)
        }
        func put(_ name: String, _ v: UnsafePointer<Float>, _ n: Int) throws {
            try state.param(name).baseAddress!.update(from: v, count: n)
        }
        try forEachBaseTensor(of: weights, matrix: put, vector: put)
    }
}

/// Uniform in [0, 1) from a SplitMix64 state.
func uniform01(_ state: inout UInt64) -> Float {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return Float(z >> 40) * 0x1p-24
}
