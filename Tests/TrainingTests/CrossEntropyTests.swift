import Foundation
import Testing
@testable import Training

private struct CEFixture: Decodable {
    struct Micro: Decodable {
        let logits: [Float]
        let labels: [Int32]
        let token_losses: [Float]
        let loss: Double
        let dlogits: [Float]
    }
    let B, T, V, num_items_in_batch: Int
    let micro_batches: [Micro]
    let step_loss: Double
}

@Suite struct CrossEntropyTests {
    /// Two accumulated micro-batches against transformers' ForCausalLMLoss + autograd.
    @Test func matchesTorchWithAccumulation() throws {
        let fx = try loadFixture("cross_entropy.json", as: CEFixture.self)
        let (B, T, V) = (fx.B, fx.T, fx.V)
        let count = LossNormalization.labelledTokenCount(
            microBatches: fx.micro_batches.map { ($0.labels, B, T) })
        #expect(count == fx.num_items_in_batch)
        let scale = LossNormalization.scale(labelledTokens: count)
        var stepSum = 0.0
        for mb in fx.micro_batches {
            var targets = [Int32](repeating: 0, count: B * T)
            mb.labels.withUnsafeBufferPointer { l in
                targets.withUnsafeMutableBufferPointer { LossNormalization.shiftedTargets($0.baseAddress!, labels: l.baseAddress!, B: B, T: T) }
            }
            // In place: the logits buffer becomes dlogits.
            var buf = mb.logits
            var losses = [Float](repeating: -1, count: B * T)
            let sum = try buf.withUnsafeMutableBufferPointer { d in
                try crossEntropyForwardBackward(dlogits: d.baseAddress!, losses: &losses, logits: d.baseAddress!,
                                                targets: targets, N: B * T, V: V, scale: scale)
            }
            stepSum += sum
            for i in 0 ..< B * T {
                #expect(relativeError(Double(losses[i]), Double(mb.token_losses[i]), floor: 1e-6) < 1e-6, "token loss \(i)")
            }
            #expect(relativeError(sum / Double(count), mb.loss) < 1e-6)
            for i in 0 ..< B * T * V {
                #expect(abs(buf[i] - mb.dlogits[i]) <= 1e-6 * max(abs(mb.dlogits[i]), 1e-3), "dlogits[\(i)]: \(buf[i]) vs \(mb.dlogits[i])")
            }
        }
        #expect(relativeError(LossNormalization.stepLoss(sumOfTokenLosses: stepSum, labelledTokens: count), fx.step_loss) < 1e-6)
    }

    /// Central differences of scale · Σ loss (in double) against the analytic gradient.
    @Test func finiteDifferences() throws {
        let N = 4, V = 9
        var logits = (0 ..< N * V).map { Float(sin(Double($0) * 1.7) * 2.5) }
        let targets: [Int32] = [3, -100, 0, 8]
        let scale: Float = 0.25
        var d = [Float](repeating: 0, count: N * V), losses = [Float](repeating: 0, count: N)
        try crossEntropyForwardBackward(dlogits: &d, losses: &losses, logits: logits, targets: targets, N: N, V: V, scale: scale)
        func loss(_ x: [Float]) -> Double {
            var total = 0.0
            for i in 0 ..< N where targets[i] != ignoreIndex {
                let row = (0 ..< V).map { Double(x[i * V + $0]) }
                let m = row.max()!
                let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
                total += lse - row[Int(targets[i])]
            }
            return total * Double(scale)
        }
        let h: Float = 1e-2
        for k in 0 ..< N * V {
            let saved = logits[k]
            logits[k] = saved + h; let up = loss(logits)
            logits[k] = saved - h; let down = loss(logits)
            logits[k] = saved
            let fd = (up - down) / (2 * Double(h))
            #expect(abs(fd - Double(d[k])) < 1e-4, "logit \(k): fd \(fd) vs \(d[k])")
        }
        #expect(d[V ..< 2 * V].allSatisfy { $0 == 0 } && losses[1] == 0)
    }

    @Test func outOfRangeTargetThrows() {
        var d = [Float](repeating: 0, count: 6), losses = [Float](repeating: 0, count: 2)
        #expect(throws: TrainingError.targetOutOfRange(row: 1, target: 3, vocabSize: 3)) {
            try crossEntropyForwardBackward(dlogits: &d, losses: &losses, logits: [Float](repeating: 0, count: 6),
                                            targets: [0, 3], N: 2, V: 3, scale: 1)
        }
    }

    @Test func countsShiftedLabels() {
        let labels: [Int32] = [5, 6, -100, 7,   -100, -100, 1, 2]
        #expect(LossNormalization.labelledTokenCount(labels: labels, B: 2, T: 4) == 4)
        var t = [Int32](repeating: 0, count: 8)
        LossNormalization.shiftedTargets(&t, labels: labels, B: 2, T: 4)
        #expect(t == [6, -100, 7, -100, -100, 1, 2, -100])
        #expect(LossNormalization.scale(labelledTokens: 0) == 0)
    }
}

@Suite struct VectorMathTests {
    /// exp8 against double-precision exp over the range softmax uses and the edges.
    @Test func exp8IsWithinTwoUlp() {
        var worst: Float = 0
        var x: Float = -90
        while x < 89 {
            let v = SIMD8<Float>((0 ..< 8).map { x + Float($0) * 0.0013 })
            let e = exp8(v)
            for l in 0 ..< 8 {
                let ref = Float(Foundation.exp(Double(v[l])))
                if ref == 0 || ref.isInfinite || ref < Float.leastNormalMagnitude {
                    #expect(e[l] == 0 || e[l].isInfinite || e[l] < 2 * Float.leastNormalMagnitude, "exp(\(v[l]))")
                    continue
                }
                worst = max(worst, abs(e[l] - ref) / ref.ulp)
            }
            x += 0.0173
        }
        #expect(worst <= 2, "worst \(worst) ulp")
        let special = exp8(SIMD8<Float>(0, -.infinity, .infinity, .nan, -100, 100, 1, -1))
        #expect(special[0] == 1 && special[1] == 0 && special[2] == .infinity && special[3].isNaN)
        #expect(special[4] == 0 && special[5] == .infinity && abs(special[6] - 2.7182817) <= 2 * Float(2.7182817).ulp)
    }
}

@Suite struct CrossEntropyNonFiniteTests {
    /// NaN or Inf in a row's logits gives a NaN loss (the trainer skips such a step), never a trap.
    @Test func nonFiniteLogitsGiveNaNLoss() throws {
        let V = 19
        for bad: Float in [.nan, .infinity, -.infinity] {
            var logits = (0 ..< 2 * V).map { Float($0 % 5) }
            logits[V + 3] = bad
            var d = logits, losses = [Float](repeating: 0, count: 2)
            let sum = try crossEntropyForwardBackward(dlogits: &d, losses: &losses, logits: logits, targets: [1, 2], N: 2, V: V, scale: 1)
            #expect(losses[0].isFinite)
            if bad == -.infinity { #expect(losses[1].isFinite && d[V + 3] == 0) } else { #expect(losses[1].isNaN && sum.isNaN) }
        }
    }
}
