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
// Threads take contiguous runs of the (row, query head) pairs, each with its own score block and
// single-threaded products (no hand-off per block). In backward, heads that share a KV head add
// into the same dk/dv rows: the first run adds into dk/dv, every other run into its own zeroed
// copy, added in afterwards in run order — so the bits depend on the thread count alone.
// Exponentials by fastExp. A block whose keys are all visible (no padding key, one segment: every
// block of an unpadded sequence) runs its row max, exp-and-sum and dS loops eight lanes at a time
// with no per-key test; a padded row without segments the same loops times a 0/1 key vector; a
// packed block spanning segments the masked scalar loops. The forward leaves each row of p
// unnormalised and scales the (hd-wide) output row by 1/Σ instead; the backward applies the
// softmax scale through the alpha of the products that read dS. Block size: 128 queries measured
// best at T = 2,048 on the 0.5B shapes (64: 3% slower, 256: 4% slower).

public let attentionQueryBlock = 128

/// Floats of scratch blockedAttention{Forward,Backward} need for sequences of T tokens (the
/// first thread's; the others allocate their own).
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

/// True when every key k0..<keys is visible to every query of the block i0..<keys (up to the
/// causal limit): no padding key and, with segments, one non-padding segment throughout. Such a
/// block takes the SIMD path (no per-key mask test); the others the masked scalar one.
@inline(__always)
func blockFullyVisible(_ mask: UnsafePointer<UInt8>, _ seg: UnsafePointer<Int32>?, k0: Int, keys: Int) -> Bool {
    if let seg {
        let s0 = seg[k0]
        if s0 == 0 { return false }
        for j in k0..<keys where mask[j] == 0 || seg[j] != s0 { return false }
    } else {
        for j in k0..<keys where mask[j] == 0 { return false }
    }
    return true
}

/// The largest of x[0..<n] (n ≥ 1), eight lanes at a time. Lane-wise selects, not
/// pointwiseMax / .max(): those compile to out-of-line calls.
@inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        let v = load8(x, i, 8)
        m8 = m8.replacing(with: v, where: v .> m8)
        i += 8
    }
    var m = -Float.infinity
    for l in 0..<8 where m8[l] > m { m = m8[l] }
    while i < n { if x[i] > m { m = x[i] }; i += 1 }
    return m
}

/// x[i] = e^(x[i] − shift) for i in 0..<n; returns their sum (eight partial sums).
@inline(__always)
func expShiftedSum(_ x: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
    var s8 = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let e = fastExp(load8(x, i, 8) - shift)
        store8(e, x, i, 8)
        s8 += e
        i += 8
    }
    var sum: Float = 0
    for l in 0..<8 { sum += s8[l] }
    if i < n {
        let lanes = n - i
        let e = fastExp(load8(x, i, lanes) - shift)
        store8(e, x, i, lanes)
        for l in 0..<lanes { sum += e[l] }
    }
    return sum
}

/// The backward's row: p[i] = e^(p[i] − lse), ds[i] = p[i]·(ds[i] − D), for i in 0..<n (the
/// softmax scale is applied by the products that read ds).
@inline(__always)
func probabilitiesAndScoreGrad(_ p: UnsafeMutablePointer<Float>, _ ds: UnsafeMutablePointer<Float>, _ n: Int,
                               lse: Float, D: Float) {
    var i = 0
    while i + 8 <= n {
        let e = fastExp(load8(p, i, 8) - lse)
        store8(e, p, i, 8)
        store8(e * (load8(ds, i, 8) - D), ds, i, 8)
        i += 8
    }
    if i < n {
        let lanes = n - i
        let e = fastExp(load8(p, i, lanes) - lse)
        store8(e, p, i, lanes)
        store8(e * (load8(ds, i, lanes) - D), ds, i, lanes)
    }
}

