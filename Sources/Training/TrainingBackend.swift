import QwenCore
import Qwen2

/// What the trainer runs beyond the model's layer ops: the lm_head chunk's loss and gradient,
/// the optimizer update and gradient-norm clipping, over the flat trainable buffers (one
/// allocation per kind, laid out by a `ParameterLayout`). `CPUBackend` implements it with the
/// kernels in `CPU/`; `Backends.make(_:)` gives the backend of a `--device`.
public protocol TrainingBackend: ModelBackend {
    /// Cross-entropy of logits (N,V) against targets (N) (−100 ignored), forward and backward in
    /// one pass: dlogits (N,V) = scale · (softmax − onehot) (may alias logits), losses (N) each
    /// row's unscaled loss; `rowScales` (N) replaces `scale` per row. Returns Σ losses. Throws on
    /// a target outside the vocabulary.
    func crossEntropyForwardBackward(dlogits: DeviceMutablePointer<Float>, losses: DeviceMutablePointer<Float>,
                                     logits: DevicePointer<Float>, targets: DevicePointer<Int32>,
                                     N: Int, V: Int, scale: Float, rowScales: DevicePointer<Float>?) throws -> Double

    /// One AdamW update of params[range] from grads[range] (params and grads the starts of the
    /// full flat buffers; m and v indexed from range.lowerBound), entries whose layout says
    /// `decay: false` without weight decay, `decay` false: none at all.
    func adamwStep(params: DeviceMutablePointer<Float>, grads: DevicePointer<Float>,
                   m: DeviceMutablePointer<Float>, v: DeviceMutablePointer<Float>, range: Range<Int>,
                   layout: ParameterLayout, decay: Bool, _ c: AdamWScalars)

    /// Σ g² over grads[range] in double, independent of the thread count.
    func gradSquaredNorm(_ grads: DevicePointer<Float>, range: Range<Int>) -> Double
    /// grads[range] *= coef.
    func scaleGradients(_ grads: DeviceMutablePointer<Float>, range: Range<Int>, by coef: Float)
}

extension TrainingBackend {
    /// Single-process clipping of grads[0..<count] as `torch.nn.utils.clip_grad_norm_`; returns
    /// the norm before clipping (see `GradientClipping.clipGlobalNorm`).
    @discardableResult
    public func clipGradNorm(_ grads: DeviceMutablePointer<Float>, count: Int, maxNorm: Double) -> Float {
        let total = GradientClipping.norm(squaredNorm: gradSquaredNorm(grads.readOnly, range: 0 ..< count))
        if maxNorm > 0 && total.isFinite {
            scaleGradients(grads, range: 0 ..< count, by: GradientClipping.clipCoefficient(totalNorm: total, maxNorm: maxNorm))
        }
        return total
    }
}
