import Foundation

// DPO's objective as TRL 1.16's DPOTrainer computes it (`_compute_loss`), per micro-batch of P
// pairs, from sequence log-probabilities (sums over response tokens):
//
//   Δc = logπ(chosen) − logπref(chosen),  Δr = logπ(rejected) − logπref(rejected),  δ = Δc − Δr
//   sigmoid: ℓ = −log σ(β δ)              (the DPO paper)
//   hinge:   ℓ = max(0, 1 − β δ)          (SLiC)
//   ipo:     ℓ = (Δc/nc − Δr/nr − 1/(2β))²  with nc, nr the response token counts (TRL averages
//            each log-ratio over its tokens before squaring)
//   loss = mean over the P pairs of ℓ
//   rpo_alpha α: + α · (−Σ log p over the chosen responses' tokens / their count) — TRL 1.16's
//            loss_type ["sigmoid", "sft"] with loss_weights [1, α] (older TRL's rpo_alpha)
//
// The gradient reaches the model only through logπ = Σ log p(token) = −Σ token cross-entropy,
// so the pass runs cross-entropy's backward with each sequence's tokens weighted by
// w = −∂loss/∂logπ (÷ the step's micro-batch count: transformers divides each micro-batch's loss
// by the accumulation steps when the loss is not scaled by token counts, as DPO's is not).

public enum DPOLossType: String, Sendable, CaseIterable { case sigmoid, ipo, hinge }

/// What TRL logs for a micro-batch (each a mean over its pairs).
public struct DPOMetrics: Sendable, Equatable {
    public var loss: Double
    public var rewardsChosen: Double
    public var rewardsRejected: Double
    /// Share of pairs with chosen reward strictly above the rejected one (a tie counts 0).
    public var rewardsAccuracies: Double
    public var rewardsMargins: Double
    public var logpsChosen: Double
    public var logpsRejected: Double

    /// TRL's names, in TRL's order (eval records prefix them with "eval_").
    public var named: [(String, Double)] {
        [("rewards/chosen", rewardsChosen), ("rewards/rejected", rewardsRejected), ("rewards/accuracies", rewardsAccuracies),
         ("rewards/margins", rewardsMargins), ("logps/chosen", logpsChosen), ("logps/rejected", logpsRejected)]
    }

    /// The mean of several micro-batches' metrics (TRL averages what it gathered since the last log).
    public static func mean(_ all: [DPOMetrics]) -> DPOMetrics? {
        guard !all.isEmpty else { return nil }
        let n = Double(all.count)
        func m(_ k: KeyPath<DPOMetrics, Double>) -> Double { all.reduce(0) { $0 + $1[keyPath: k] } / n }
        return DPOMetrics(loss: m(\.loss), rewardsChosen: m(\.rewardsChosen), rewardsRejected: m(\.rewardsRejected),
                          rewardsAccuracies: m(\.rewardsAccuracies), rewardsMargins: m(\.rewardsMargins),
                          logpsChosen: m(\.logpsChosen), logpsRejected: m(\.logpsRejected))
    }
}

/// One micro-batch's sequence log-probabilities, pair by pair.
public struct PairLogProbs: Sendable {
    public var chosen: [Double]
    public var rejected: [Double]
    public init(chosen: [Double], rejected: [Double]) {
        self.chosen = chosen
        self.rejected = rejected
    }
}

public struct DPOObjective: Sendable {
    public var beta: Double
    public var lossType: DPOLossType
    /// The weight of the NLL of the chosen responses added to the loss (RPO); nil: none.
    public var rpoAlpha: Double?

    public init(beta: Double, lossType: DPOLossType, rpoAlpha: Double? = nil) {
        self.beta = beta
        self.lossType = lossType
        self.rpoAlpha = rpoAlpha
    }

    /// The micro-batch's loss, metrics, and ∂loss/∂logπ for each chosen and rejected sequence.
    /// `chosenTokens`/`rejectedTokens`: response token counts (ipo).
    public func evaluate(policy: PairLogProbs, reference: PairLogProbs, chosenTokens: [Int], rejectedTokens: [Int])
        -> (metrics: DPOMetrics, dChosen: [Double], dRejected: [Double]) {
        let P = policy.chosen.count
        precondition(P > 0 && policy.rejected.count == P && reference.chosen.count == P && reference.rejected.count == P)
        var loss = 0.0, rc = 0.0, rr = 0.0, acc = 0.0, margin = 0.0
        var dC = [Double](repeating: 0, count: P), dR = [Double](repeating: 0, count: P)
        for i in 0..<P {
            let lc = policy.chosen[i] - reference.chosen[i], lr = policy.rejected[i] - reference.rejected[i]
            let delta = lc - lr
            let l: Double, gc: Double, gr: Double
            switch lossType {
            case .sigmoid:
                // −log σ(x) = softplus(−x), stable both ways; d/dδ = −β σ(−βδ).
                let x = beta * delta
                l = x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x))
                let s = 1 / (1 + exp(x))
                gc = -beta * s
                gr = beta * s
            case .hinge:
                let h = 1 - beta * delta
                l = max(0, h)
                gc = h > 0 ? -beta : 0
                gr = -gc
            case .ipo:
                let nc = Double(max(1, chosenTokens[i])), nr = Double(max(1, rejectedTokens[i]))
                let d = lc / nc - lr / nr - 1 / (2 * beta)
                l = d * d
                gc = 2 * d / nc
                gr = -2 * d / nr
            }
            loss += l
            dC[i] = gc / Double(P)
            dR[i] = gr / Double(P)
            let rewardC = beta * lc, rewardR = beta * lr
            rc += rewardC
            rr += rewardR
            if rewardC > rewardR { acc += 1 }
            margin += rewardC - rewardR
        }
        let n = Double(P)
        var total = loss / n
        if let alpha = rpoAlpha {
            // The mean NLL over every chosen response token of the micro-batch.
            let tokens = Double(max(1, chosenTokens.reduce(0, +)))
            total += alpha * -policy.chosen.reduce(0, +) / tokens
            for i in 0..<P { dC[i] -= alpha / tokens }
        }
        let metrics = DPOMetrics(loss: total, rewardsChosen: rc / n, rewardsRejected: rr / n, rewardsAccuracies: acc / n,
                                 rewardsMargins: margin / n, logpsChosen: policy.chosen.reduce(0, +) / n,
                                 logpsRejected: policy.rejected.reduce(0, +) / n)
        return (metrics, dC, dR)
    }
}
