import Foundation
import QwenCore
import Testing
@testable import Qwen2

/// Logits of the whole padded batch against transformers' Qwen2ForCausalLM (eager, fp32).
@Suite struct ForwardParityTests {
    static let models = ["tied-mha", "untied-gqa2", "gqa7-hd128"]

    func batchLogits(_ model: Qwen2Model, _ e: ModelExpectations) throws -> [Float] {
        let B = e.input_ids.count, T = e.input_ids[0].count
        let cache = KVCache(config: model.config, batch: B, capacity: T)
        let hidden = try model.forward(ids: e.input_ids.flatMap { $0 }, attentionMask: e.attention_mask.flatMap { $0 },
                                       B: B, T: T, cache: cache)
        return model.logits(hidden: hidden, rows: Array(0..<(B * T)))
    }

    @Test(arguments: models)
    func logitsMatchTransformers(name: String) throws {
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel(name)
        let want = try SafeTensorsSource(path: qwen2Fixtures.appendingPathComponent(name).appendingPathComponent("expected.safetensors").path)
        let got = try batchLogits(model, e)
        let diff = maxAbsDiff(got, try want.floats("logits"))
        #expect(diff < 1e-4, "\(name): max |Δ| \(diff)")
    }
}

@Suite struct LinearKernelTests {
    /// The fused half-precision kernels (1…4 rows, any row count and width) against widened fp32 BLAS.
    /// Widths: 37 (a 32-block and a tail), 53 (32 + 16 + tail: the pair-split bf16 path's single
    /// 16-block), 300 (more than one 256-weight f16 block; odd widths misalign the rows).
    @Test(arguments: [1, 3, 4, 7], [37, 53, 300])
    func halfPrecisionLinearMatchesWidenedFloat32(N: Int, C: Int) {
        let OC = 13
        var bits = [UInt16](repeating: 0, count: OC * C), f16 = bits
        var wide = [Float](repeating: 0, count: OC * C)
        for i in 0..<(OC * C) {
            let v = Float((i * 7919) % 101) / 50 - 1
            bits[i] = bf16Bits(fromFloat: v)
            f16[i] = f16Bits(fromFloat: v)
            wide[i] = floatFromBF16(bits[i])
        }
        let x = (0..<(N * C)).map { Float(($0 * 31) % 17) / 8 - 1 }
        let bias = (0..<OC).map { Float($0) / 10 }
        var want = [Float](repeating: 0, count: N * OC), got = want
        let scratch = LinearScratch()
        wide.withUnsafeBufferPointer { w in
            linearForward(out: &want, inp: x, weight: WeightMatrix(rows: OC, cols: C, float32: w.baseAddress!), bias: bias, N: N, scratch: scratch)
        }
        bits.withUnsafeBufferPointer { w in
            linearForward(out: &got, inp: x, weight: WeightMatrix(rows: OC, cols: C, dtype: .bf16, base: UnsafeRawPointer(w.baseAddress!)),
                          bias: bias, N: N, scratch: scratch)
        }
        #expect(maxAbsDiff(got, want) < 1e-5)
        for i in 0..<(OC * C) { wide[i] = floatFromF16(f16[i]) }
        wide.withUnsafeBufferPointer { w in
            linearForward(out: &want, inp: x, weight: WeightMatrix(rows: OC, cols: C, float32: w.baseAddress!), bias: bias, N: N, scratch: scratch)
        }
        f16.withUnsafeBufferPointer { w in
            linearForward(out: &got, inp: x, weight: WeightMatrix(rows: OC, cols: C, dtype: .f16, base: UnsafeRawPointer(w.baseAddress!)),
                          bias: bias, N: N, scratch: scratch)
        }
        #expect(maxAbsDiff(got, want) < 1e-5)
    }
}

extension LinearKernelTests {
    /// dinp = dout · W for bf16 weights (tiled widening) against the fp32 product, across tiles.
    @Test func backwardInputOverHalfWeightsMatchesFloat32() {
        let OC = 1200, C = 1000, N = 3  // OC·C > one scratch tile (1M floats here), so several tiles accumulate
        var bits = [UInt16](repeating: 0, count: OC * C)
        var wide = [Float](repeating: 0, count: OC * C)
        for i in 0..<(OC * C) {
            bits[i] = bf16Bits(fromFloat: Float((i * 7919) % 101) / 50 - 1)
            wide[i] = floatFromBF16(bits[i])
        }
        let dout = (0..<(N * OC)).map { Float(($0 * 31) % 17) / 8 - 1 }
        var want = [Float](repeating: 0, count: N * C), got = [Float](repeating: 1, count: N * C)
        let scratch = LinearScratch(tileElements: 1 << 20)
        wide.withUnsafeBufferPointer { w in
            linearBackwardInput(dinp: &want, dout: dout, weight: WeightMatrix(rows: OC, cols: C, float32: w.baseAddress!), N: N, scratch: scratch)
        }
        bits.withUnsafeBufferPointer { w in
            linearBackwardInput(dinp: &got, dout: dout, weight: WeightMatrix(rows: OC, cols: C, dtype: .bf16, base: UnsafeRawPointer(w.baseAddress!)),
                                N: N, scratch: scratch)
        }
        #expect(maxAbsDiff(got, want) < 1e-3)
    }
}

