import Foundation
import JSON

/// A Qwen2 `config.json`, keys named as Hugging Face writes them. Reads both the old
/// (`rope_theta`) and the transformers 5 (`rope_parameters.rope_theta`) spelling.
public struct Qwen2Config: Codable, Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Per-head width; `hidden_size / num_attention_heads` when the file has no `head_dim`.
    public var headDim: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// The dtype the weights were saved in (`dtype` or `torch_dtype`), informational.
    public var dtype: String?
    /// Standard deviation of the normal initialisation of Linear and Embedding weights.
    public var initializerRange: Double = 0.02

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int? = nil,
                maxPositionEmbeddings: Int = 32768, rmsNormEps: Float = 1e-6,
                ropeTheta: Double = 1_000_000, tieWordEmbeddings: Bool = false,
                bosTokenId: Int? = nil, eosTokenIds: [Int] = [], dtype: String? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? hiddenSize / max(1, numAttentionHeads)
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.dtype = dtype
    }

    /// Query width: heads × head_dim (equals hidden_size unless `head_dim` says otherwise).
    public var qDim: Int { numAttentionHeads * headDim }
    /// Key / value width: kv heads × head_dim.
    public var kvDim: Int { numKeyValueHeads * headDim }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeParameters = "rope_parameters"
        case ropeScaling = "rope_scaling"
        case tieWordEmbeddings = "tie_word_embeddings", bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id", dtype, torchDtype = "torch_dtype"
        case useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window"
        case modelType = "model_type", architectures, hiddenAct = "hidden_act"
        case attentionDropout = "attention_dropout", maxWindowLayers = "max_window_layers"
        case useCache = "use_cache", initializerRange = "initializer_range"
    }

    struct RopeParameters: Codable {
        var ropeTheta: Double?
        var ropeType: String?
        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta", ropeType = "rope_type" }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        let hd = try c.decodeIfPresent(Int.self, forKey: .headDim)
        headDim = hd ?? hiddenSize / max(1, numAttentionHeads)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 32768
        rmsNormEps = Float(try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6)
        let params = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        let scaling = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling)
        for p in [params, scaling].compactMap({ $0 }) {
            if let t = p.ropeType, t != "default" {
                throw DecodingError.dataCorruptedError(
                    forKey: .ropeParameters, in: c,
                    debugDescription: "rope_type \"\(t)\" is not supported (only \"default\" RoPE)")
            }
        }
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
            ?? params?.ropeTheta ?? 10000
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        if let many = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = many
        } else {
            eosTokenIds = (try c.decodeIfPresent(Int.self, forKey: .eosTokenId)).map { [$0] } ?? []
        }
        dtype = try c.decodeIfPresent(String.self, forKey: .dtype)
            ?? c.decodeIfPresent(String.self, forKey: .torchDtype)
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? 0.02

        if let type = try c.decodeIfPresent(String.self, forKey: .modelType), type != "qwen2" {
            throw DecodingError.dataCorruptedError(
                forKey: .modelType, in: c,
                debugDescription: "model_type \"\(type)\" is not supported: qwenft runs Qwen2-family models (model_type \"qwen2\")")
        }
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw DecodingError.dataCorruptedError(
                forKey: .hiddenAct, in: c, debugDescription: "hidden_act \"\(act)\" is not supported (only silu)")
        }
        let sliding = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? false
        if sliding {
            throw DecodingError.dataCorruptedError(
                forKey: .useSlidingWindow, in: c,
                debugDescription: "sliding-window attention is not supported; set \"use_sliding_window\": false if the model was trained without it")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(["Qwen2ForCausalLM"], forKey: .architectures)
        try c.encode("qwen2", forKey: .modelType)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(Double(rmsNormEps), forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(RopeParameters(ropeTheta: ropeTheta, ropeType: "default"), forKey: .ropeParameters)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenId) }
        else if !eosTokenIds.isEmpty { try c.encode(eosTokenIds, forKey: .eosTokenId) }
        try c.encodeIfPresent(dtype, forKey: .torchDtype)
        try c.encode("silu", forKey: .hiddenAct)
        try c.encode(0.0, forKey: .attentionDropout)
        try c.encode(false, forKey: .useSlidingWindow)
        try c.encode(numHiddenLayers, forKey: .maxWindowLayers)
        try c.encode(true, forKey: .useCache)
        try c.encode(initializerRange, forKey: .initializerRange)
    }

    /// Reads and checks `config.json`; every problem names the file and the key.
    public static func load(_ url: URL) throws -> Qwen2Config {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw Qwen2Error.missingFile(path: url.path, hint: "A model folder needs config.json (make one with `qwenft init`).")
        }
        let config = try decodeJSONFile(Qwen2Config.self, data, path: url.path)
        try config.validate(path: url.path)
        return config
    }

    /// Checks the shapes make a model: positive sizes, heads divisible into kv groups, even head_dim.
    public func validate(path: String = "config.json") throws {
        let positive: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
            ("max_position_embeddings", maxPositionEmbeddings),
        ]
        for (key, value) in positive where value <= 0 {
            throw Qwen2Error.unsupportedConfig(path: path, key: key, detail: "must be positive, got \(value)")
        }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw Qwen2Error.unsupportedConfig(
                path: path, key: "num_key_value_heads",
                detail: "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        }
        if headDim % 2 != 0 {
            throw Qwen2Error.unsupportedConfig(path: path, key: "head_dim", detail: "must be even for RoPE, got \(headDim)")
        }
        if !(rmsNormEps > 0) || !(ropeTheta > 0) {
            throw Qwen2Error.unsupportedConfig(path: path, key: rmsNormEps > 0 ? "rope_theta" : "rms_norm_eps",
                                               detail: "must be positive")
        }
    }
}

/// Parses a JSON file's bytes and decodes `T`; a syntax error names the line and column, a
/// decoding error the key path.
func decodeJSONFile<T: Decodable>(_ type: T.Type, _ data: Data, path: String) throws -> T {
    do {
        return try JSONValueDecoder().decode(type, from: try JSONValue.parse(Array(data)))
    } catch let error as JSONError {
        throw Qwen2Error.badJSON(path: path, detail: error.description)
    } catch let error as DecodingError {
        throw Qwen2Error.badJSON(path: path, detail: describe(error))
    }
}

/// A one-line account of a decoding error: the key path and what was wrong.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case let .keyNotFound(key, ctx):
        let at = path(ctx.codingPath + [key])
        return "missing key \"\(at)\""
    case let .typeMismatch(type, ctx):
        return "key \"\(path(ctx.codingPath))\": expected \(type)"
    case let .valueNotFound(type, ctx):
        return "key \"\(path(ctx.codingPath))\": expected \(type), found null"
    case let .dataCorrupted(ctx):
        let at = path(ctx.codingPath)
        return (at.isEmpty ? "" : "key \"\(at)\": ") + ctx.debugDescription
    @unknown default:
        return "\(error)"
    }
}
