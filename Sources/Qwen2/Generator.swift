import Foundation
import QwenCore

/// What one `generate` call produced, with its timings.
public struct GenerationResult: Sendable {
    public var tokens: [Int32] = []
    public var promptTokens = 0
    /// Prompt tokens actually run (those past the prefix already in the cache).
    public var prefilledTokens = 0
    public var prefillSeconds: Double = 0
    public var decodeSeconds: Double = 0
    /// Why it stopped: "eos" or "length".
    public var finishReason = "length"

    /// New tokens per second, counting the first (which comes from the prefill) out.
    public var decodeTokensPerSecond: Double {
        tokens.count > 1 && decodeSeconds > 0 ? Double(tokens.count - 1) / decodeSeconds : 0
    }
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefilledTokens) / prefillSeconds : 0 }
}

/// Prefill + KV-cache decoding for one sequence. Keeps the cache between calls, so a chat turn
/// only runs the tokens after the prefix it shares with the previous turn.
public final class Generator {
    public let model: Qwen2Model
    private var cache: KVCache
    private var cachedIds: [Int32] = []

    public init(model: Qwen2Model, capacity: Int = 512) {
        self.model = model
        cache = KVCache(config: model.config, batch: 1, capacity: min(capacity, model.config.maxPositionEmbeddings),
                        backend: model.backend)
    }

    /// Forgets the conversation.
    public func reset() {
        cache.reset()
        cachedIds = []
    }

    /// Generates up to `maxNewTokens` after `prompt`, stopping after any id in `eos` (which is
    /// included in the result). `onToken` sees each new id as it is chosen; returning false stops.
    public func generate(prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler, eos: Set<Int32>,
                         onToken: (Int32) throws -> Bool = { _ in true }) throws -> GenerationResult {
        let c = model.config
        guard !prompt.isEmpty else { throw Qwen2Error.badInput("the prompt is empty: nothing to continue") }
        if prompt.count >= c.maxPositionEmbeddings {
            throw Qwen2Error.badInput("the prompt has \(prompt.count) tokens; the model takes at most \(c.maxPositionEmbeddings) positions (max_position_embeddings)")
        }
        let total = min(c.maxPositionEmbeddings, prompt.count + max(0, maxNewTokens))
        try ensureCapacity(total)
        var result = GenerationResult()
        result.promptTokens = prompt.count

        // Reuse the cached prefix; at least the last prompt token is always run for its logits.
        var common = 0
        while common < min(cachedIds.count, prompt.count - 1) && cachedIds[common] == prompt[common] { common += 1 }
        cache.truncate(to: common)
        cachedIds.removeSubrange(common...)
        let fresh = Array(prompt[common...])
        var start = Date()
        var hidden = try model.forward(ids: fresh, B: 1, T: fresh.count, cache: cache)
        var logits = model.logits(hidden: hidden, rows: [fresh.count - 1])
        cachedIds += fresh
        result.prefilledTokens = fresh.count
        result.prefillSeconds = Date().timeIntervalSince(start)

        var history = prompt
        start = Date()
        while result.tokens.count < maxNewTokens {
            let next = sampler.next(logits: logits, history: history)
            result.tokens.append(next)
            history.append(next)
            let keepGoing = try onToken(next)
            if eos.contains(next) { result.finishReason = "eos"; break }
            if !keepGoing { result.finishReason = "stopped"; break }
            if result.tokens.count >= maxNewTokens || cache.length >= c.maxPositionEmbeddings { break }
            hidden = try model.forward(ids: [next], B: 1, T: 1, cache: cache)
            cachedIds.append(next)
            logits = model.logits(hidden: hidden, rows: [0])
        }
        result.decodeSeconds = Date().timeIntervalSince(start)
        return result
    }

    /// Grows the cache (copying what it holds) so `positions` fit.
    private func ensureCapacity(_ positions: Int) throws {
        if positions <= cache.capacity { return }
        var n = cache.capacity
        while n < positions { n *= 2 }
        n = min(n, model.config.maxPositionEmbeddings)
        let be = cache.backend
        let bigger = KVCache(config: model.config, batch: 1, capacity: n, backend: be)
        let c = model.config, hd = c.headDim, old = cache.capacity
        for l in 0..<c.numHiddenLayers {
            for h in 0..<c.numKeyValueHeads {
                be.copy(bigger.keys[l].pointer + h * n * hd, from: cache.keys[l].readOnly + h * old * hd, count: cache.length * hd)
                be.copy(bigger.values[l].pointer + h * n * hd, from: cache.values[l].readOnly + h * old * hd, count: cache.length * hd)
            }
        }
        be.withHostAccess(cache.keyMask.pointer, count: cache.length) { old in
            be.withHostAccess(bigger.keyMask.pointer, count: cache.length) { _ = $0.update(fromContentsOf: old) }
        }
        bigger.length = cache.length
        cache = bigger
    }
}
