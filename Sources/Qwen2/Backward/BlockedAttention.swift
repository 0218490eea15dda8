import CBLAS
import Foundation
import QwenCore

// Training attention in BLAS blocks: the same math as attentionForward / attentionBackward
// (GQA, causal, key padding mask, log-sum-exp kept), but each (row, query head) is processed a
// block of `attentionQueryBlock` queries at a time as matrix products, so the T² work runs at GEMM
// speed. A block's scores (rows × keys up to the block's last query) live in `scratch`, never the
// whole (T × T) matrix: the probabilities are recomputed in backward from q, k and the lse.
//
// q, out, dout, dq (B,T,NH,hd)     kStore, vStore (B,KVH,T,hd)     dk, dv (B,T,KVH,hd)
// lse, scratchD (B,NH,T)           keyMask (B,T)                   scratch: blockedAttentionScratch(T:)
// segments (B,T), optional: packed rows. Query t then sees key s only if s ≤ t and
// segments[s] == segments[t] != 0, so packed samples never attend to each other; a query in
// segment 0 (padding) sees nothing (lse −inf, output 0). nil: one segment per row (keyMask alone).
// A query block of a packed row only multiplies the keys from the first one its segments can see
// (`firstVisibleKey`), so packed samples cost about Σ length², not T².
// Products are threaded by BLAS; elementwise parts by parallelFor over rows (one writer each),
// exponentials by fastExp.

public let attentionQueryBlock = 128

/// Floats of scratch blockedAttention{Forward,Backward} need for sequences of T tokens.
public func blockedAttentionScratch(T: Int) -> Int { 2 * min(T, attentionQueryBlock) * T }

/// The first key any query of rows i0..<i0+rows can see: 0 without segments; with them, the first
/// key in one of the block's (non-padding) segments, or `end` when the block is all padding.
@inline(__always)
func firstVisibleKey(_ seg: UnsafePointer<Int32>?, i0: Int, rows: Int, end: Int) -> Int {
    guard let seg else { return 0 }
    var lo = Int32.max, hi = Int32.min
    for r in i0..<(i0 + rows) where seg[r] != 0 {
        lo = min(lo, seg[r])
        hi = max(hi, seg[r])
    }
    if lo > hi { return end }
    for j in 0..<end where seg[j] >= lo && seg[j] <= hi {
        // Segment ids need not be sorted: check the id is really one of the block's.
        for r in i0..<(i0 + rows) where seg[r] == seg[j] { return j }
    }
    return end
}

public func blockedAttentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                                    q: UnsafePointer<Float>, kStore: UnsafePointer<Float>,
                                    vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                    segments: UnsafePointer<Int32>? = nil,
                                    scratch: UnsafeMutablePointer<Float>,
                                    B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let rep = NH / KVH
    let scale = Float(1 / Double(hd).squareRoot())
    let ldq = Int32(NH * hd)
    for b in 0..<B {
        let mask = keyMask + b * T
        let seg = segments.map { $0 + b * T }
        for h in 0..<NH {
            let kv = (b * KVH + h / rep) * T * hd
            var i0 = 0
            while i0 < T {
                let rows = min(attentionQueryBlock, T - i0), keys = i0 + rows
                // Keys k0..<keys: width columns of scores per query.
                let k0 = firstVisibleKey(seg, i0: i0, rows: rows, end: keys), width = keys - k0
                defer { i0 += rows }
                let qb = q + ((b * T + i0) * NH + h) * hd
                let ob = out + ((b * T + i0) * NH + h) * hd
                let lrow = lse + (b * NH + h) * T + i0
                if width == 0 {  // only padding queries
                    for r in 0..<rows {
                        lrow[r] = -.infinity
                        (ob + r * NH * hd).update(repeating: 0, count: hd)
                    }
                    continue
                }
                let s = scratch
                // s (rows, width) = q_blk · k[k0..<keys]ᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(width), Int32(hd),
                            scale, qb, ldq, kStore + kv + k0 * hd, Int32(hd), 0, s, Int32(width))
                parallelFor(rows, minChunk: 8) { r in
                    let row = s + r * width - k0  // row[j] is key j, for j in k0..<keys
                    let last = i0 + r  // inclusive: causal
                    let sq = seg?[last] ?? 1
                    @inline(__always) func hidden(_ j: Int) -> Bool {
                        mask[j] == 0 || (seg != nil && seg.unsafelyUnwrapped[j] != sq)
                    }
                    var m = -Float.infinity
                    if sq != 0 && last >= k0 { for j in k0...last where !hidden(j) { m = max(m, row[j]) } }
                    if m == -.infinity {
                        (row + k0).update(repeating: 0, count: width)
                        lrow[r] = -.infinity
                        return
                    }
                    expShifted(row + k0, count: last + 1 - k0, shift: m)
                    var sum: Float = 0
                    for j in k0...last {
                        if hidden(j) { row[j] = 0 }
                        sum += row[j]
                    }
                    let inv = 1 / sum
                    for j in k0...last { row[j] *= inv }
                    if last + 1 < keys { (row + last + 1).update(repeating: 0, count: keys - last - 1) }
                    lrow[r] = m + logf(sum)
                }
                // out_blk (rows, hd) = p · v[k0..<keys]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hd), Int32(width),
                            1, s, Int32(width), vStore + kv + k0 * hd, Int32(hd), 0, ob, ldq)
            }
        }
    }
}

