import Foundation
import QwenCore

/// AdamW's settings, named and defaulted as `torch.optim.AdamW` (transformers passes
/// `adam_beta1`, `adam_beta2`, `adam_epsilon`, `weight_decay`; its default decay is 0).
public struct AdamWHyperparameters: Sendable, Equatable, Codable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }
}

/// AdamW as `torch.optim.AdamW` with `foreach=False, fused=False` (what torch runs for CPU
/// tensors by default), step for step in the same f32 operations, over one flat range of the
/// trainable state: the whole buffer, or the ZeRO shard this rank owns. m and v are allocated for
/// that range only. Entries whose layout says `decay: false` get no weight decay (the
/// transformers Trainer puts them in a param group with weight_decay 0).
public final class AdamW: @unchecked Sendable {
    public let hyper: AdamWHyperparameters
    public let layout: ParameterLayout
    /// The slice of the flat buffers this optimizer updates; m and v are indexed from its start.
    public let range: Range<Int>
    /// First moment (exp_avg), `range.count` floats of the backend's memory.
    public let m: DeviceBuffer<Float>
    /// Second moment (exp_avg_sq), `range.count` floats of the backend's memory.
    public let v: DeviceBuffer<Float>
    /// Optimizer steps taken (torch's `state["step"]`); set it when restoring a checkpoint.
    public var stepCount: Int = 0
    /// Runs the update (m and v are its buffers; host code reads them through `moments(of:)`).
    public let backend: any TrainingBackend

    /// `range` defaults to the whole unsharded buffer.
    public init(layout: ParameterLayout, hyper: AdamWHyperparameters, range: Range<Int>? = nil,
                backend: any TrainingBackend = CPUBackend()) {
        self.layout = layout
        self.hyper = hyper
        self.backend = backend
        self.range = range ?? 0 ..< layout.count
        m = backend.allocate(Float.self, count: self.range.count)
        v = backend.allocate(Float.self, count: self.range.count)
    }

    /// m and v of `entry` when this optimizer's range holds all of it (nil for an entry that a
    /// shard cuts or does not hold), for checkpoints keyed by parameter name: host views, which
    /// need host-addressable memory (the CPU backend's), as `TrainableState`'s.
    public func moments(of entry: ParameterEntry) -> (m: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>)? {
        guard entry.offset >= range.lowerBound, entry.offset + entry.count <= range.upperBound else { return nil }
        let o = entry.offset - range.lowerBound
        return (UnsafeMutableBufferPointer(start: hostM + o, count: entry.count),
                UnsafeMutableBufferPointer(start: hostV + o, count: entry.count))
    }

    /// m and v as host memory (the same memory as `m` and `v`; see `moments(of:)`).
    public var hostM: UnsafeMutablePointer<Float> { backend.hostAddress(m.pointer)! }
    public var hostV: UnsafeMutablePointer<Float> { backend.hostAddress(v.pointer)! }

    /// One update of `params[range]` from `grads[range]` at learning rate `lr`. The pointers are
    /// the starts of the full flat buffers (as `TrainableState.params/grads`).
    public func step(params: DeviceMutablePointer<Float>, grads: DevicePointer<Float>, lr: Double) {
        stepCount += 1
        let h = hyper
        // Scalars exactly as torch's _single_tensor_adam forms them (AdamWScalars.forStep).
        let c = AdamWScalars.forStep(stepCount, lr: lr, hyper: h)
        backend.adamwStep(params: params, grads: grads, m: m.pointer, v: v.pointer, range: range, layout: layout,
                          decay: h.weightDecay != 0, c)
    }
}

/// The f32 scalars of one AdamW step (see `AdamW.step`).
public struct AdamWScalars: Sendable {
    public var decayFactor: Float         // 1 - lr·wd
    public var lerpWeight: Float          // 1 - beta1
    public var beta2: Float
    public var oneMinusBeta2: Float
    public var biasCorrection2Sqrt: Float // sqrt(1 - beta2^t)
    public var eps: Float
    public var negStepSize: Float         // -lr / (1 - beta1^t)
}
