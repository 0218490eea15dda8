import Testing
@testable import QwenCore
import TestSupport

/// Our packed kernel (Sources/CKernels/gemm.c, `GEMM.packed`) on its edge cases: M, N, K not
/// multiples of its 6×16 register tile nor of its K block (320), K longer than one span of the
/// packed A, leading dimensions wider than the operands, alpha, beta 0/1, B in f32, bf16 and f16,
/// stored (K,N) and (N,K), on 1 and 2 threads.
@Suite struct PackedGEMMTests {
    static func values(_ n: Int, _ seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2001) / 1000 - 1
        }
    }

    /// B's values in `dtype` (rounded to it) as f32, and their stored bits.
    static func weight(_ n: Int, dtype: DType) -> (values: [Float], bits: [UInt16]) {
        let v = values(n, 2)
        switch dtype {
        case .bf16:
            var bits = [UInt16](repeating: 0, count: n)
            convertF32ToBF16(v, &bits, count: n)
            return (bits.map(floatFromBF16), bits)
        case .f16:
            var bits = [UInt16](repeating: 0, count: n)
            convertF32ToF16(v, &bits, count: n)
            return (bits.map(floatFromF16), bits)
        default:
            return (v, [])
        }
    }

    @Test(arguments: [(1, 1, 1), (5, 17, 3), (6, 16, 8), (7, 33, 321), (13, 15, 641), (61, 130, 700), (7, 17, 180_000)])
    func agreesWithDoublePrecision(shape: (Int, Int, Int)) {
        guard GEMM.packedBuiltIn else { return }  // another architecture: GEMM keeps OpenBLAS
        let (M, N, K) = shape
        // The long K (two spans of the packed A) in one layout only: its reference is the slow part.
        let layouts = K > 100_000 ? [(true, DType.bf16)]
            : [false, true].flatMap { t in [DType.f32, .bf16, .f16].map { (t, $0) } }
        for (transB, dtype) in layouts {
            do {
                let lda = K + 3, ldb = (transB ? K : N) + 5, ldc = N + 2
                let a = Self.values(M * lda, 1)
                let (b, bits) = Self.weight((transB ? N : K) * ldb, dtype: dtype)
                let c0 = Self.values(M * ldc, 3)
                // Σ a·b and Σ |a·b| per element of C, in double.
                var sums = [Double](repeating: 0, count: M * N), magnitudes = sums
                for i in 0..<M {
                    for j in 0..<N {
                        for k in 0..<K {
                            let p = Double(a[i * lda + k]) * Double(transB ? b[j * ldb + k] : b[k * ldb + j])
                            sums[i * N + j] += p
                            magnitudes[i * N + j] += abs(p)
                        }
                    }
                }
                for (alpha, beta) in [(Float(1), Float(0)), (0.75, 1)] {
                    var results: [[Float]] = []
                    for threads in [1, 2, 2] {
                        var c = c0
                        let ran = b.withUnsafeBytes { fb in
                            bits.withUnsafeBytes { hb in
                                GEMM.packed(transB: transB, M, N, K, alpha: alpha, a, lda: lda,
                                            dtype == .f32 ? fb.baseAddress! : hb.baseAddress!, dtype: dtype,
                                            ldb: ldb, beta: beta, &c, ldc: ldc, threads: threads)
                            }
                        }
                        #expect(ran)
                        results.append(c)
                    }
                    let what = "M \(M) N \(N) K \(K) transB \(transB) \(dtype) alpha \(alpha) beta \(beta)"
                    // The bits depend on the shape only: the same on a repeat and on 1 or 2 threads.
                    #expect(results[1] == results[2], "\(what): not repeatable")
                    #expect(results[0] == results[1], "\(what): 1 and 2 threads differ")
                    let c = results[0]
                    var worst = 0.0
                    for i in 0..<M {
                        for j in N..<ldc { #expect(c[i * ldc + j] == c0[i * ldc + j], "\(what): padding written") }
                        for j in 0..<N {
                            let want = Double(alpha) * sums[i * N + j] + Double(beta) * Double(c0[i * ldc + j])
                            // fp32 sums of K products: well inside K·ε of the sum of magnitudes.
                            worst = max(worst, abs(Double(c[i * ldc + j]) - want) / (magnitudes[i * N + j] + 1))
                        }
                    }
                    #expect(worst < 2e-6, "\(what): off by \(worst) of the magnitude")
                }
            }
        }
    }

    /// GEMM.general sends the products the kernel takes to it (same bits as calling it), and
    /// `mixed` declines what it does not take, leaving C alone.
    @Test func generalRoutesLargeProductsToThePackedKernel() {
        guard GEMM.packedAvailable else { return }
        #expect(GEMM.packedTakes(256, 896, 896, beta: 0))
        #expect(!GEMM.packedTakes(256, 8, 896, beta: 0))   // LoRA's rank-8 products stay on OpenBLAS
        #expect(!GEMM.packedTakes(256, 896, 896, beta: 0.5))
        let M = 64, N = 256, K = 1030
        let a = Self.values(M * K, 1), b = Self.values(N * K, 2)
        var viaGeneral = [Float](repeating: 0, count: M * N), viaPacked = viaGeneral
        GEMM.nt(M, N, K, a, b, &viaGeneral)
        b.withUnsafeBytes { GEMM.packed(transB: true, M, N, K, a, lda: K, $0.baseAddress!, dtype: .f32, ldb: K, &viaPacked, ldc: N) }
        #expect(viaGeneral == viaPacked)
        var small = [Float](repeating: 7, count: 4)
        let declined = b.withUnsafeBytes {
            GEMM.mixed(transB: true, 2, 2, 3, a, lda: 3, $0.baseAddress!, dtype: .bf16, ldb: 3, &small, ldc: 2)
        }
        #expect(!declined)
        #expect(small == [7, 7, 7, 7])
        let nf4 = b.withUnsafeBytes {
            GEMM.packed(transB: true, M, N, K, a, lda: K, $0.baseAddress!, dtype: .u8, ldb: K, &viaPacked, ldc: N)
        }
        #expect(!nf4)
    }
}