/// keep[j − k0] = 1 for a visible key j of k0..<keys, 0 for a padding one (no segments: then
/// visibility does not depend on the query, so one vector serves the whole block).
@inline(__always)
func keyKeepVector(_ keep: UnsafeMutablePointer<Float>, _ mask: UnsafePointer<UInt8>, k0: Int, keys: Int) {
    for j in k0..<keys { keep[j - k0] = mask[j] != 0 ? 1 : 0 }
}

/// The largest x[i] with keep[i] ≠ 0 over 0..<n, −∞ if none.
@inline(__always)
func maskedRowMax(_ x: UnsafePointer<Float>, _ keep: UnsafePointer<Float>, _ n: Int) -> Float {
    var m8 = SIMD8<Float>(repeating: -.infinity)
    var i = 0
    while i + 8 <= n {
        let v = load8(x, i, 8)
        m8 = m8.replacing(with: v, where: (v .> m8) .& (load8(keep, i, 8) .> 0))
        i += 8
    }
    var m = -Float.infinity
    for l in 0..<8 where m8[l] > m { m = m8[l] }
    while i < n { if keep[i] > 0 && x[i] > m { m = x[i] }; i += 1 }
    return m
}

/// x[i] = keep[i]·e^(x[i] − shift) for i in 0..<n; returns their sum.
@inline(__always)
func maskedExpShiftedSum(_ x: UnsafeMutablePointer<Float>, _ keep: UnsafePointer<Float>, _ n: Int, shift: Float) -> Float {
    var s8 = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let e = fastExp(load8(x, i, 8) - shift) * load8(keep, i, 8)
        store8(e, x, i, 8)
        s8 += e
        i += 8
    }
    var sum: Float = 0
    for l in 0..<8 { sum += s8[l] }
    if i < n {
        let lanes = n - i
        let e = fastExp(load8(x, i, lanes) - shift) * load8(keep, i, lanes)
        store8(e, x, i, lanes)
        for l in 0..<lanes { sum += e[l] }
    }
    return sum
}

/// probabilitiesAndScoreGrad with padding keys: p[i] = keep[i]·e^(p[i] − lse), ds[i] = p[i]·(ds[i] − D).
@inline(__always)
func maskedProbabilitiesAndScoreGrad(_ p: UnsafeMutablePointer<Float>, _ ds: UnsafeMutablePointer<Float>,
                                     _ keep: UnsafePointer<Float>, _ n: Int, lse: Float, D: Float) {
    var i = 0
    while i + 8 <= n {
        let e = fastExp(load8(p, i, 8) - lse) * load8(keep, i, 8)
        store8(e, p, i, 8)
        store8(e * (load8(ds, i, 8) - D), ds, i, 8)
        i += 8
    }
    if i < n {
        let lanes = n - i
        let e = fastExp(load8(p, i, lanes) - lse) * load8(keep, i, lanes)
        store8(e, p, i, lanes)
        store8(e * (load8(ds, i, lanes) - D), ds, i, lanes)
    }
}

