import Foundation
import QwenCore

// SwiGLU backward. Forward (Kernels/Norm.swift): out = silu(g)·u, silu(g) = g·σ(g).
// gate, up, dout (count); writes dgate, dup (count):
// dup = dout·silu(g),  dgate = dout·u·σ(g)·(1 + g·(1 − σ(g)))

public func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                           dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                           up: UnsafePointer<Float>, count: Int) {
    parallelChunks(count, minChunk: 1 << 12) { r in
        for i in r {
            let g = gate[i], d = dout[i]
            let sig = 1 / (1 + expf(-g))
            dup[i] = d * g * sig
            dgate[i] = d * up[i] * sig * (1 + g * (1 - sig))
        }
    }
}
