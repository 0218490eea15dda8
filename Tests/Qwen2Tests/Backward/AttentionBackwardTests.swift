import Foundation
import Testing
@testable import Qwen2

// Attention backward against finite differences of attentionForward, for GQA ratios 1, 2 and 7,
// with right and left padding in the batch.

@Suite struct AttentionBackwardTests {
    @Test(arguments: [(4, 4), (4, 2), (7, 1)])
    func gqaCausalWithPadding(heads: (Int, Int)) {
        let (NH, KVH) = heads
        let B = 3, T = 9, hd = 8
        var rng = TestRandom(seed: UInt64(10 + NH * KVH))
        let q = rng.normals(B * T * NH * hd), k = rng.normals(B * T * KVH * hd), v = rng.normals(B * T * KVH * hd)
        let w = rng.normals(B * T * NH * hd)
        // Row 0 full, row 1 right-padded (last 3 are padding), row 2 left-padded (first 2).
        var mask = [UInt8](repeating: 1, count: B * T)
        for t in (T - 3)..<T { mask[1 * T + t] = 0 }
        for t in 0..<2 { mask[2 * T + t] = 0 }

        func forward(_ q: [Float], _ k: [Float], _ v: [Float]) -> (out: [Float], lse: [Float], ks: [Float], vs: [Float]) {
            var ks = [Float](repeating: 0, count: k.count), vs = [Float](repeating: 0, count: v.count)
            kvStoreWrite(store: &ks, inp: k, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
            kvStoreWrite(store: &vs, inp: v, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
            var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: B * NH * T)
            attentionForward(out: &out, lse: &lse, q: q, kStore: ks, vStore: vs, keyMask: mask,
                             B: B, T: T, NH: NH, KVH: KVH, hd: hd, S: T, firstPosition: 0)
            return (out, lse, ks, vs)
        }
        let f = forward(q, k, v)
        var dq = [Float](repeating: .nan, count: q.count)
        var dk = [Float](repeating: .nan, count: k.count), dv = [Float](repeating: .nan, count: v.count)
        var scratch = [Float](repeating: 0, count: B * NH * T)
        attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, q: q, kStore: f.ks, vStore: f.vs, out: f.out,
                          lse: f.lse, keyMask: mask, scratchD: &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        #expect(dq.allSatisfy { $0.isFinite } && dk.allSatisfy { $0.isFinite } && dv.allSatisfy { $0.isFinite })
        checkGradient("dq", x: q, analytic: dq, coordinates: 20) { weightedSum(forward($0, k, v).out, w) }
        checkGradient("dk", x: k, analytic: dk, coordinates: 20) { weightedSum(forward(q, $0, v).out, w) }
        checkGradient("dv", x: v, analytic: dv, coordinates: 20) { weightedSum(forward(q, k, $0).out, w) }
        // Padded keys get no gradient.
        for t in 0..<2 {
            let off = ((2 * T + t) * KVH) * hd
            #expect(dk[off ..< off + KVH * hd].allSatisfy { $0 == 0 })
        }
    }
}

/// The BLAS-blocked training attention against the scalar kernels (same math) and finite
/// differences, with T spanning several query blocks.
@Suite struct BlockedAttentionTests {
    @Test(arguments: [(4, 2, 9), (7, 1, 300)])
    func agreesWithScalarKernels(shape: (Int, Int, Int)) {
        let (NH, KVH, T) = shape
        let B = 2, hd = 8
        var rng = TestRandom(seed: UInt64(T))
        let q = rng.normals(B * T * NH * hd), k = rng.normals(B * T * KVH * hd), v = rng.normals(B * T * KVH * hd)
        let w = rng.normals(B * T * NH * hd)
        var mask = [UInt8](repeating: 1, count: B * T)
        for t in (T - 3)..<T { mask[t] = 0 }      // row 0 right-padded
        for t in 0..<2 { mask[T + t] = 0 }        // row 1 left-padded
        var ks = [Float](repeating: 0, count: k.count), vs = ks
        kvStoreWrite(store: &ks, inp: k, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        kvStoreWrite(store: &vs, inp: v, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        var scratch = [Float](repeating: 0, count: blockedAttentionScratch(T: T))
        func forward(_ q: [Float], _ ks: [Float], _ vs: [Float]) -> ([Float], [Float]) {
            var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: B * NH * T)
            blockedAttentionForward(out: &out, lse: &lse, q: q, kStore: ks, vStore: vs, keyMask: mask,
                                    scratch: &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
            return (out, lse)
        }
        let (out, lse) = forward(q, ks, vs)
        var refOut = [Float](repeating: 0, count: q.count), refLse = [Float](repeating: 0, count: B * NH * T)
        attentionForward(out: &refOut, lse: &refLse, q: q, kStore: ks, vStore: vs, keyMask: mask,
                         B: B, T: T, NH: NH, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        #expect(zip(out, refOut).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(zip(lse, refLse).allSatisfy { $0 == $1 || abs($0 - $1) < 1e-5 })

        var D = [Float](repeating: 0, count: B * NH * T)
        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = dk
        blockedAttentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, q: q, kStore: ks, vStore: vs, out: out, lse: lse,
                                 keyMask: mask, scratchD: &D, scratch: &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        var rq = dq, rk = dk, rv = dv
        attentionBackward(dq: &rq, dk: &rk, dv: &rv, dout: w, q: q, kStore: ks, vStore: vs, out: out, lse: lse,
                          keyMask: mask, scratchD: &D, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        for (name, a, r) in [("dq", dq, rq), ("dk", dk, rk), ("dv", dv, rv)] {
            let scale = r.map { abs($0) }.max() ?? 1
            let err = zip(a, r).map { abs($0 - $1) }.max() ?? 0
            #expect(err < 1e-5 * max(1, scale), "\(name): max difference \(err)")
        }
        if T < 20 {
            // Finite differences through the blocked forward (keys are in store layout here).
            checkGradient("dq", x: q, analytic: dq) { weightedSum(forward($0, ks, vs).0, w) }
            var dkStore = [Float](repeating: 0, count: k.count)
            kvStoreWrite(store: &dkStore, inp: dk, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
            checkGradient("dk", x: ks, analytic: dkStore) { weightedSum(forward(q, $0, vs).0, w) }
        }
    }
}
