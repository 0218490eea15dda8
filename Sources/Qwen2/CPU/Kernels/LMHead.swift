import Foundation
import QwenCore

// The output layer and the loss, in token chunks so (N × vocab) logits never exist at once.

/// Tokens per lm_head chunk: 64 × 151,936 fp32 logits is 39 MB.
public let lmHeadChunk = 64

/// What one chunk of next-token predictions scored.
public struct TokenScores {
    /// Σ −log p(target) over the scored tokens (Double: a sum over many tokens).
    public var lossSum: Double = 0
    /// Tokens whose argmax was the target.
    public var correct: Int = 0
    /// Tokens scored (targets ≠ −100).
    public var count: Int = 0

    public init() {}

    public mutating func add(_ other: TokenScores) {
        lossSum += other.lossSum
        correct += other.correct
        count += other.count
    }
}

/// Cross-entropy and argmax of logits (n,V) against targets (n), −100 = ignored.
public func scoreLogits(_ logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, n: Int, V: Int) -> TokenScores {
    var partial = [TokenScores](repeating: TokenScores(), count: n)
    partial.withUnsafeMutableBufferPointer { out in
        parallelFor(n, minChunk: 1) { i in
            let target = Int(targets[i])
            if target < 0 { return }
            let row = logits + i * V
            var best = 0
            var m = row[0]
            for j in 1..<V where row[j] > m { m = row[j]; best = j }
            var s: Double = 0
            for j in 0..<V { s += Double(expf(row[j] - m)) }
            let logZ = Double(m) + log(s)
            out[i] = TokenScores(lossSum: logZ - Double(row[target]), correct: best == target ? 1 : 0, count: 1)
        }
    }
    var total = TokenScores()
    for p in partial { total.add(p) }
    return total
}

extension TokenScores {
    init(lossSum: Double, correct: Int, count: Int) {
        self.lossSum = lossSum
        self.correct = correct
        self.count = count
    }
}
