import ArgumentParser
import Qwen2

/// Sampling flags shared by `generate` and `chat`; unset ones fall back to generation_config.json.
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "New tokens at most (default: generation_config max_new_tokens, else 512).")
    var maxNewTokens: Int?

    @Flag(name: .long, help: "Greedy decoding (argmax), whatever generation_config.json says.")
    var greedy = false

    @Option(name: .long, help: "Sampling temperature.")
    var temperature: Double?

    @Option(name: .long, help: "Keep the K most likely tokens (0: off).")
    var topK: Int?

    @Option(name: .long, help: "Keep the smallest set of tokens whose probability reaches P.")
    var topP: Double?

    @Option(name: .long, help: "Drop tokens less likely than P times the most likely one.")
    var minP: Double?

    @Option(name: .long, help: "Penalise tokens already present (1: off).")
    var repetitionPenalty: Double?

    @Option(name: .long, help: "Seed of the sampler (same seed, same tokens).")
    var seed: UInt64 = 0

    func validate() throws {
        if let n = maxNewTokens, n < 1 { throw ValidationError("--max-new-tokens must be at least 1") }
    }

    /// generation_config.json's settings with these flags applied, checked.
    func parameters(_ defaults: GenerationConfig) throws -> SamplingParameters {
        var p = defaults.sampling
        if let temperature { p.temperature = temperature; p.greedy = false }
        if let topK { p.topK = topK }
        if let topP { p.topP = topP }
        if let minP { p.minP = minP }
        if let repetitionPenalty { p.repetitionPenalty = repetitionPenalty }
        if greedy { p.greedy = true }
        try p.validate()
        return p
    }

    func maxTokens(_ defaults: GenerationConfig) -> Int { maxNewTokens ?? defaults.maxNewTokens ?? 512 }
}
