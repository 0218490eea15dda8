import Testing
@testable import QwenCore
import TestSupport

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

    /// Products big enough to be split over the threads, in every layout, with leading dimensions
    /// wider than the operands and sizes that are not multiples of the 16-wide blocks — split
    /// along N (wide C) and along M (tall C): within float rounding of a double-precision loop,
    /// the same bits on every call, and C's padding columns untouched. (Not the bits of one
    /// single-threaded call: OpenBLAS's edge tiles sum in another order.)
    @Test func splitProductsAreRightAndRepeatable() {
        func values(_ n: Int, _ seed: UInt64) -> [Float] {
            var s = seed
            return (0..<n).map { _ in
                s = s &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: s >> 11) % 2001) / 1000 - 1
            }
        }
        for (M, N, K) in [(37, 301, 200), (301, 37, 200), (130, 130, 129)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    let lda = (transA ? M : K) + 3, ldb = (transB ? K : N) + 5, ldc = N + 2
                    let a = values((transA ? K : M) * lda, 1), b = values((transB ? N : K) * ldb, 2)
                    let c0 = values(M * ldc, 3)
                    var c = c0, again = c0
                    GEMM.general(transA: transA, transB: transB, M, N, K, alpha: 0.75, a, lda: lda, b, ldb: ldb,
                                 beta: 1, &c, ldc: ldc)
                    GEMM.general(transA: transA, transB: transB, M, N, K, alpha: 0.75, a, lda: lda, b, ldb: ldb,
                                 beta: 1, &again, ldc: ldc)
                    let what = "M \(M) N \(N) K \(K) transA \(transA) transB \(transB)"
                    #expect(c == again, "\(what): not repeatable")
                    var worst = 0.0
                    for i in 0..<M {
                        #expect(c[i * ldc + N] == c0[i * ldc + N], "\(what): padding written")
                        for j in 0..<N {
                            var sum = 0.0
                            for k in 0..<K {
                                let x = transA ? a[k * lda + i] : a[i * lda + k]
                                let y = transB ? b[j * ldb + k] : b[k * ldb + j]
                                sum += Double(x) * Double(y)
                            }
                            worst = max(worst, abs(Double(c[i * ldc + j]) - (0.75 * sum + Double(c0[i * ldc + j]))))
                        }
                    }
                    #expect(worst < 1e-4, "\(what): off by \(worst)")
                }
            }
        }
    }
}

@Suite struct BackendTests {
    @Test func alphaAndAccumulateInEveryLayout() {
        let backend: any Backend = CPUBackend()
        let M = 2, N = 3, K = 4
        let a = (0..<(M * K)).map { Float($0) - 3 }      // (M,K)
        let b = (0..<(K * N)).map { Float($0 % 3) + 1 }  // (K,N)
        var want = [Float](repeating: 0, count: M * N)
        for i in 0..<M { for j in 0..<N { for k in 0..<K { want[i * N + j] += a[i * K + k] * b[k * N + j] } } }
        var bt = [Float](repeating: 0, count: N * K), at = [Float](repeating: 0, count: K * M)
        for k in 0..<K { for j in 0..<N { bt[j * K + k] = b[k * N + j] } }
        for i in 0..<M { for k in 0..<K { at[k * M + i] = a[i * K + k] } }
        let start: [Float] = [1, 1, 1, 1, 1, 1]
        let da = backend.upload(a), db = backend.upload(b), dat = backend.upload(at), dbt = backend.upload(bt)
        var dc = backend.upload(start)
        backend.gemmNN(M: M, N: N, K: K, A: da.readOnly, B: db.readOnly, C: dc.pointer, alpha: 0.5, accumulate: true)
        var c = backend.download(dc.readOnly, count: M * N)
        #expect(c == zip(start, want).map { $0 + 0.5 * $1 })
        dc = backend.upload(start)
        backend.gemmNT(M: M, N: N, K: K, A: da.readOnly, B: dbt.readOnly, C: dc.pointer, alpha: 2, accumulate: true)
        c = backend.download(dc.readOnly, count: M * N)
        #expect(c == zip(start, want).map { $0 + 2 * $1 })
        dc = backend.upload(start)
        backend.gemmTN(M: M, N: N, K: K, A: dat.readOnly, B: db.readOnly, C: dc.pointer, alpha: -1, accumulate: false)
        c = backend.download(dc.readOnly, count: M * N)
        #expect(c == want.map { -$0 })
        // K = 0: the product is empty, so C is zeroed (or kept, accumulating).
        c = start
        GEMM.nn(M, N, 0, a, b, &c)
        #expect(c == [0, 0, 0, 0, 0, 0])
    }

    @Test func elementwiseOps() {
        let backend = CPUBackend()
        let n = 200_000
        let out = backend.allocate(Float.self, count: n), inp = backend.upload((0..<n).map { Float($0 % 7) })
        backend.fill(out.pointer, count: n, value: 2)
        #expect(out.toArray().allSatisfy { $0 == 2 })
        backend.add(out.pointer, inp.readOnly, count: n)
        #expect(out[10] == 2 + 3)
        backend.copy(out.pointer, from: inp.readOnly, count: n)
        #expect(out.toArray() == inp.toArray())
    }

    /// Backend memory: zero-filled allocations, copies both ways (with offsets), and the CPU's
    /// host access handing the buffer's own memory (no copy).
    @Test func memoryAndHostCopies() {
        let backend: any Backend = CPUBackend()
        let zeros = backend.allocate(Float.self, count: 5)
        #expect(backend.download(zeros.readOnly, count: 5) == [0, 0, 0, 0, 0])
        let ids = backend.upload([Int32(4), 5, 6, 7])
        #expect(backend.download(ids.readOnly + 1, count: 2) == [5, 6])
        var back = [Int32](repeating: 0, count: 3)
        backend.copyToHost(&back, from: ids.readOnly + 1, count: 3)
        #expect(back == [5, 6, 7])
        backend.copyToDevice(ids.pointer + 2, from: [9, 9], count: 2)
        #expect(backend.download(ids.readOnly, count: 4) == [4, 5, 9, 9])
        backend.withHostAccess(zeros.pointer + 1, count: 2) { $0[0] = 3; $0[1] = 4 }
        #expect(backend.download(zeros.readOnly, count: 5) == [0, 3, 4, 0, 0])
        let handed = backend.withHostAccess(zeros.pointer, count: 5) { $0.baseAddress }
        #expect(handed == zeros.host)
        #expect(backend.hostAddress(zeros.pointer + 2) == zeros.host + 2)
    }

}