public func blockedAttentionForward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                                    q: UnsafePointer<Float>, kStore: UnsafePointer<Float>,
                                    vStore: UnsafePointer<Float>, keyMask: UnsafePointer<UInt8>,
                                    segments: UnsafePointer<Int32>? = nil,
                                    scratch: UnsafeMutablePointer<Float>,
                                    B: Int, T: Int, NH: Int, KVH: Int, hd: Int) {
    let rep = NH / KVH
    let scale = Float(1 / Double(hd).squareRoot())
    let ldq = NH * hd
    let blockFloats = blockedAttentionScratch(T: T)
    parallelChunks(B * NH) { items in
        let own = items.lowerBound == 0 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: blockFloats)
        let keep = UnsafeMutablePointer<Float>.allocate(capacity: T)
        defer { own?.deallocate(); keep.deallocate() }
        let s = own ?? scratch
        for item in items {
            let b = item / NH, h = item % NH
            let mask = keyMask + b * T
            let seg = segments.map { $0 + b * T }
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
                // s (rows, width) = q_blk · k[k0..<keys]ᵀ
                GEMM.general(transA: false, transB: true, rows, width, hd, alpha: scale, qb, lda: ldq,
                             kStore + kv + k0 * hd, ldb: hd, s, ldc: width, threads: 1)
                // Each row is left unnormalised (e^(s − m)); 1/Σ goes to inv[r] and scales the
                // output row after the product (hd floats instead of width).
                let inv = s + min(T, attentionQueryBlock) * T
                let clear = blockFullyVisible(mask, seg, k0: k0, keys: keys)
                if !clear && seg == nil { keyKeepVector(keep, mask, k0: k0, keys: keys) }
                for r in 0..<rows {
                    let row = s + r * width - k0  // row[j] is key j, for j in k0..<keys
                    let last = i0 + r  // inclusive: causal
                    if clear || seg == nil {
                        let n = last + 1 - k0
                        let m = clear ? rowMax(row + k0, n) : maskedRowMax(row + k0, keep, n)
                        if m == -.infinity {  // only padding keys so far
                            (row + k0).update(repeating: 0, count: width)
                            inv[r] = 0
                            lrow[r] = -.infinity
                            continue
                        }
                        let sum = clear ? expShiftedSum(row + k0, n, shift: m) : maskedExpShiftedSum(row + k0, keep, n, shift: m)
                        if last + 1 < keys { (row + last + 1).update(repeating: 0, count: keys - last - 1) }
                        inv[r] = 1 / sum
                        lrow[r] = m + logf(sum)
                        continue
                    }
                    let sq = seg?[last] ?? 1
                    @inline(__always) func hidden(_ j: Int) -> Bool {
                        mask[j] == 0 || (seg != nil && seg.unsafelyUnwrapped[j] != sq)
                    }
                    var m = -Float.infinity
                    if sq != 0 && last >= k0 { for j in k0...last where !hidden(j) { m = max(m, row[j]) } }
                    if m == -.infinity {
                        (row + k0).update(repeating: 0, count: width)
                        inv[r] = 0
                        lrow[r] = -.infinity
                        continue
                    }
                    expShifted(row + k0, count: last + 1 - k0, shift: m)
                    var sum: Float = 0
                    for j in k0...last {
                        if hidden(j) { row[j] = 0 }
                        sum += row[j]
                    }
                    if last + 1 < keys { (row + last + 1).update(repeating: 0, count: keys - last - 1) }
                    inv[r] = 1 / sum
                    lrow[r] = m + logf(sum)
                }
                // out_blk (rows, hd) = p · v[k0..<keys]
                GEMM.general(transA: false, transB: false, rows, hd, width, s, lda: width,
                             vStore + kv + k0 * hd, ldb: hd, ob, ldc: ldq, threads: 1)
                for r in 0..<rows {
                    let o = ob + r * ldq, f = inv[r]
                    for d in 0..<hd { o[d] *= f }
                }
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
    let ldq = NH * hd, ldk = KVH * hd
    parallelFor(B * NH * T, minChunk: 64) { item in
        let t = item % T, h = (item / T) % NH, b = item / (T * NH)
        let off = ((b * T + t) * NH + h) * hd
        scratchD[item] = dot(dout + off, out + off, hd)
    }
    let kvCount = B * T * KVH * hd
    dk.update(repeating: 0, count: kvCount)
    dv.update(repeating: 0, count: kvCount)
    let blockFloats = min(T, attentionQueryBlock) * T
    // Runs after the first add into their own dk/dv (kept here until summed in run order).
    var partials: [(range: Range<Int>, buffer: UnsafeMutablePointer<Float>)] = []
    let lock = NSLock()
    parallelChunks(B * NH) { items in
        let first = items.lowerBound == 0
        let own = first ? nil : UnsafeMutablePointer<Float>.allocate(capacity: 2 * blockFloats + 2 * kvCount)
        let p = own ?? scratch, ds = p + blockFloats
        let keep = UnsafeMutablePointer<Float>.allocate(capacity: T)
        defer { keep.deallocate() }
        let dkAcc = own.map { $0 + 2 * blockFloats } ?? dk, dvAcc = own.map { $0 + 2 * blockFloats + kvCount } ?? dv
        if !first {
            dkAcc.update(repeating: 0, count: 2 * kvCount)
            lock.lock()
            partials.append((items, own!))  // p, ds, then this run's dk and dv
            lock.unlock()
        }
        for item in items {
            let b = item / NH, h = item % NH
            let mask = keyMask + b * T
            let seg = segments.map { $0 + b * T }
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
                GEMM.general(transA: false, transB: true, rows, width, hd, alpha: scale, qb, lda: ldq,
                             kStore + kv + k0 * hd, ldb: hd, p, ldc: width, threads: 1)
                // ds (rows, width) = dout_blk · vᵀ, then ds = p ⊙ (ds − D) (·scale in the products below)
                GEMM.general(transA: false, transB: true, rows, width, hd, dob, lda: ldq,
                             vStore + kv + k0 * hd, ldb: hd, ds, ldc: width, threads: 1)
                let lrow = lse + (b * NH + h) * T + i0
                let drow = scratchD + (b * NH + h) * T + i0
                let clear = blockFullyVisible(mask, seg, k0: k0, keys: keys)
                if !clear && seg == nil { keyKeepVector(keep, mask, k0: k0, keys: keys) }
                for r in 0..<rows {
                    let pr = p + r * width - k0, dr = ds + r * width - k0  // [j] is key j
                    let l = lrow[r], D = drow[r]
                    let last = i0 + r
                    if !l.isFinite || last < k0 {
                        (pr + k0).update(repeating: 0, count: width)
                        (dr + k0).update(repeating: 0, count: width)
                        continue
                    }
                    if clear {
                        probabilitiesAndScoreGrad(pr + k0, dr + k0, last + 1 - k0, lse: l, D: D)
                    } else if seg == nil {
                        maskedProbabilitiesAndScoreGrad(pr + k0, dr + k0, keep, last + 1 - k0, lse: l, D: D)
                    } else {
                        let sq = seg?[last] ?? 1
                        expShifted(pr + k0, count: last + 1 - k0, shift: l)
                        for j in k0...last {
                            if mask[j] == 0 || (seg != nil && seg.unsafelyUnwrapped[j] != sq) { pr[j] = 0 }
                            dr[j] = pr[j] * (dr[j] - D)
                        }
                    }
                    if last + 1 < keys {
                        (pr + last + 1).update(repeating: 0, count: keys - last - 1)
                        (dr + last + 1).update(repeating: 0, count: keys - last - 1)
                    }
                }
                // dq_blk (rows, hd) = scale·ds · k;  dk[k0..] (width, hd) += scale·dsᵀ · q_blk;  dv[k0..] += pᵀ · dout_blk
                GEMM.general(transA: false, transB: false, rows, hd, width, alpha: scale, ds, lda: width,
                             kStore + kv + k0 * hd, ldb: hd, dqb, ldc: ldq, threads: 1)
                GEMM.general(transA: true, transB: false, width, hd, rows, alpha: scale, ds, lda: width, qb, ldb: ldq,
                             beta: 1, dkAcc + ((b * T + k0) * KVH + kh) * hd, ldc: ldk, threads: 1)
                GEMM.general(transA: true, transB: false, width, hd, rows, p, lda: width, dob, ldb: ldq,
                             beta: 1, dvAcc + ((b * T + k0) * KVH + kh) * hd, ldc: ldk, threads: 1)
            }
        }
    }
    for (_, buffer) in partials.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
        let pdk = buffer + 2 * blockFloats, pdv = pdk + kvCount
        parallelChunks(kvCount, minChunk: 1 << 14) { r in
            for i in r {
                dk[i] += pdk[i]
                dv[i] += pdv[i]
            }
        }
        buffer.deallocate()
    }
}
