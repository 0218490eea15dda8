import Foundation
import QwenCore

// Backward of grouped-query causal attention with a key padding mask, flash style: the
// probabilities are recomputed from q, k and the forward's log-sum-exp, never stored (T × T).
// Training layout: positions 0..<T, the key/value stores as the forward reads them with S = T.
//
// q (B,T,NH,hd)                rotated queries
// kStore, vStore (B,KVH,T,hd)  rotated keys, values (kvStoreWrite with S = T, firstPosition 0)
// out, dout (B,T,NH,hd)        the forward's output and its gradient
// lse (B,NH,T)                 the forward's log-sum-exp of scaled scores (−inf: no visible key)
// keyMask (B,T)                1 for real tokens, 0 for padding
// writes dq (B,T,NH,hd), dk, dv (B,T,KVH,hd): dk/dv summed over the NH/KVH query heads that share
// a kv head. scratchD (B,NH,T) holds D = Σ dout·out per query.
//
// With p_ij = exp(s_ij − lse_i), s_ij = q_i·k_j/√hd:
//   dv_j = Σ_i p_ij dout_i,  ds_ij = p_ij (dout_i·v_j − D_i),
//   dq_i = Σ_j ds_ij k_j /√hd,  dk_j = Σ_i ds_ij q_i /√hd.
// Queries are split across threads for dq, keys for dk/dv: each output has one writer and sums
// in a fixed order, so the bits do not depend on the thread count.

public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, kStore: UnsafePointer<Float>,
                              vStore: UnsafePointer<Float>, out: UnsafePointer<Float>,
                              lse: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                              scratchD: UnsafeMutablePointer<Float>,
                              B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let rep = NH / KVH
    let scale = Float(1 / Double(hd).squareRoot())

    parallelFor(B * NH * T, minChunk: 16) { item in
        let t = item % T, h = (item / T) % NH, b = item / (T * NH)
        let off = ((b * T + t) * NH + h) * hd
        scratchD[item] = dot(dout + off, out + off, hd)
    }

    // dq: one query (b, h, i) per work item, keys j ≤ i.
    parallelFor(B * NH * T, minChunk: 1) { item in
        let i = item % T, h = (item / T) % NH, b = item / (T * NH)
        let off = ((b * T + i) * NH + h) * hd
        let g = dq + off
        g.update(repeating: 0, count: hd)
        let l = lse[item]
        if !l.isFinite { return }
        let qi = q + off, doi = dout + off
        let kvBase = (b * KVH + h / rep) * T * hd
        let mask = keyMask + b * T
        let Di = scratchD[item]
        for j in 0...i where mask[j] != 0 {
            let kj = kStore + kvBase + j * hd
            let p = expf(dot(qi, kj, hd) * scale - l)
            let ds = p * (dot(doi, vStore + kvBase + j * hd, hd) - Di)
            axpy(g, ds * scale, kj, hd)
        }
    }

    // dk, dv: one key (b, kv head, j) per work item, the rep query heads and queries i ≥ j.
    parallelFor(B * KVH * T, minChunk: 1) { item in
        let j = item % T, kh = (item / T) % KVH, b = item / (T * KVH)
        let gk = dk + ((b * T + j) * KVH + kh) * hd
        let gv = dv + ((b * T + j) * KVH + kh) * hd
        gk.update(repeating: 0, count: hd)
        gv.update(repeating: 0, count: hd)
        if keyMask[b * T + j] == 0 { return }
        let kvBase = (b * KVH + kh) * T * hd
        let kj = kStore + kvBase + j * hd, vj = vStore + kvBase + j * hd
        for h in (kh * rep)..<(kh * rep + rep) {
            let rowBase = (b * NH + h) * T
            for i in j..<T {
                let l = lse[rowBase + i]
                if !l.isFinite { continue }
                let off = ((b * T + i) * NH + h) * hd
                let qi = q + off, doi = dout + off
                let p = expf(dot(qi, kj, hd) * scale - l)
                axpy(gv, p, doi, hd)
                let ds = p * (dot(doi, vj, hd) - scratchD[rowBase + i])
                axpy(gk, ds * scale, qi, hd)
            }
        }
    }
}
