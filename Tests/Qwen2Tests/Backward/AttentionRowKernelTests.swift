import Foundation
import Testing
@testable import Qwen2

// The SIMD8 row kernels of the blocked attention's unmasked blocks against plain scalar loops,
// for every length from 1 to 40 (full eight-lane groups, tails, and rows shorter than one group).

@Suite struct AttentionRowKernelTests {
    @Test func rowKernelsMatchScalarLoops() {
        var rng = TestRandom(seed: 7)
        for n in 1...40 {
            let x = rng.normals(n).map { $0 * 4 }, g = rng.normals(n)
            let m = x.max()!
            #expect(x.withUnsafeBufferPointer { rowMax($0.baseAddress!, n) } == m, "rowMax, n = \(n)")

            var e = x
            let sum = e.withUnsafeMutableBufferPointer { expShiftedSum($0.baseAddress!, n, shift: m) }
            let ref = x.map { Double(expf($0 - m)) }
            #expect(abs(Double(sum) - ref.reduce(0, +)) < 1e-5 * ref.reduce(0, +), "sum, n = \(n)")
            #expect(zip(e, ref).allSatisfy { abs(Double($0) - $1) <= 1e-6 * $1 + 1e-30 }, "exp, n = \(n)")

            let lse = m + logf(sum), D: Float = 0.3
            var p = x, ds = g
            p.withUnsafeMutableBufferPointer { pp in
                ds.withUnsafeMutableBufferPointer { dd in
                    probabilitiesAndScoreGrad(pp.baseAddress!, dd.baseAddress!, n, lse: lse, D: D)
                }
            }
            for i in 0..<n {
                let pr = expf(x[i] - lse)
                #expect(abs(p[i] - pr) <= 1e-6 * pr + 1e-30, "p[\(i)], n = \(n)")
                #expect(abs(ds[i] - pr * (g[i] - D)) <= 1e-5 * abs(pr * (g[i] - D)) + 1e-9, "ds[\(i)], n = \(n)")
            }
        }
    }

    @Test func maskedRowKernelsZeroPaddingKeys() {
        var rng = TestRandom(seed: 11)
        for n in 1...40 {
            let x = rng.normals(n).map { $0 * 4 }, g = rng.normals(n)
            let keep = (0..<n).map { Float(($0 * 5 + n) % 3 == 0 ? 0 : 1) }
            let visible = (0..<n).filter { keep[$0] > 0 }
            let m = visible.map { x[$0] }.max() ?? -.infinity
            #expect(x.withUnsafeBufferPointer { xp in keep.withUnsafeBufferPointer { maskedRowMax(xp.baseAddress!, $0.baseAddress!, n) } } == m)
            if visible.isEmpty { continue }
            var e = x
            let sum = e.withUnsafeMutableBufferPointer { ep in
                keep.withUnsafeBufferPointer { maskedExpShiftedSum(ep.baseAddress!, $0.baseAddress!, n, shift: m) }
            }
            let ref = (0..<n).map { keep[$0] > 0 ? Double(expf(x[$0] - m)) : 0 }
            #expect(abs(Double(sum) - ref.reduce(0, +)) < 1e-5 * ref.reduce(0, +), "sum, n = \(n)")
            #expect(zip(e, ref).allSatisfy { abs(Double($0) - $1) <= 1e-6 * $1 }, "exp, n = \(n)")
            var p = x, ds = g
            p.withUnsafeMutableBufferPointer { pp in
                ds.withUnsafeMutableBufferPointer { dd in
                    keep.withUnsafeBufferPointer {
                        maskedProbabilitiesAndScoreGrad(pp.baseAddress!, dd.baseAddress!, $0.baseAddress!, n, lse: m, D: 0.3)
                    }
                }
            }
            for i in 0..<n {
                let pr = keep[i] > 0 ? expf(x[i] - m) : 0
                #expect(abs(p[i] - pr) <= 1e-6 * pr, "p[\(i)], n = \(n)")
                #expect(abs(ds[i] - pr * (g[i] - 0.3)) <= 1e-5 * abs(pr * (g[i] - 0.3)) + 1e-9, "ds[\(i)], n = \(n)")
            }
        }
    }

    @Test func fullyVisibleBlocks() {
        let mask: [UInt8] = [1, 1, 1, 0, 1, 1]
        let seg: [Int32] = [1, 1, 2, 2, 0, 3]
        mask.withUnsafeBufferPointer { mk in
            let mp = mk.baseAddress!
            #expect(blockFullyVisible(mp, nil, k0: 0, keys: 3))
            #expect(!blockFullyVisible(mp, nil, k0: 0, keys: 4))
            #expect(blockFullyVisible(mp, nil, k0: 4, keys: 6))
            seg.withUnsafeBufferPointer { sg in
                let sp = sg.baseAddress!
                #expect(blockFullyVisible(mp, sp, k0: 0, keys: 2))
                #expect(!blockFullyVisible(mp, sp, k0: 0, keys: 3))   // two segments
                #expect(!blockFullyVisible(mp, sp, k0: 2, keys: 4))   // a padding key
                #expect(!blockFullyVisible(mp, sp, k0: 4, keys: 5))   // segment 0
                #expect(blockFullyVisible(mp, sp, k0: 5, keys: 6))
            }
        }
    }
}
