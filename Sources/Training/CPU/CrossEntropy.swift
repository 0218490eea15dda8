import Foundation
import QwenCore

/// The label that means "no loss here" (prompt tokens, padding, the last position).
public let ignoreIndex: Int32 = -100

/// Cross-entropy over one chunk of token rows, forward and backward in one pass, as
/// `F.cross_entropy(logits.float(), targets, ignore_index=-100, reduction="sum") * scale`:
/// log-softmax in f32 (max, Σ exp(x - max), log), loss = -logp[target];
/// dlogits = scale · (softmax - onehot(target)), zero rows for ignored targets. Within ~1e-7
/// relative of torch (softmax here is exp(x - max)/Σ, torch's is exp(logp): the same to rounding).
///
/// logits (N,V), targets (N) already shifted (row i predicts targets[i]), dlogits (N,V) — may be
/// the same memory as logits, so the lm_head chunk's logits buffer is reused for its gradient.
/// losses (N): each row's unscaled token loss (0 where ignored).
/// `rowScales` (N), when given, replaces `scale` row by row (DPO weighs each sequence's tokens).
/// Returns Σ losses in double. Rows run in parallel; each row's arithmetic is sequential, so the
/// result does not depend on the thread count.
@discardableResult
public func crossEntropyForwardBackward(dlogits: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                                        logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                        N: Int, V: Int, scale: Float, rowScales: UnsafePointer<Float>? = nil) throws -> Double {
    for i in 0 ..< N {
        let t = Int(targets[i])
        if t != Int(ignoreIndex) && (t < 0 || t >= V) {
            throw TrainingError.targetOutOfRange(row: i, target: t, vocabSize: V)
        }
    }
    parallelFor(N, minChunk: max(1, 32768 / max(1, V))) { i in
        let x = logits + i * V
        let d = dlogits + i * V
        let t = Int(targets[i])
        if t == Int(ignoreIndex) {
            losses[i] = 0
            d.update(repeating: 0, count: V)
            return
        }
        let scale = rowScales?[i] ?? scale
        let xt = x[t]  // read before d (which may be x) is overwritten
        var mx = -Float.infinity
        var j = 0
        var mx8 = SIMD8<Float>(repeating: -.infinity)
        while j + 8 <= V {
            let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            mx8.replace(with: v, where: v .> mx8)  // not pointwiseMax: a scalar lane loop
            j += 8
        }
        mx = mx8.max()
        while j < V { mx = max(mx, x[j]); j += 1 }
        // One exp per logit: d holds exp(x - max) until it is scaled to softmax · s. Lanes sum
        // blocks of 128 terms in f32, and the blocks are summed in double (torch sums the same
        // f32 terms in f32 vectors throughout).
        let m8 = SIMD8<Float>(repeating: mx)
        var total: Double = 0
        j = 0
        while j + 8 <= V {
            var block = SIMD8<Float>()
            var k = 0
            while k < 16 && j + 8 <= V {
                let e = exp8(UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self) - m8)
                UnsafeMutableRawPointer(d + j).storeBytes(of: e, as: SIMD8<Float>.self)
                block += e
                j += 8
                k += 1
            }
            for l in 0 ..< 8 { total += Double(block[l]) }
        }
        var sum = total
        while j < V {
            var t8 = SIMD8<Float>(repeating: -.infinity)
            t8[0] = x[j] - mx
            let e = exp8(t8)[0]
            d[j] = e
            sum += Double(e)
            j += 1
        }
        // torch: logp = (x - max) - log(sum); loss = -logp[target].
        losses[i] = -((xt - mx) - Float(log(sum)))
        let k = Float(Double(scale) / sum)
        let k8 = SIMD8<Float>(repeating: k)
        j = 0
        while j + 8 <= V {
            let v = UnsafeRawPointer(d + j).loadUnaligned(as: SIMD8<Float>.self) * k8
            UnsafeMutableRawPointer(d + j).storeBytes(of: v, as: SIMD8<Float>.self)
            j += 8
        }
        while j < V { d[j] *= k; j += 1 }
        d[t] = d[t] - scale
    }
    var total: Double = 0
    for i in 0 ..< N { total += Double(losses[i]) }
    return total
}

/// Loss normalisation for a step with gradient accumulation, as transformers ≥ 4.46 does it:
/// every micro-batch's summed token loss is divided by the number of labelled (shifted) tokens
/// in the whole step (`num_items_in_batch`), so the step's loss is Σ token losses / count, no
/// matter how the tokens fall into micro-batches.
///
/// Across ranks transformers (average_tokens_across_devices, its default) all-gathers and sums the
/// counts, multiplies each rank's loss by the world size and lets DDP average the gradients: the
/// same as dividing by the global count and SUMMING gradients across ranks. So: all-reduce the
/// count, use `scale(labelledTokens: globalCount)`, and sum (not average) the gradients.
public enum LossNormalization {
    /// The tokens that carry a loss in labels (B,T): positions t ≥ 1 with labels[b,t] ≠ -100
    /// (position 0 is never predicted: the labels are shifted left by one).
    public static func labelledTokenCount(labels: UnsafePointer<Int32>, B: Int, T: Int) -> Int {
        var n = 0
        for b in 0 ..< B {
            for t in 1 ..< max(1, T) where labels[b * T + t] != ignoreIndex { n += 1 }
        }
        return n
    }

    /// Σ labelledTokenCount over the step's micro-batches (each (B,T) flat labels).
    public static func labelledTokenCount(microBatches: [(labels: [Int32], B: Int, T: Int)]) -> Int {
        microBatches.reduce(0) { acc, mb in
            acc + mb.labels.withUnsafeBufferPointer { labelledTokenCount(labels: $0.baseAddress!, B: mb.B, T: mb.T) }
        }
    }

    /// targets (B,T) from labels (B,T): targets[b,t] = labels[b,t+1], the last position -100
    /// (transformers pads the labels with -100 and shifts).
    public static func shiftedTargets(_ targets: UnsafeMutablePointer<Int32>, labels: UnsafePointer<Int32>, B: Int, T: Int) {
        for b in 0 ..< B {
            for t in 0 ..< T {
                targets[b * T + t] = t + 1 < T ? labels[b * T + t + 1] : ignoreIndex
            }
        }
    }

    /// The factor each token's loss gradient is scaled by: 1 / count in f32 (torch divides the
    /// f32 loss by the count, so the backward multiplies by 1/count rounded to f32). A step with
    /// no labelled token has nothing to learn from: the scale is 0.
    public static func scale(labelledTokens count: Int) -> Float {
        count > 0 ? 1 / Float(count) : 0
    }

    /// The step's loss from the summed token losses (what transformers reports per step).
    public static func stepLoss(sumOfTokenLosses: Double, labelledTokens count: Int) -> Double {
        count > 0 ? sumOfTokenLosses / Double(count) : 0
    }
}
