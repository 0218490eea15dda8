import Foundation
import QwenCore

// Grouped-query causal attention over a key/value store, with an online (streaming) softmax in
// key blocks, so no (T × T) score matrix exists: each query keeps a running max, sum and output.
//
// q (B,T,NH,hd)            queries of T new tokens, already rotated
// kStore, vStore (B,KVH,S,hd)  keys / values for positions 0..<S (S = capacity), rotated keys
// keyMask (B,S)            1 where a key is a real token, 0 for padding
// out (B,T,NH,hd)          softmax(q·kᵀ/√hd + mask) · v
// lse (B,NH,T)             log-sum-exp of each query's scaled scores, kept for backward
// Query t of row b sits at position firstPosition + t and sees keys j ≤ that position with
// keyMask[b,j] = 1. Query head h reads kv head h / (NH / KVH).

let attentionKeyBlock = 64

/// Copies k or v (B,T,KVH,hd) into a store (B,KVH,S,hd) at positions firstPosition..<firstPosition+T.
public func kvStoreWrite(store: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                         B: Int, T: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int) {
    for b in 0..<B {
        for t in 0..<T {
            for h in 0..<KVH {
                let src = inp + ((b * T + t) * KVH + h) * hd
                let dst = store + ((b * KVH + h) * S + firstPosition + t) * hd
                dst.update(from: src, count: hd)
            }
        }
    }
}

public func attentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?,
                             q: UnsafePointer<Float>, kStore: UnsafePointer<Float>,
                             vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                             B: Int, T: Int, NH: Int, KVH: Int, hd: Int, S: Int, firstPosition: Int) {
    let rep = NH / KVH
    let scale = Float(1 / Double(hd).squareRoot())
    parallelFor(B * NH * T, minChunk: 1) { item in
        let t = item % T, h = (item / T) % NH, b = item / (T * NH)
        let qv = q + ((b * T + t) * NH + h) * hd
        let kvBase = (b * KVH + h / rep) * S * hd
        let keys = kStore + kvBase, values = vStore + kvBase
        let mask = keyMask + b * S
        let o = out + ((b * T + t) * NH + h) * hd
        o.update(repeating: 0, count: hd)
        let last = firstPosition + t  // inclusive
        var runningMax = -Float.infinity
        var runningSum: Float = 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: attentionKeyBlock) { scores in
            var j0 = 0
            while j0 <= last {
                let j1 = min(last + 1, j0 + attentionKeyBlock)
                var blockMax = -Float.infinity
                for j in j0..<j1 {
                    if mask[j] == 0 {
                        scores[j - j0] = -.infinity
                    } else {
                        let s = dot(qv, keys + j * hd, hd) * scale
                        scores[j - j0] = s
                        if s > blockMax { blockMax = s }
                    }
                }
                if blockMax > -.infinity {
                    let newMax = max(runningMax, blockMax)
                    let correction = expf(runningMax - newMax)
                    if correction != 1 {
                        runningSum *= correction
                        for i in 0..<hd { o[i] *= correction }
                    }
                    for j in j0..<j1 where scores[j - j0] > -.infinity {
                        let p = expf(scores[j - j0] - newMax)
                        runningSum += p
                        axpy(o, p, values + j * hd, hd)
                    }
                    runningMax = newMax
                }
                j0 = j1
            }
        }
        if runningSum > 0 {
            let inv = 1 / runningSum
            for i in 0..<hd { o[i] *= inv }
        }
        lse?[(b * NH + h) * T + t] = runningMax + logf(runningSum)
    }
}

/// Σ a[i]·b[i], 8-wide.
@inlinable
public func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    let ar = UnsafeRawPointer(a), br = UnsafeRawPointer(b)
    var i = 0
    while i + 16 <= n {
        acc0 += ar.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            * br.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        acc1 += ar.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            * br.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y[i] += a · x[i]
@inlinable
func axpy(_ y: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] += a * x[i] }
}
