import QwenCore

// RMSNorm backward. Forward (Kernels/Norm.swift): y = w ⊙ x·r, r = 1/√(mean(x²) + eps).
// inp (N,C), weight (C), rstd (N) from the forward, dout (N,C);
// dinp (N,C) += r·(w⊙dy) − x · r³/C · Σ_c (w⊙dy⊙x)     (accumulates: the residual stream's gradient)
// dweight (C) += Σ_n dy ⊙ x·r                           (nil when the norm is frozen)

public func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                            dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int) {
    parallelFor(N, minChunk: 4) { n in
        let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
        let r = rstd[n]
        var dot: Float = 0
        for c in 0..<C { dot += weight[c] * dy[c] * x[c] }
        let k = dot * r * r * r / Float(C)
        for c in 0..<C { dx[c] += r * weight[c] * dy[c] - k * x[c] }
    }
    guard let dweight else { return }
    // Columns split across threads, rows summed in order: the same bits for any thread count.
    parallelChunks(C, minChunk: 64) { cols in
        for n in 0..<N {
            let x = inp + n * C, dy = dout + n * C
            let r = rstd[n]
            for c in cols { dweight[c] += dy[c] * x[c] * r }
        }
    }
}
