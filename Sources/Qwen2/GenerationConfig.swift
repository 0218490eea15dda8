import Foundation

/// `generation_config.json`: the defaults `generate` and `chat` start from (flags override them).
public struct GenerationConfig: Codable, Equatable, Sendable {
    public var doSample: Bool = false
    public var temperature: Double = 1
    public var topK: Int = 50
    public var topP: Double = 1
    public var minP: Double? = nil
    public var repetitionPenalty: Double = 1
    public var maxNewTokens: Int? = nil
    public var eosTokenIds: [Int] = []
    public var bosTokenId: Int? = nil
    public var padTokenId: Int? = nil

    public init() {}

    enum CodingKeys: String, CodingKey {
        case doSample = "do_sample", temperature, topK = "top_k", topP = "top_p", minP = "min_p"
        case repetitionPenalty = "repetition_penalty", maxNewTokens = "max_new_tokens"
        case eosTokenId = "eos_token_id", bosTokenId = "bos_token_id", padTokenId = "pad_token_id"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        doSample = try c.decodeIfPresent(Bool.self, forKey: .doSample) ?? false
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 1
        topK = try c.decodeIfPresent(Int.self, forKey: .topK) ?? 50
        topP = try c.decodeIfPresent(Double.self, forKey: .topP) ?? 1
        minP = try c.decodeIfPresent(Double.self, forKey: .minP)
        repetitionPenalty = try c.decodeIfPresent(Double.self, forKey: .repetitionPenalty) ?? 1
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens)
        if let many = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) {
            eosTokenIds = many
        } else {
            eosTokenIds = (try c.decodeIfPresent(Int.self, forKey: .eosTokenId)).map { [$0] } ?? []
        }
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId)
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        try c.encode(doSample, forKey: .doSample)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenId) }
        else if !eosTokenIds.isEmpty { try c.encode(eosTokenIds, forKey: .eosTokenId) }
        try c.encodeIfPresent(padTokenId, forKey: .padTokenId)
        try c.encode(repetitionPenalty, forKey: .repetitionPenalty)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(topK, forKey: .topK)
        try c.encode(topP, forKey: .topP)
        try c.encodeIfPresent(minP, forKey: .minP)
        try c.encodeIfPresent(maxNewTokens, forKey: .maxNewTokens)
    }

    /// Reads `generation_config.json`, or the defaults when the folder has none.
    public static func load(_ url: URL) throws -> GenerationConfig {
        guard let data = FileManager.default.contents(atPath: url.path) else { return GenerationConfig() }
        return try decodeJSONFile(GenerationConfig.self, data, path: url.path)
    }

    /// The sampling settings these defaults describe.
    public var sampling: SamplingParameters {
        SamplingParameters(greedy: !doSample, temperature: temperature, topK: topK, topP: topP,
                           minP: minP ?? 0, repetitionPenalty: repetitionPenalty)
    }
}
