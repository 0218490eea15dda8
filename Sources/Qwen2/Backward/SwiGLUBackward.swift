import Foundation
import QwenCore

// SwiGLU backward. Forward (Kernels/Norm.swift): out = silu(g)·u, silu(g) = g·σ(g).
// gate, up, dout (count); writes dgate, dup (count):
// dup = dout·silu(g),  dgate = dout·u·σ(g)·(1 + g·(1 − σ(g)))

public func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                           dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                           up: UnsafePointer<Float>, count: Int) {
    parallelChunks((count + 7) / 8, minChunk: 512) { r in
        let lo = r.lowerBound * 8, hi = min(count, r.upperBound * 8)
        simd8Map(count: hi - lo) { i, lanes in
            let g = load8(gate, lo + i, lanes), d = load8(dout, lo + i, lanes), u = load8(up, lo + i, lanes)
            let sig = 1 / (1 + fastExp(-g))
            store8(d * g * sig, dup, lo + i, lanes)
            store8(d * u * sig * (1 + g * (1 - sig)), dgate, lo + i, lanes)
        }
    }
}
