import Foundation
import Testing
@testable import Qwen2
import QwenCore

// Finite-difference tests of the per-layer backward kernels (GradientCheck.swift explains the
// tolerance). Each builds L = Σ w ⊙ forward(x) so dout = w.

@Suite struct LayerBackwardTests {
    @Test func embeddingScatterAddsRepeatedIds() {
        let V = 11, C = 6, N = 9
        var rng = TestRandom(seed: 1)
        let table = rng.normals(V * C)
        let ids: [Int32] = [3, 0, 3, 10, 7, 3, 0, 5, 10]
        let w = rng.normals(N * C)
        func forward(_ t: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * C)
            t.withUnsafeBufferPointer { tp in
                embeddingForward(out: &out, ids: ids, table: WeightMatrix(rows: V, cols: C, float32: tp.baseAddress!), N: N)
            }
            return out
        }
        var dtable = [Float](repeating: 0, count: V * C)
        embeddingBackward(dtable: &dtable, dout: w, ids: ids, N: N, C: C)
        checkGradient("dtable", x: table, analytic: dtable) { weightedSum(forward($0), w) }
        // Rows of ids never used stay exactly zero.
        #expect(dtable[1 * C ..< 2 * C].allSatisfy { $0 == 0 })
    }

    @Test func rmsNormInputAndWeight() {
        let N = 5, C = 24
        var rng = TestRandom(seed: 2)
        let x = rng.normals(N * C), weight = rng.normals(C).map { 1 + 0.2 * $0 }, w = rng.normals(N * C)
        func forward(_ x: [Float], _ weight: [Float]) -> ([Float], [Float]) {
            var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
            rmsNormForward(out: &out, rstd: &rstd, inp: x, weight: weight, N: N, C: C, eps: 1e-6)
            return (out, rstd)
        }
        let (_, rstd) = forward(x, weight)
        let start: Float = 0.5
        var dinp = [Float](repeating: start, count: N * C), dweight = [Float](repeating: 0, count: C)
        rmsNormBackward(dinp: &dinp, dweight: &dweight, dout: w, inp: x, weight: weight, rstd: rstd, N: N, C: C)
        checkGradient("dinp", x: x, analytic: dinp.map { $0 - start }) { weightedSum(forward($0, weight).0, w) }
        checkGradient("dweight", x: weight, analytic: dweight) { weightedSum(forward(x, $0).0, w) }
    }

    @Test func ropeIsTheInverseRotation() {
        let B = 2, T = 5, H = 3, d = 8, N = B * T
        let table = RoPETable(headDim: d, theta: 10000, positions: 16)
        var rng = TestRandom(seed: 3)
        let x = rng.normals(N * H * d), w = rng.normals(N * H * d)
        func forward(_ x: [Float]) -> [Float] {
            var y = x
            ropeForward(&y, table: table, N: N, T: T, H: H, firstPosition: 2)
            return y
        }
        var dx = w
        ropeBackward(&dx, table: table, N: N, T: T, H: H, firstPosition: 2)
        checkGradient("dx", x: x, analytic: dx) { weightedSum(forward($0), w) }
    }

    @Test func swiglu() {
        let n = 40
        var rng = TestRandom(seed: 4)
        let gate = rng.normals(n, scale: 2), up = rng.normals(n), w = rng.normals(n)
        func forward(_ g: [Float], _ u: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: n)
            swigluForward(out: &out, gate: g, up: u, count: n)
            return out
        }
        var dgate = [Float](repeating: 0, count: n), dup = [Float](repeating: 0, count: n)
        swigluBackward(dgate: &dgate, dup: &dup, dout: w, gate: gate, up: up, count: n)
        checkGradient("dgate", x: gate, analytic: dgate) { weightedSum(forward($0, up), w) }
        checkGradient("dup", x: up, analytic: dup) { weightedSum(forward(gate, $0), w) }
    }

    @Test func linearInputWeightAndBias() {
        let N = 6, C = 10, OC = 7
        var rng = TestRandom(seed: 5)
        let x = rng.normals(N * C), weight = rng.normals(OC * C, scale: 0.3), bias = rng.normals(OC)
        let w = rng.normals(N * OC)
        let scratch = LinearScratch()
        func forward(_ x: [Float], _ weight: [Float], _ bias: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: N * OC)
            weight.withUnsafeBufferPointer { wp in
                linearForward(out: &out, inp: x, weight: WeightMatrix(rows: OC, cols: C, float32: wp.baseAddress!),
                              bias: bias, N: N, scratch: scratch)
            }
            return out
        }
        var dinp = [Float](repeating: 1, count: N * C)
        var dweight = [Float](repeating: 0, count: OC * C), dbias = [Float](repeating: 0, count: OC)
        weight.withUnsafeBufferPointer { wp in
            linearBackward(dinp: &dinp, dweight: &dweight, dbias: &dbias, dout: w, inp: x,
                           weight: WeightMatrix(rows: OC, cols: C, float32: wp.baseAddress!), N: N,
                           accumulateInput: true, scratch: BackwardScratch())
        }
        checkGradient("dinp", x: x, analytic: dinp.map { $0 - 1 }) { weightedSum(forward($0, weight, bias), w) }
        checkGradient("dweight", x: weight, analytic: dweight) { weightedSum(forward(x, $0, bias), w) }
        checkGradient("dbias", x: bias, analytic: dbias) { weightedSum(forward(x, weight, $0), w) }
    }

    @Test(arguments: [Float(0), 0.3], [false, true])
    func loraAdapter(dropoutP: Float, rs: Bool) {
        let N = 5, C = 12, OC = 9, r = 3
        let alpha: Float = 6
        let scale = rs ? alpha / Float(r).squareRoot() : alpha / Float(r)
        var rng = TestRandom(seed: 6)
        let x = rng.normals(N * C), A = rng.normals(r * C, scale: 0.4), Bm = rng.normals(OC * r, scale: 0.4)
        let w = rng.normals(N * OC)
        let dropout = LoRADropout(p: dropoutP, seed: 42, stream: 3)
        func forward(_ x: [Float], _ A: [Float], _ Bm: [Float]) -> [Float] {
            var out = [Float](repeating: 0.25, count: N * OC)  // stands for the base layer's output
            var xa = [Float](repeating: 0, count: N * r), dropped = [Float](repeating: 0, count: N * C)
            loraForward(out: &out, xa: &xa, inp: x, A: A, B: Bm, scale: scale, dropout: dropout,
                        dropped: &dropped, N: N, C: C, OC: OC, r: r)
            return out
        }
        var xa = [Float](repeating: 0, count: N * r), dropped = [Float](repeating: 0, count: N * C)
        var out = [Float](repeating: 0, count: N * OC)
        loraForward(out: &out, xa: &xa, inp: x, A: A, B: Bm, scale: scale, dropout: dropout,
                    dropped: &dropped, N: N, C: C, OC: OC, r: r)
        var dinp = [Float](repeating: 0, count: N * C), dA = [Float](repeating: 0, count: r * C)
        var dB = [Float](repeating: 0, count: OC * r), dxa = [Float](repeating: 0, count: N * r)
        loraBackward(dinp: &dinp, dA: &dA, dB: &dB, dout: w, inp: x, xa: xa, A: A, B: Bm, scale: scale,
                     dropout: dropout, dxa: &dxa, dropped: &dropped, N: N, C: C, OC: OC, r: r)
        checkGradient("dinp", x: x, analytic: dinp) { weightedSum(forward($0, A, Bm), w) }
        checkGradient("dA", x: A, analytic: dA) { weightedSum(forward(x, $0, Bm), w) }
        checkGradient("dB", x: Bm, analytic: dB) { weightedSum(forward(x, A, $0), w) }
        if dropoutP > 0 {
            let kept = (0..<(N * C)).filter { dropout.factor($0) != 0 }.count
            #expect(kept > 0 && kept < N * C, "dropout keeps some and drops some")
        }
    }
}

