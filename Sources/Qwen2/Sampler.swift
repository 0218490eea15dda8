import Foundation

/// How the next token is chosen. Greedy still applies the repetition penalty (as transformers'
/// logits processors do); the warpers (temperature, top-k, top-p, min-p) only apply when sampling.
public struct SamplingParameters: Equatable, Sendable {
    public var greedy: Bool
    public var temperature: Double
    public var topK: Int        // 0 = off
    public var topP: Double     // 1 = off
    public var minP: Double     // 0 = off
    public var repetitionPenalty: Double  // 1 = off

    public init(greedy: Bool = true, temperature: Double = 1, topK: Int = 0, topP: Double = 1,
                minP: Double = 0, repetitionPenalty: Double = 1) {
        self.greedy = greedy
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
    }

    /// Rejects values transformers would reject.
    public func validate() throws {
        if !(repetitionPenalty > 0) { throw Qwen2Error.badInput("repetition penalty must be positive, got \(repetitionPenalty)") }
        if greedy { return }
        if !(temperature > 0) { throw Qwen2Error.badInput("temperature must be positive, got \(temperature) (use --greedy for greedy decoding)") }
        if topK < 0 { throw Qwen2Error.badInput("top-k must be 0 (off) or positive, got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw Qwen2Error.badInput("top-p must be in (0, 1], got \(topP)") }
        if !(minP >= 0 && minP <= 1) { throw Qwen2Error.badInput("min-p must be in [0, 1], got \(minP)") }
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same tokens.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}

/// transformers' logits processors, in generate()'s order: repetition_penalty, then (sampling
/// only) temperature, top_k, top_p, min_p; then argmax or a draw from the softmax.
public struct Sampler {
    public var parameters: SamplingParameters
    public var rng: SeededRNG

    public init(parameters: SamplingParameters, seed: UInt64) {
        self.parameters = parameters
        rng = SeededRNG(seed: seed)
    }

    /// Picks the next token from `logits` (V), given every id so far (prompt and generated).
    public mutating func next(logits: [Float], history: [Int32]) -> Int32 {
        var scores = logits
        applyRepetitionPenalty(&scores, history: history, penalty: Float(parameters.repetitionPenalty))
        if parameters.greedy { return Int32(argmax(scores)) }
        if parameters.temperature != 1 {
            let t = Float(parameters.temperature)
            for i in scores.indices { scores[i] /= t }
        }
        if parameters.topK > 0 { applyTopK(&scores, k: parameters.topK) }
        if parameters.topP < 1 { applyTopP(&scores, p: parameters.topP) }
        if parameters.minP > 0 { applyMinP(&scores, minP: parameters.minP) }
        let probs = softmax(scores)
        let u = rng.unit()
        var cum: Double = 0
        var lastPositive = 0
        for (i, p) in probs.enumerated() where p > 0 {
            cum += p
            lastPositive = i
            if u < cum { return Int32(i) }
        }
        return Int32(lastPositive)
    }
}

/// The first index of the largest value (torch.argmax's tie rule).
public func argmax(_ x: [Float]) -> Int {
    var best = 0
    for i in 1..<x.count where x[i] > x[best] { best = i }
    return best
}

/// Each id seen once: score < 0 ? score · penalty : score / penalty.
public func applyRepetitionPenalty(_ scores: inout [Float], history: [Int32], penalty: Float) {
    if penalty == 1 { return }
    for id in Set(history) where Int(id) < scores.count && id >= 0 {
        let s = scores[Int(id)]
        scores[Int(id)] = s < 0 ? s * penalty : s / penalty
    }
}

/// Keeps scores ≥ the k-th largest (ties at the threshold stay), the rest −∞. One pass that
/// keeps the k best seen so far, so it costs O(V) for the usual small k, not a sort of the vocabulary.
public func applyTopK(_ scores: inout [Float], k: Int) {
    if k >= scores.count || k <= 0 { return }
    var best: [Float] = []  // ascending, at most k values
    best.reserveCapacity(k + 1)
    for v in scores where best.count < k || v > best[0] {
        var lo = 0, hi = best.count
        while lo < hi { let mid = (lo + hi) / 2; if best[mid] < v { lo = mid + 1 } else { hi = mid } }
        best.insert(v, at: lo)
        if best.count > k { best.removeFirst() }
    }
    let threshold = best[0]
    for i in scores.indices where scores[i] < threshold { scores[i] = -.infinity }
}

/// transformers' TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability is
/// ≤ 1 − p, always keeping the most likely one.
public func applyTopP(_ scores: inout [Float], p: Double) {
    // Tokens already at −∞ have probability 0: they would be dropped anyway, so only the rest is sorted.
    let order = scores.indices.filter { scores[$0] > -.infinity }
        .sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    let probs = softmax(order.map { scores[$0] })
    var cum: Double = 0
    for (rank, i) in order.enumerated() {
        cum += probs[rank]
        if rank < order.count - 1 && cum <= 1 - p { scores[i] = -.infinity }
    }
}

/// transformers' MinPLogitsWarper: drop tokens with probability < minP · max probability.
public func applyMinP(_ scores: inout [Float], minP: Double) {
    let probs = softmax(scores)
    guard let top = probs.max() else { return }
    let best = argmax(scores)
    for i in scores.indices where probs[i] < minP * top && i != best { scores[i] = -.infinity }
}

/// Softmax in Double (−∞ → 0).
public func softmax(_ x: [Float]) -> [Double] {
    guard let m = x.max(), m > -.infinity else { return x.map { _ in 1 / Double(max(1, x.count)) } }
    var e = x.map { exp(Double($0 - m)) }
    let s = e.reduce(0, +)
    for i in e.indices { e[i] /= s }
    return e
}
