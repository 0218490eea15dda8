import Foundation
import QwenCore
import Testing
@testable import Qwen2

// LoRA's rank-r kernels (RankProducts.swift) against double-precision sums, over sizes that hit
// every tile and tail (rows not a multiple of 4 or 6, columns past the 16- and 8-wide blocks, K
// not a multiple of 8, r = 1 and r not a multiple of the 2- or 4-rank tiles), with and without
// `accumulate`; and bit for bit the same on 1, 2 and 3 threads.

@Suite struct RankProductsTests {
    /// (rows, long side) pairs: tails everywhere, and one above the split threshold at r ≥ 8.
    static let sizes = [(1, 1), (7, 13), (37, 45), (5, 200), (41, 1037)]

    /// |y − ref| ≤ 1e-5 · (Σ|terms| + |y₀|), the fp32 rounding of a sum of that many terms.
    func expectClose(_ y: [Float], _ ref: [Double], _ scale: [Double], _ label: String) {
        var worst = 0.0
        for i in y.indices {  // a NaN sticks (max would drop it)
            let e = abs(Double(y[i]) - ref[i]) / (scale[i] + 1e-30)
            if e > worst || e.isNaN { worst = e }
        }
        #expect(worst <= 1e-5, "\(label): relative error \(worst)")
    }

    @Test(arguments: [1, 8, 16, 64])
    func projectMatchesDoubleSums(r: Int) {
        var rng = TestRandom(seed: UInt64(r))
        for (M, K) in Self.sizes {
            let X = rng.normals(M * K), W = rng.normals(r * K), alpha: Float = 0.75
            var Y = [Float](repeating: .nan, count: M * r)  // overwritten, never read
            rankProject(M, r, K, X, W, &Y, alpha: alpha)
            var ref = [Double](repeating: 0, count: M * r), scale = ref
            for i in 0..<M {
                for k in 0..<r {
                    for p in 0..<K {
                        let t = Double(alpha) * Double(X[i * K + p]) * Double(W[k * K + p])
                        ref[i * r + k] += t
                        scale[i * r + k] += abs(t)
                    }
                }
            }
            expectClose(Y, ref, scale, "rankProject M \(M) r \(r) K \(K)")
        }
    }

    @Test(arguments: [1, 8, 16, 64], [false, true])
    func expandMatchesDoubleSums(r: Int, accumulate: Bool) {
        var rng = TestRandom(seed: UInt64(100 + r))
        for (M, N) in Self.sizes {
            let X = rng.normals(M * r), W = rng.normals(r * N), Y0 = rng.normals(M * N), alpha: Float = 2
            var Y = Y0
            rankExpand(M, N, r, X, W, &Y, alpha: alpha, accumulate: accumulate)
            var ref = [Double](repeating: 0, count: M * N), scale = ref
            for i in 0..<M {
                for j in 0..<N {
                    let y0 = accumulate ? Double(Y0[i * N + j]) : 0
                    ref[i * N + j] = y0
                    scale[i * N + j] = abs(y0)
                    for k in 0..<r {
                        let t = Double(alpha) * Double(X[i * r + k]) * Double(W[k * N + j])
                        ref[i * N + j] += t
                        scale[i * N + j] += abs(t)
                    }
                }
            }
            expectClose(Y, ref, scale, "rankExpand M \(M) N \(N) r \(r) accumulate \(accumulate)")
        }
    }

    @Test(arguments: [1, 8, 16, 64], [false, true])
    func gatherMatchesDoubleSums(r: Int, transposed: Bool) {
        var rng = TestRandom(seed: UInt64(200 + r))
        for (M, N) in Self.sizes {
            for accumulate in [false, true] {
                let X = rng.normals(M * r), Z = rng.normals(M * N), Y0 = rng.normals(r * N), alpha: Float = 0.5
                var Y = Y0
                rankGather(M, r, N, X, Z, &Y, alpha: alpha, accumulate: accumulate, transposed: transposed)
                var ref = [Double](repeating: 0, count: r * N), scale = ref
                for k in 0..<r {
                    for j in 0..<N {
                        let at = transposed ? j * r + k : k * N + j
                        let y0 = accumulate ? Double(Y0[at]) : 0
                        ref[at] = y0
                        scale[at] = abs(y0)
                        for i in 0..<M {
                            let t = Double(alpha) * Double(X[i * r + k]) * Double(Z[i * N + j])
                            ref[at] += t
                            scale[at] += abs(t)
                        }
                    }
                }
                expectClose(Y, ref, scale, "rankGather M \(M) r \(r) N \(N) accumulate \(accumulate) transposed \(transposed)")
            }
        }
    }

    /// Every element is summed in one order whatever the split: 1, 2 and 3 threads give the same
    /// bits (the sizes are above the split threshold, so the threaded paths run).
    @Test(arguments: [3, 8, 16])
    func sameBitsOnAnyThreadCount(r: Int) {
        var rng = TestRandom(seed: UInt64(300 + r))
        let M = 259, K = 901, N = 1037
        let X = rng.normals(M * K), A = rng.normals(r * K), xa = rng.normals(M * r)
        let W = rng.normals(r * N), Z = rng.normals(M * N), Y0 = rng.normals(M * N), G0 = rng.normals(r * N)
        func run(_ threads: Int) -> [[Float]] {
            Threading.withCount(threads) {
                var p = [Float](repeating: 0, count: M * r), e = Y0, g = G0, gt = G0
                rankProject(M, r, K, X, A, &p, alpha: 0.3)
                rankExpand(M, N, r, xa, W, &e, alpha: 1.5, accumulate: true)
                rankGather(M, r, N, xa, Z, &g, accumulate: true)
                rankGather(M, r, N, xa, Z, &gt, alpha: 2, accumulate: true, transposed: true)
                return [p, e, g, gt]
            }
        }
        let one = run(1)
        for t in [2, 3] {
            let many = run(t)
            for (name, (a, b)) in zip(["project", "expand", "gather", "gather transposed"], zip(one, many)) {
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(name), r \(r): 1 vs \(t) threads")
            }
        }
    }

    @Test func transposeIntoSwapsRowsAndColumns() {
        let R = 5, C = 3
        let inp = (0..<(R * C)).map(Float.init)
        var out = [Float](repeating: 0, count: R * C)
        transposeInto(&out, inp, rows: R, cols: C)
        for i in 0..<R {
            for j in 0..<C { #expect(out[j * R + i] == inp[i * C + j]) }
        }
    }
}
