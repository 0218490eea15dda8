import Foundation
import QwenCore

// SwiGLU backward. Forward (Kernels/Norm.swift): out = silu(g)·u, silu(g) = g·σ(g).
// gate, up, dout (count); writes dgate, dup (count):
// dup = dout·silu(g),  dgate = dout·u·σ(g)·(1 + g·(1 − σ(g)))

public func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                           dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                           up: UnsafePointer<Float>, count: Int) {
    // Eight lanes at i (lanes < 8 only for the tail); an explicit loop (see FastExp.swift).
    @inline(__always) func lanes8(_ i: Int, _ lanes: Int) {
        let g = load8(gate, i, lanes), d = load8(dout, i, lanes), u = load8(up, i, lanes)
        let sig = 1 / (1 + fastExp(-g))
        store8(d * g * sig, dup, i, lanes)
        store8(d * u * sig * (1 + g * (1 - sig)), dgate, i, lanes)
    }
    parallelChunks((count + 7) / 8, minChunk: 512) { r in
        let lo = r.lowerBound * 8, hi = min(count, r.upperBound * 8)
        var i = lo
        while i + 8 <= hi {
            lanes8(i, 8)
            i += 8
        }
        if i < hi { lanes8(i, hi - i) }
    }
}
