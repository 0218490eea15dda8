import Foundation

extension AdamWScalars {
    /// The f32 scalars of AdamW step `step` (1-based) at learning rate `lr`, formed as
    /// `AdamW.step` forms them (in double, each rounded to f32 where torch's f32 op consumes it),
    /// for callers that run the update elsewhere (the CUDA adamw_step kernel).
    public static func forStep(_ step: Int, lr: Double, hyper h: AdamWHyperparameters) -> AdamWScalars {
        let t = Double(step)
        let biasCorrection1 = 1 - pow(h.beta1, t)
        let biasCorrection2 = 1 - pow(h.beta2, t)
        return AdamWScalars(
            decayFactor: Float(1 - lr * h.weightDecay),
            lerpWeight: Float(1 - h.beta1),
            beta2: Float(h.beta2),
            oneMinusBeta2: Float(1 - h.beta2),
            biasCorrection2Sqrt: Float(biasCorrection2.squareRoot()),
            eps: Float(h.eps),
            negStepSize: Float(-(lr / biasCorrection1)))
    }
}
