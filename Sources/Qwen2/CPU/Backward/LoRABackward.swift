import QwenCore

// LoRA on a Linear layer, as PEFT computes it:
//   y = x·Wᵀ + b + s · (dropout(x)·Aᵀ)·Bᵀ,   s = alpha/r (rsLoRA: alpha/√r)
// x (N,C), A (r,C), B (OC,r), y (N,OC). The base part is linearForward / linearBackward; these add
// the adapter's part. Saved for backward: xa = dropout(x)·Aᵀ (N,r); dropout(x) is regenerated
// from the seed, so only x itself (which the base linear keeps anyway) is needed.

/// PEFT's `nn.Dropout(p)` on the adapter input, seeded: element i of a (N,C) input is kept with
/// probability 1−p and then scaled by 1/(1−p). The mask is a pure function of (seed, stream, i)
/// (SplitMix64), so backward (and a recomputation under checkpointing) regenerate it exactly.
/// Its bits differ from torch's generator: parity tests use p = 0.
public struct LoRADropout: Sendable {
    public let p: Float
    public let seed: UInt64
    /// Distinguishes every (step, micro-batch, layer, projection) use of the same seed.
    public let stream: UInt64

    public init(p: Float, seed: UInt64, stream: UInt64) {
        self.p = p
        self.seed = seed
        self.stream = stream
    }

    public var isIdentity: Bool { p <= 0 }

    /// The factor element `i` is multiplied by: 0 or 1/(1−p).
    @inlinable
    public func factor(_ i: Int) -> Float {
        var z = seed &+ stream &* 0xD1B5_4A32_D192_ED03 &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Float(z >> 40) * 0x1p-24  // uniform in [0, 1)
        return u < p ? 0 : 1 / (1 - p)
    }

    /// out (count) = dropout(inp) (count)
    public func apply(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        parallelChunks(count, minChunk: 1 << 14) { r in
            for i in r { out[i] = inp[i] * factor(i) }
        }
    }
}

/// out (N,OC) += s · (dropout(x)·Aᵀ)·Bᵀ; keeps xa = dropout(x)·Aᵀ (N,r) for backward.
/// `dropped` (N,C) is scratch for dropout(x), needed only when dropout is not the identity.
public func loraForward(out: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>,
                        inp: UnsafePointer<Float>, A: UnsafePointer<Float>, B: UnsafePointer<Float>,
                        scale: Float, dropout: LoRADropout, dropped: UnsafeMutablePointer<Float>?,
                        N: Int, C: Int, OC: Int, r: Int) {
    loraProjectInput(xa: xa, inp: inp, A: A, dropout: dropout, dropped: dropped, N: N, C: C, r: r)
    withTransposed(B, rows: OC, cols: r) { bt in
        rankExpand(N, OC, r, UnsafePointer(xa), bt, out, alpha: scale, accumulate: true)
    }
}

/// body(Bᵀ): B (rows,cols) copied transposed into a temporary (OC·r floats: microseconds beside
/// the products it feeds).
func withTransposed<R>(_ B: UnsafePointer<Float>, rows: Int, cols: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
    let t = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * cols))
    defer { t.deallocate() }
    transposeInto(t, B, rows: rows, cols: cols)
    return body(t)
}

/// xa (N,r) = dropout(x)·Aᵀ alone: the part of loraForward backward needs. A checkpointing
/// recomputation whose layer output is already kept calls it instead (the same bits).
public func loraProjectInput(xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, A: UnsafePointer<Float>,
                             dropout: LoRADropout, dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, r: Int) {
    var x = inp
    if !dropout.isIdentity, let dropped {
        dropout.apply(dropped, inp, count: N * C)
        x = UnsafePointer(dropped)
    }
    rankProject(N, r, C, x, A, xa)
}

/// Backward of the adapter term alone:
/// dB (OC,r) += s · doutᵀ·xa,  dxa = s · dout·B (N,r),  dA (r,C) += dxaᵀ·dropout(x),
/// dinp (N,C) += dropout'(dxa·A). dA/dB nil when only dinp is wanted.
/// Scratch: dxa (N,r); `dropped` (N,C) when dropout is not the identity.
public func loraBackward(dinp: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>?,
                         dB: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, xa: UnsafePointer<Float>,
                         A: UnsafePointer<Float>, B: UnsafePointer<Float>, scale: Float,
                         dropout: LoRADropout, dxa: UnsafeMutablePointer<Float>,
                         dropped: UnsafeMutablePointer<Float>?, N: Int, C: Int, OC: Int, r: Int) {
    // The products are RankProducts' (rank-r shapes, see there): dB is gathered transposed,
    // dxa = s · dout·B runs as dout against the rows of Bᵀ.
    if let dB { rankGather(N, r, OC, xa, dout, dB, alpha: scale, accumulate: true, transposed: true) }
    withTransposed(B, rows: OC, cols: r) { bt in rankProject(N, r, OC, dout, bt, dxa, alpha: scale) }
    let dxa = UnsafePointer(dxa)
    // With dropout, the same mask is regenerated into `dropped` as dropout(x) for dA, then reused
    // as scratch for dxa·A, which the mask gates on its way to dinp.
    let masked: UnsafeMutablePointer<Float>? = dropout.isIdentity ? nil : dropped
    if let dA {
        if let masked {
            dropout.apply(masked, inp, count: N * C)
            rankGather(N, r, C, dxa, masked, dA, accumulate: true)
        } else {
            rankGather(N, r, C, dxa, inp, dA, accumulate: true)
        }
    }
    guard let dinp else { return }
    if let masked {
        rankExpand(N, C, r, dxa, A, masked)
        parallelChunks(N * C, minChunk: 1 << 14) { rg in
            for i in rg { dinp[i] += masked[i] * dropout.factor(i) }
        }
    } else {
        rankExpand(N, C, r, dxa, A, dinp, accumulate: true)
    }
}
