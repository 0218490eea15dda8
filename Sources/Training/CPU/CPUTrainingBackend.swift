@_spi(CPUBackend) import QwenCore
import Qwen2

// The CPU implementation of the trainer's ops: the kernels in this folder (cross-entropy, the
// AdamW element loop, gradient-norm clipping), threaded with `parallelChunks`.

extension CPUBackend: TrainingBackend {
    public func crossEntropyForwardBackward(dlogits: DeviceMutablePointer<Float>, losses: DeviceMutablePointer<Float>,
                                            logits: DevicePointer<Float>, targets: DevicePointer<Int32>,
                                            N: Int, V: Int, scale: Float, rowScales: DevicePointer<Float>?) throws -> Double {
        try Training.crossEntropyForwardBackward(dlogits: dlogits.address, losses: losses.address, logits: logits.address, targets: targets.address,
                                                 N: N, V: V, scale: scale, rowScales: rowScales?.address)
    }

    public func adamwStep(params: DeviceMutablePointer<Float>, grads: DevicePointer<Float>,
                          m: DeviceMutablePointer<Float>, v: DeviceMutablePointer<Float>, range: Range<Int>,
                          layout: ParameterLayout, decay: Bool, _ c: AdamWScalars) {
        let base = range.lowerBound
        // Threads split the range; each piece walks the entries it covers (LoRA has hundreds of
        // small tensors, so splitting per tensor would leave most of them on one thread).
        parallelChunks(range.count, minChunk: 1 << 14) { r in
            let piece = (base + r.lowerBound) ..< (base + r.upperBound)
            for seg in layout.segments(in: piece) {
                let lo = seg.range.lowerBound
                adamwUpdate(params: params.address + lo, grads: grads.address + lo, m: m.address + (lo - base), v: v.address + (lo - base),
                            count: seg.range.count, decay: seg.decay && decay, c)
            }
        }
    }

    public func gradSquaredNorm(_ grads: DevicePointer<Float>, range: Range<Int>) -> Double {
        GradientClipping.squaredNorm(grads.address, range: range)
    }
    public func scaleGradients(_ grads: DeviceMutablePointer<Float>, range: Range<Int>, by coef: Float) {
        GradientClipping.scale(grads.address, range: range, by: coef)
    }
}
