import QwenCore
import Testing
@testable import Qwen2

/// The NF4 decoding kernels against a plain reference: dequantise the row (code · absmax), then
/// dot it with x in Double. The kernels sum code·x in fp32 per block before scaling, so they may
/// differ by reassociation only: within 1e-5 of Σ|w·x| (about 170 fp32 ulps of that sum; a wrong
/// code, lane order or block scale is off by a large fraction of it).
@Suite struct NF4KernelTests {
    /// Rows of a random (rows, cols) matrix quantised with `bs`, their reference dots with x, and
    /// the tolerance of each.
    struct Case {
        let q: NF4Tensor
        let w: [Float]
        let rows: Int, cols: Int

        init(rows: Int, cols: Int, bs: Int) {
            self.rows = rows
            self.cols = cols
            var rng = SeededRNG(seed: UInt64(rows * 100_003 + cols * 17 + bs))
            let src = (0..<(rows * cols)).map { _ in Float(rng.unit() * 2 - 1) * (rng.unit() < 0.01 ? 8 : 1) }
            q = src.withUnsafeBufferPointer {
                NF4Tensor.quantize(WeightMatrix(rows: rows, cols: cols, float32: $0.baseAddress!), blocksize: bs, doubleQuant: true)
            }
            // The reference dequantisation, written out here rather than through NF4.dequantize.
            var w = [Float](repeating: 0, count: rows * cols)
            for i in w.indices {
                let byte = q.packed[i / 2]
                w[i] = NF4.code[Int(i % 2 == 0 ? byte >> 4 : byte & 15)] * q.absmax.pointer[i / bs]
            }
            self.w = w
        }

        func reference(_ r: Int, _ x: [Float]) -> (value: Double, tolerance: Double) {
            var s = 0.0, a = 0.0
            for j in 0..<cols {
                let p = Double(w[r * cols + j]) * Double(x[j])
                s += p
                a += abs(p)
            }
            return (s, 1e-5 * a + 1e-30)
        }
    }

    static let shapes: [(rows: Int, cols: Int, bs: Int)] = [
        (1, 64, 64), (3, 128, 64), (5, 192, 64), (7, 896, 64),
        (3, 64, 32), (5, 192, 32),
        (7, 192, 128), (5, 320, 128), (3, 896, 128),
        (9, 192, 256), (5, 640, 256),
        (3, 320, 4096), (11, 64, 4096), (2, 4864, 4096),
    ]

    @Test(arguments: shapes)
    func planarKernelMatchesDequantisedDot(rows: Int, cols: Int, bs: Int) {
        let c = Case(rows: rows, cols: cols, bs: bs)
        let m = c.q.matrix
        #expect(nf4RowsPlanar(m) == (arch == "x86_64"), "\(rows)x\(cols) bs \(bs) takes the byte-plane kernel")
        var rng = SeededRNG(seed: UInt64(cols))
        let x = (0..<cols).map { _ in Float(rng.unit() * 2 - 1) }
        #if arch(x86_64)
        var xq = [Float](repeating: .nan, count: cols)
        x.withUnsafeBufferPointer { xp in
            xq.withUnsafeMutableBufferPointer { planarNF4Order(xp.baseAddress!, into: $0.baseAddress!, count: cols) }
        }
        #expect(xq.sorted() == x.sorted(), "the reordered input is a permutation of x")
        for r in 0..<rows {
            let got = xq.withUnsafeBufferPointer { dotNF4Planar(m.nf4!, from: r * cols, $0.baseAddress!, cols, planes: nf4CodePlanes) }
            let (want, tol) = c.reference(r, x)
            #expect(abs(Double(got) - want) <= tol, "\(rows)x\(cols) bs \(bs) row \(r): \(got) vs \(want)")
        }
        #endif
        // The portable pair-table kernel on the same rows.
        for r in 0..<rows {
            let got = x.withUnsafeBufferPointer { dotNF4(m.nf4!, from: r * cols, $0.baseAddress!, cols) }
            let (want, tol) = c.reference(r, x)
            #expect(abs(Double(got) - want) <= tol, "pair table \(rows)x\(cols) bs \(bs) row \(r): \(got) vs \(want)")
        }
    }

    /// Through the Linear dispatch: 1…4 input rows (each its own reordered x), accumulate, and the
    /// many-matrix path (q/k/v-style parts of different row counts sharing one input).
    @Test func linearDispatchMatchesDequantisedDot() {
        let parts = [Case(rows: 7, cols: 192, bs: 64), Case(rows: 3, cols: 192, bs: 64), Case(rows: 5, cols: 192, bs: 64)]
        var rng = SeededRNG(seed: 7)
        for N in 1...4 {
            let x = (0..<(N * 192)).map { _ in Float(rng.unit() * 2 - 1) }
            var outs = parts.map { [Float](repeating: 0, count: N * $0.rows) }
            let scratch = LinearScratch()
            x.withUnsafeBufferPointer { xp in
                let p0 = UnsafeMutablePointer<Float>.allocate(capacity: N * 7), p1 = UnsafeMutablePointer<Float>.allocate(capacity: N * 3)
                let p2 = UnsafeMutablePointer<Float>.allocate(capacity: N * 5)
                defer { p0.deallocate(); p1.deallocate(); p2.deallocate() }
                linearForwardMany([(p0, parts[0].q.matrix, nil), (p1, parts[1].q.matrix, nil), (p2, parts[2].q.matrix, nil)],
                                  inp: xp.baseAddress!, N: N, scratch: scratch)
                outs[0] = Array(UnsafeBufferPointer(start: p0, count: N * 7))
                outs[1] = Array(UnsafeBufferPointer(start: p1, count: N * 3))
                outs[2] = Array(UnsafeBufferPointer(start: p2, count: N * 5))
            }
            for (k, c) in parts.enumerated() {
                for n in 0..<N {
                    let xn = Array(x[(n * 192)..<((n + 1) * 192)])
                    for r in 0..<c.rows {
                        let (want, tol) = c.reference(r, xn)
                        let got = outs[k][n * c.rows + r]
                        #expect(abs(Double(got) - want) <= tol, "part \(k) N \(N) n \(n) row \(r): \(got) vs \(want)")
                    }
                }
            }
            // accumulate: out += W·x on top of what is there.
            var acc = [Float](repeating: 1, count: N * 7)
            x.withUnsafeBufferPointer { xp in
                linearForward(out: &acc, inp: xp.baseAddress!, weight: parts[0].q.matrix, bias: nil, N: N,
                              scratch: scratch, accumulate: true)
            }
            for n in 0..<N {
                let xn = Array(x[(n * 192)..<((n + 1) * 192)])
                for r in 0..<7 {
                    let (want, tol) = parts[0].reference(r, xn)
                    #expect(abs(Double(acc[n * 7 + r]) - (want + 1)) <= tol + 1e-6, "accumulate N \(N) row \(r)")
                }
            }
        }
    }

    var arch: String {
        #if arch(x86_64)
        return "x86_64"
        #else
        return "other"
        #endif
    }
}