public func blockedAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                     dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                     q: UnsafePointer<Float>, kStore: UnsafePointer<Float>,
                                     vStore: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                     lse: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                     segments: UnsafePointer<Int32>? = nil,
                                     scratchD: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                     B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let rep = NH / KVH
    let scale = Float(1 / Double(hd).squareRoot())
    let ldq = Int32(NH * hd), ldk = Int32(KVH * hd)
    parallelFor(B * NH * T, minChunk: 64) { item in
        let t = item % T, h = (item / T) % NH, b = item / (T * NH)
        let off = ((b * T + t) * NH + h) * hd
        scratchD[item] = dot(dout + off, out + off, hd)
    }
    dk.update(repeating: 0, count: B * T * KVH * hd)
    dv.update(repeating: 0, count: B * T * KVH * hd)
    let blockFloats = min(T, attentionQueryBlock) * T
    for b in 0..<B {
        let mask = keyMask + b * T
        let seg = segments.map { $0 + b * T }
        for h in 0..<NH {
            let kh = h / rep
            let kv = (b * KVH + kh) * T * hd
            var i0 = 0
            while i0 < T {
                let rows = min(attentionQueryBlock, T - i0), keys = i0 + rows
                let k0 = firstVisibleKey(seg, i0: i0, rows: rows, end: keys), width = keys - k0
                defer { i0 += rows }
                let qb = q + ((b * T + i0) * NH + h) * hd
                let dob = dout + ((b * T + i0) * NH + h) * hd
                let dqb = dq + ((b * T + i0) * NH + h) * hd
                if width == 0 {  // only padding queries: no gradient
                    for r in 0..<rows { (dqb + r * NH * hd).update(repeating: 0, count: hd) }
                    continue
                }
                let p = scratch, ds = scratch + blockFloats
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(width), Int32(hd),
                            scale, qb, ldq, kStore + kv + k0 * hd, Int32(hd), 0, p, Int32(width))
                // ds (rows, width) = dout_blk · vᵀ, then ds = p ⊙ (ds − D)·scale
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(width), Int32(hd),
                            1, dob, ldq, vStore + kv + k0 * hd, Int32(hd), 0, ds, Int32(width))
                let lrow = lse + (b * NH + h) * T + i0
                let drow = scratchD + (b * NH + h) * T + i0
                parallelFor(rows, minChunk: 8) { r in
                    let pr = p + r * width - k0, dr = ds + r * width - k0  // [j] is key j
                    let l = lrow[r], D = drow[r]
                    let last = i0 + r
                    if !l.isFinite || last < k0 {
                        (pr + k0).update(repeating: 0, count: width)
                        (dr + k0).update(repeating: 0, count: width)
                        return
                    }
                    let sq = seg?[last] ?? 1
                    expShifted(pr + k0, count: last + 1 - k0, shift: l)
                    for j in k0...last {
                        if mask[j] == 0 || (seg != nil && seg.unsafelyUnwrapped[j] != sq) { pr[j] = 0 }
                        dr[j] = pr[j] * (dr[j] - D) * scale
                    }
                    if last + 1 < keys {
                        (pr + last + 1).update(repeating: 0, count: keys - last - 1)
                        (dr + last + 1).update(repeating: 0, count: keys - last - 1)
                    }
                }
                // dq_blk (rows, hd) = ds · k;  dk[k0..] (width, hd) += dsᵀ · q_blk;  dv[k0..] += pᵀ · dout_blk
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(hd), Int32(width),
                            1, ds, Int32(width), kStore + kv + k0 * hd, Int32(hd), 0, dqb, ldq)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(width), Int32(hd), Int32(rows),
                            1, ds, Int32(width), qb, ldq, 1, dk + ((b * T + k0) * KVH + kh) * hd, ldk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(width), Int32(hd), Int32(rows),
                            1, p, Int32(width), dob, ldq, 1, dv + ((b * T + k0) * KVH + kh) * hd, ldk)
            }
        }
    }
}
