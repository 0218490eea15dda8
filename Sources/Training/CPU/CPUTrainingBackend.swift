import QwenCore
import Qwen2

// The CPU implementation of the trainer's ops: the kernels in this folder (cross-entropy, the
// AdamW element loop, gradient-norm clipping), threaded with `parallelChunks`.

extension CPUBackend: TrainingBackend {
    public func crossEntropyForwardBackward(dlogits: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                                            logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                            N: Int, V: Int, scale: Float, rowScales: UnsafePointer<Float>?) throws -> Double {
        try Training.crossEntropyForwardBackward(dlogits: dlogits, losses: losses, logits: logits, targets: targets,
                                                 N: N, V: V, scale: scale, rowScales: rowScales)
    }

    public func adamwStep(params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>,
                          m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, range: Range<Int>,
                          layout: ParameterLayout, decay: Bool, _ c: AdamWScalars) {
        let base = range.lowerBound
        // Threads split the range; each piece walks the entries it covers (LoRA has hundreds of
        // small tensors, so splitting per tensor would leave most of them on one thread).
        parallelChunks(range.count, minChunk: 1 << 14) { r in
            let piece = (base + r.lowerBound) ..< (base + r.upperBound)
            for seg in layout.segments(in: piece) {
                let lo = seg.range.lowerBound
                adamwUpdate(params: params + lo, grads: grads + lo, m: m + (lo - base), v: v + (lo - base),
                            count: seg.range.count, decay: seg.decay && decay, c)
            }
        }
    }

    public func gradSquaredNorm(_ grads: UnsafePointer<Float>, range: Range<Int>) -> Double {
        GradientClipping.squaredNorm(grads, range: range)
    }
    public func scaleGradients(_ grads: UnsafeMutablePointer<Float>, range: Range<Int>, by coef: Float) {
        GradientClipping.scale(grads, range: range, by: coef)
    }
}