extension LinearKernelTests {
    /// Widened tiles: the fewest that fit the cap, of even size (a multiple of 16 rows where that
    /// fits), at least one row, a small matrix whole.
    @Test func widenedTilesAreEvenAndFitTheCap() {
        func rows(_ r: Int, _ c: Int, cap: Int) -> Int {
            WeightMatrix(rows: r, cols: c, dtype: .bf16, base: UnsafeRawPointer(bitPattern: 64)!).widenedTileRows(tileElements: cap)
        }
        #expect(rows(4864, 896, cap: 1 << 23) == 4864)         // a 0.5B projection: one tile
        #expect(rows(151_936, 896, cap: 1 << 23) == 8944)      // the 0.5B head: 17 even tiles of 16·559 rows
        #expect(rows(3584, 18944, cap: 1 << 23) == 400)        // a 7B down_proj: 9 tiles, not 8 + a sliver
        #expect(rows(10, 1 << 24, cap: 1 << 23) == 1)          // a row over the cap: one row a tile
        for (r, c, cap) in [(1100, 1000, 1 << 20), (151_936, 896, 1 << 23), (3584, 18944, 1 << 23), (37, 5, 64)] {
            let n = rows(r, c, cap: cap)
            #expect(n * c <= max(cap, c))
            let tiles = (r + n - 1) / n
            #expect(tiles == (r + max(1, cap / c) - 1) / max(1, cap / c))  // no more tiles than needed
        }
    }
}

extension LinearKernelTests {
    /// Several matrices in one pass give what separate calls give, bit for bit.
    @Test func manyMatricesInOnePassEqualSeparateCalls() {
        let C = 40
        let shapes = [70, 9, 130]
        let mats = shapes.map { rows in (0..<(rows * C)).map { Float(($0 * 13) % 29) / 14 - 1 } }
        let biases = shapes.map { rows in (0..<rows).map { Float($0) / 7 } }
        let x = (0..<(2 * C)).map { Float($0 % 9) / 4 - 1 }
        let scratch = LinearScratch()
        var separate = shapes.map { [Float](repeating: 0, count: 2 * $0) }
        var together = separate
        for i in 0..<3 {
            mats[i].withUnsafeBufferPointer { w in
                linearForward(out: &separate[i], inp: x, weight: WeightMatrix(rows: shapes[i], cols: C, float32: w.baseAddress!),
                              bias: biases[i], N: 2, scratch: scratch)
            }
        }
        let outs = (0..<3).map { i in UnsafeMutablePointer<Float>.allocate(capacity: 2 * shapes[i]) }
        defer { outs.forEach { $0.deallocate() } }
        withExtendedLifetime((mats, biases)) {
            let parts = (0..<3).map { i in
                (out: outs[i], weight: WeightMatrix(rows: shapes[i], cols: C, float32: mats[i].withUnsafeBufferPointer { $0.baseAddress! }),
                 bias: Optional(biases[i].withUnsafeBufferPointer { $0.baseAddress! }))
            }
            linearForwardMany(parts, inp: x, N: 2, scratch: scratch)
        }
        for i in 0..<3 { together[i] = Array(UnsafeBufferPointer(start: outs[i], count: 2 * shapes[i])) }
        #expect(together == separate)
    }
}

extension LinearKernelTests {
    /// Shapes GEMM's packed kernel takes: a bf16 or f16 weight packed from its stored dtype gives
    /// the very bits of the same weight widened to fp32 first and run through the same kernel (the
    /// widening is exact), forward and input gradient, overwriting and accumulating.
    @Test func packedHalfPrecisionWeightsEqualWidenedFloat32() {
        guard GEMM.packedAvailable else { return }
        let N = 32, OC = 256, C = 2100  // 17M multiply-adds: over GEMM.packedTakes' 2^24
        #expect(GEMM.packedTakes(N, OC, C, beta: 0) && GEMM.packedTakes(N, C, OC, beta: 1))
        let x = (0..<(N * C)).map { Float(($0 * 31) % 17) / 8 - 1 }
        let dout = (0..<(N * OC)).map { Float(($0 * 13) % 23) / 11 - 1 }
        let scratch = LinearScratch()
        for dtype in [DType.bf16, .f16] {
            var bits = [UInt16](repeating: 0, count: OC * C), wide = [Float](repeating: 0, count: OC * C)
            for i in 0..<(OC * C) {
                let v = Float((i * 7919) % 101) / 50 - 1
                bits[i] = dtype == .bf16 ? bf16Bits(fromFloat: v) : f16Bits(fromFloat: v)
                wide[i] = dtype == .bf16 ? floatFromBF16(bits[i]) : floatFromF16(bits[i])
            }
            for accumulate in [false, true] {
                var want = [Float](repeating: 0.5, count: N * OC), got = want
                var wantIn = [Float](repeating: 0.25, count: N * C), gotIn = wantIn
                wide.withUnsafeBufferPointer { w in
                    let m = WeightMatrix(rows: OC, cols: C, float32: w.baseAddress!)
                    linearForward(out: &want, inp: x, weight: m, bias: nil, N: N, scratch: scratch, accumulate: accumulate)
                    // An f32 weight's dy·W stays on OpenBLAS (GEMM.packedTakes): the kernel itself here.
                    GEMM.packed(transB: false, N, C, OC, dout, lda: OC, UnsafeRawPointer(w.baseAddress!), dtype: .f32,
                                ldb: C, beta: accumulate ? 1 : 0, &wantIn, ldc: C)
                }
                bits.withUnsafeBufferPointer { w in
                    let m = WeightMatrix(rows: OC, cols: C, dtype: dtype, base: UnsafeRawPointer(w.baseAddress!))
                    linearForward(out: &got, inp: x, weight: m, bias: nil, N: N, scratch: scratch, accumulate: accumulate)
                    linearBackwardInput(dinp: &gotIn, dout: dout, weight: m, N: N, scratch: scratch, accumulate: accumulate)
                }
                #expect(got == want ? true : false, "\(dtype) forward, accumulate \(accumulate): \(maxAbsDiff(got, want))")
                #expect(gotIn == wantIn ? true : false, "\(dtype) input gradient, accumulate \(accumulate): \(maxAbsDiff(gotIn, wantIn))")
            }
        }
    }
}
