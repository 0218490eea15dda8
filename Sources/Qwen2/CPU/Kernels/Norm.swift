import Foundation
import QwenCore

// Token embedding, RMSNorm and the residual add.

/// out (N,C) = table[ids[n]] — rows of the (V,C) table widened to fp32. Ids are checked by the caller.
public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                             table: WeightMatrix, N: Int) {
    let C = table.cols
    parallelFor(N, minChunk: 8) { n in
        let id = Int(ids[n])
        table.widenRows(id..<(id + 1), into: out + n * C)
    }
}

/// out (N,C) = inp · rsqrt(mean(inp²) + eps) · weight, in fp32 as transformers' Qwen2RMSNorm.
/// rstd (N) keeps each row's rsqrt for the backward pass.
public func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
                           inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           N: Int, C: Int, eps: Float) {
    parallelFor(N, minChunk: 4) { n in
        let x = inp + n * C, y = out + n * C
        let ms = sumOfSquares(x, C) / Float(C)
        let r = 1 / (ms + eps).squareRoot()
        rstd?[n] = r
        for i in 0..<C { y[i] = weight[i] * (x[i] * r) }
    }
}

/// Σ x[i]² with 8-wide accumulators.
@inlinable
func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    let raw = UnsafeRawPointer(x)
    var i = 0
    while i + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc += v * v
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] * x[i]; i += 1 }
    return s
}

/// out (count) += inp (count): the residual connection.
public func residualAdd(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: 1 << 14) { r in
        for i in r { out[i] += inp[i] }
    }
}

/// out (N,I) = silu(gate) · up, silu(x) = x / (1 + e^-x). gate and up are kept for backward.
public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                          up: UnsafePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: 1 << 12) { r in
        for i in r {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
        }
    }
}