@Suite struct HalfWeightBackwardTests {
    /// dinp through a bf16 / f16 weight widened tile by tile equals dinp through the f32 copy of
    /// the same rounded values; the weight spans two scratch tiles.
    @Test(arguments: [DType.bf16, .f16])
    func tiledWideningMatchesFloat32(dtype: DType) {
        let N = 3, OC = 1100, C = 1000  // OC·C > the scratch's tile (1M floats here)
        var rng = TestRandom(seed: 9)
        let weight = rng.normals(OC * C, scale: 0.05)
        var bits = [UInt16](repeating: 0, count: OC * C)
        var rounded = [Float](repeating: 0, count: OC * C)
        weight.withUnsafeBufferPointer { src in
            bits.withUnsafeMutableBytes { convertFromFloat(src.baseAddress!, $0.baseAddress!, dtype: dtype, count: OC * C) }
        }
        bits.withUnsafeBytes { convertToFloat($0.baseAddress!, dtype: dtype, &rounded, count: OC * C) }
        let dout = rng.normals(N * OC), inp = rng.normals(N * C)
        var viaHalf = [Float](repeating: 2, count: N * C), viaFloat = [Float](repeating: 2, count: N * C)
        bits.withUnsafeBytes { raw in
            linearBackward(dinp: &viaHalf, dweight: nil, dbias: nil, dout: dout, inp: inp,
                           weight: WeightMatrix(rows: OC, cols: C, dtype: dtype, base: raw.baseAddress!), N: N,
                           accumulateInput: true, scratch: BackwardScratch(tileElements: 1 << 20))
        }
        rounded.withUnsafeBufferPointer { wp in
            linearBackward(dinp: &viaFloat, dweight: nil, dbias: nil, dout: dout, inp: inp,
                           weight: WeightMatrix(rows: OC, cols: C, float32: wp.baseAddress!), N: N,
                           accumulateInput: true, scratch: BackwardScratch())
        }
        var num = 0.0, den = 0.0
        for i in viaHalf.indices {
            num += Double(viaHalf[i] - viaFloat[i]) * Double(viaHalf[i] - viaFloat[i])
            den += Double(viaFloat[i] - 2) * Double(viaFloat[i] - 2)
        }
        #expect((num / den).squareRoot() < 1e-6)
    }
}

@Suite struct FastExpTests {
    @Test func withinTwoUlpOfExpf() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let v = SIMD8<Float>(x, x + 0.01, x + 0.02, x + 0.03, x + 0.04, x + 0.05, x + 0.06, x + 0.07)
            let f = fastExp(v)
            for l in 0..<8 {
                let want = expf(v[l])
                worst = max(worst, abs(f[l] - want) / want.ulp)
            }
            x += 0.0731
        }
        #expect(worst <= 2, "fastExp is \(worst) ulp from expf")
    }

    @Test func swigluFastMatchesForward() {
        let n = 37  // a SIMD tail too
        var rng = TestRandom(seed: 8)
        let g = rng.normals(n, scale: 4), u = rng.normals(n)
        var a = [Float](repeating: 0, count: n), b = a
        swigluForward(out: &a, gate: g, up: u, count: n)
        swigluForwardFast(out: &b, gate: g, up: u, count: n)
        for i in 0..<n { #expect(abs(a[i] - b[i]) <= 4 * max(abs(a[i]).ulp, Float.leastNormalMagnitude)) }
    }
}
