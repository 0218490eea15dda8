import Testing
@testable import QwenCore

@Suite struct GEMMTests {
    @Test func productsAgreeWithNaiveLoops() {
        let M = 3, N = 4, K = 5
        let a = (0..<(M * K)).map { Float($0 % 7) - 3 }
        let b = (0..<(K * N)).map { Float($0 % 5) - 2 }
        var want = [Float](repeating: 0, count: M * N)
        for i in 0..<M { for j in 0..<N { for k in 0..<K { want[i * N + j] += a[i * K + k] * b[k * N + j] } } }
        // bt is B transposed, stored (N,K); at is A transposed, stored (K,M).
        var bt = [Float](repeating: 0, count: N * K)
        for k in 0..<K { for j in 0..<N { bt[j * K + k] = b[k * N + j] } }
        var at = [Float](repeating: 0, count: K * M)
        for i in 0..<M { for k in 0..<K { at[k * M + i] = a[i * K + k] } }
        var c = [Float](repeating: 0, count: M * N)
        GEMM.nn(M, N, K, a, b, &c); #expect(c == want)
        GEMM.nt(M, N, K, a, bt, &c); #expect(c == want)
        GEMM.tn(M, N, K, at, b, &c); #expect(c == want)
        GEMM.nn(M, N, K, a, b, &c, accumulate: true)
        #expect(c == want.map { 2 * $0 })
    }
}
