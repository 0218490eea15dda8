import QwenCore

/// One LoRA pair on a Linear layer, as PEFT: y = x·Wᵀ + b + (x·Aᵀ)·Bᵀ · scale,
/// A (r, in), B (out, r), scale = alpha / r (rsLoRA: alpha / √r). fp32, unmerged.
public final class LoRAWeights: @unchecked Sendable {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    public let scale: Float
    public let a: AlignedBuffer<Float>
    public let b: AlignedBuffer<Float>

    public init(rank: Int, inFeatures: Int, outFeatures: Int, scale: Float) {
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scale = scale
        a = AlignedBuffer(count: rank * inFeatures)
        b = AlignedBuffer(count: outFeatures * rank)
    }
}

/// A set of LoRA pairs over a model's layers: `layers[i][projection]`.
public final class LoRAAdapter: @unchecked Sendable {
    public let rank: Int
    public let alpha: Double
    public let useRSLoRA: Bool
    public var layers: [[Projection: LoRAWeights]]

    /// PEFT's scaling: alpha / r, or alpha / √r with rsLoRA.
    public static func scale(alpha: Double, rank: Int, rsLoRA: Bool) -> Float {
        Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    public init(rank: Int, alpha: Double, useRSLoRA: Bool, layerCount: Int) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        layers = Array(repeating: [:], count: layerCount)
    }

    public var scale: Float { Self.scale(alpha: alpha, rank: rank, rsLoRA: useRSLoRA) }
}

/// out (N,OUT) += scale · (inp (N,IN) · Aᵀ) · Bᵀ; `tmp` holds (N, r).
public func loraForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                        lora: LoRAWeights, N: Int, tmp: UnsafeMutablePointer<Float>) {
    GEMM.nt(N, lora.rank, lora.inFeatures, inp, lora.a.pointer, tmp)
    GEMM.nt(N, lora.outFeatures, lora.rank, tmp, lora.b.pointer, out, alpha: lora.scale, accumulate: true)
}
