import Foundation
import Testing
@testable import Qwen2

/// Blocked attention over a packed row (segments spanning query-block boundaries, padding at the
/// end) against each segment run alone: same outputs, lse and gradients; padding sees nothing.
@Suite struct PackedAttentionTests {
    @Test(arguments: [[100, 150, 40], [7, 200, 5, 60], [290]])
    func segmentsMatchSeparateRuns(lengths: [Int]) {
        let NH = 4, KVH = 2, hd = 8, T = 300
        var rng = TestRandom(seed: UInt64(lengths.count))
        let q = rng.normals(T * NH * hd), k = rng.normals(T * KVH * hd), v = rng.normals(T * KVH * hd)
        let w = rng.normals(T * NH * hd)
        var seg = [Int32](repeating: 0, count: T)
        var starts: [Int] = []
        var t = 0
        for (i, n) in lengths.enumerated() {
            starts.append(t)
            for j in t..<(t + n) { seg[j] = Int32(i + 1) }
            t += n
        }
        let mask = seg.map { UInt8($0 != 0 ? 1 : 0) }

        /// forward + backward of one (1, n) batch: out, lse, dq, dk, dv.
        func run(_ q: [Float], _ k: [Float], _ v: [Float], _ w: [Float], n: Int, mask: [UInt8], segments: [Int32]?)
            -> (out: [Float], lse: [Float], dq: [Float], dk: [Float], dv: [Float]) {
            var ks = [Float](repeating: 0, count: k.count), vs = ks
            kvStoreWrite(store: &ks, inp: k, B: 1, T: n, KVH: KVH, hd: hd, S: n, firstPosition: 0)
            kvStoreWrite(store: &vs, inp: v, B: 1, T: n, KVH: KVH, hd: hd, S: n, firstPosition: 0)
            var scratch = [Float](repeating: 0, count: blockedAttentionScratch(T: n))
            var out = [Float](repeating: .nan, count: q.count), lse = [Float](repeating: .nan, count: NH * n)
            var D = [Float](repeating: 0, count: NH * n)
            var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = dk
            segments.withOptionalPointer { sp in
                blockedAttentionForward(out: &out, lse: &lse, q: q, kStore: ks, vStore: vs, keyMask: mask, segments: sp,
                                        scratch: &scratch, B: 1, T: n, NH: NH, KVH: KVH, hd: hd)
                blockedAttentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: w, q: q, kStore: ks, vStore: vs, out: out,
                                         lse: lse, keyMask: mask, segments: sp, scratchD: &D, scratch: &scratch,
                                         B: 1, T: n, NH: NH, KVH: KVH, hd: hd)
            }
            return (out, lse, dq, dk, dv)
        }

        let packed = run(q, k, v, w, n: T, mask: mask, segments: seg)
        for (s, n) in zip(starts, lengths) {
            func rows(_ x: [Float], _ width: Int) -> [Float] { Array(x[(s * width)..<((s + n) * width)]) }
            let alone = run(rows(q, NH * hd), rows(k, KVH * hd), rows(v, KVH * hd), rows(w, NH * hd), n: n,
                            mask: [UInt8](repeating: 1, count: n), segments: nil)
            for (name, a, r) in [("out", rows(packed.out, NH * hd), alone.out), ("dq", rows(packed.dq, NH * hd), alone.dq),
                                 ("dk", rows(packed.dk, KVH * hd), alone.dk), ("dv", rows(packed.dv, KVH * hd), alone.dv)] {
                let scale = r.map { abs($0) }.max() ?? 1
                let err = zip(a, r).map { abs($0 - $1) }.max() ?? .nan
                #expect(err <= 1e-5 * max(1, scale), "segment at \(s) (\(n) tokens) \(name): max difference \(err)")
            }
            for h in 0..<NH {
                let a = packed.lse[(h * T + s)..<(h * T + s + n)], r = alone.lse[(h * n)..<(h * n + n)]
                #expect(zip(a, r).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "lse head \(h) segment at \(s)")
            }
        }
        // Padding queries see nothing; padding keys get no gradient.
        for p in t..<T {
            for h in 0..<NH { #expect(packed.lse[h * T + p] == -.infinity) }
            #expect(packed.out[(p * NH * hd)..<((p + 1) * NH * hd)].allSatisfy { $0 == 0 })
            #expect(packed.dq[(p * NH * hd)..<((p + 1) * NH * hd)].allSatisfy { $0 == 0 })
            #expect(packed.dk[(p * KVH * hd)..<((p + 1) * KVH * hd)].allSatisfy { $0 == 0 })
            #expect(packed.dv[(p * KVH * hd)..<((p + 1) * KVH * hd)].allSatisfy { $0 == 0 })
        }
    }
}

extension Optional where Wrapped == [Int32] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Int32>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}
