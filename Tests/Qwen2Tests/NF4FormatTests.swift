import Foundation
import QwenCore
import Testing
@testable import Qwen2

/// NF4 quantisation against bitsandbytes 0.50 (Scripts/fixtures/nf4.py, CPU).
@Suite struct NF4FormatTests {
    struct Case: Decodable {
        let name: String
        let shape: [Int]
        let blocksize: Int
        let double_quant: Bool
        let absmax8_mismatches: Int?
    }
    struct Fixture: Decodable {
        let nf4_code: [Float]
        let dynamic_map_signed: [Float]
        let cases: [Case]
    }
    let dir = qwen2Fixtures.appendingPathComponent("nf4")

    func load() throws -> (Fixture, SafeTensorsSource) {
        let f = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: dir.appendingPathComponent("format.json")))
        return (f, try SafeTensorsSource(path: dir.appendingPathComponent("format.safetensors").path))
    }

    func bytes(_ t: SafeTensorsSource, _ name: String) throws -> [UInt8] {
        guard let s = t.tensor(named: name) else { throw FixtureError("no \(name)") }
        return Array(UnsafeBufferPointer(start: s.data.assumingMemoryBound(to: UInt8.self), count: s.count))
    }

    func matrix(_ t: SafeTensorsSource, _ name: String) throws -> WeightMatrix {
        guard let s = t.tensor(named: name) else { throw FixtureError("no \(name)") }
        return WeightMatrix(rows: s.shape[0], cols: s.shape[1], dtype: s.dtype, base: s.data)
    }

    @Test func tablesAreBitsandbytes() throws {
        let (f, _) = try load()
        #expect(NF4.code == f.nf4_code)
        #expect(NF4.dynamicMap == f.dynamic_map_signed)
    }

    /// Packed bytes and absmax bit for bit (partial blocks, an odd count, all-zero blocks, a zero
    /// partial block, exact midpoints, bf16 input, block sizes 32…4096).
    @Test func packedBytesAndAbsmaxIdentical() throws {
        let (f, t) = try load()
        for c in f.cases {
            let q = NF4Tensor.quantize(try matrix(t, c.name + ".input"), blocksize: c.blocksize, doubleQuant: false)
            let packed = Array(UnsafeBufferPointer(start: q.packed, count: q.packedCount))
            #expect(packed == (try bytes(t, c.name + ".packed")), "\(c.name)")
            let absmax = Array(q.absmax.buffer).map(\.bitPattern)
            #expect(absmax == (try t.floats(c.name + ".absmax")).map(\.bitPattern), "\(c.name)")
        }
    }

    /// With double quantisation: the nested absmax and offset as bitsandbytes, the 8-bit codes
    /// and dequantised weights identical to exact-nearest rounding, and to bitsandbytes' CPU
    /// kernel wherever its lookup table rounds the same way.
    @Test func doubleQuantDequantisesIdentically() throws {
        let (f, t) = try load()
        for c in f.cases where c.double_quant {
            let q = NF4Tensor.quantize(try matrix(t, c.name + ".input"), blocksize: c.blocksize, doubleQuant: true)
            let st = try #require(q.nestedState)
            #expect(st.offset.bitPattern == (try t.floats(c.name + ".dq.offset"))[0].bitPattern, "\(c.name) offset")
            #expect(st.nested == (try t.floats(c.name + ".dq.nested_absmax")), "\(c.name) nested absmax")
            #expect(st.codes == (try bytes(t, c.name + ".dq.absmax8_nearest")), "\(c.name) 8-bit codes")
            let ours = q.dequantized().map(\.bitPattern)
            #expect(ours == (try t.floats(c.name + ".dq.dequant_nearest")).map(\.bitPattern), "\(c.name) dequantised")
            // Against the CPU kernel's own state: same bits in every block whose code agrees.
            let cpuCodes = try bytes(t, c.name + ".dq.absmax8")
            let cpu = try t.floats(c.name + ".dq.dequant").map(\.bitPattern)
            var differing = 0
            for b in 0..<q.blockCount {
                let range = (b * c.blocksize)..<min(q.count, (b + 1) * c.blocksize)
                if st.codes[b] == cpuCodes[b] {
                    #expect(Array(ours[range]) == Array(cpu[range]), "\(c.name) block \(b)")
                } else {
                    differing += 1
                }
            }
            #expect(differing == c.absmax8_mismatches, "\(c.name)")
        }
    }

    /// Dequantising rows through WeightMatrix (any row range, blocks spanning rows) equals the whole.
    @Test func widenRowsMatchesWholeDequantisation() throws {
        let (_, t) = try load()
        let q = NF4Tensor.quantize(try matrix(t, "dq_300x70_bs64.input"), blocksize: 64, doubleQuant: true)
        let whole = q.dequantized()
        let m = q.matrix
        var part = [Float](repeating: 0, count: 7 * 70)
        part.withUnsafeMutableBufferPointer { m.widenRows(13..<20, into: $0.baseAddress!) }
        #expect(part == Array(whole[(13 * 70)..<(20 * 70)]))
        // The decoding kernel's row dot equals the dot of the dequantised row (within fp32 reassociation).
        let x = (0..<70).map { Float($0 % 7) * 0.1 - 0.3 }
        for r in [0, 1, 150, 299] {
            let got = x.withUnsafeBufferPointer { dotNF4(m.nf4!, from: r * 70, $0.baseAddress!, 70) }
            var want: Float = 0
            for j in 0..<70 { want += whole[r * 70 + j] * x[j] }
            #expect(abs(got - want) <= 1e-5 * max(1, abs(want)))
        }
    }

    /// The decoding kernels (split-pair AVX2 for rows of whole 16-groups, pair table otherwise)
    /// against the dequantised matrix in fp32, for 1…4 input rows and several block sizes.
    @Test func decodingKernelsMatchDequantisedProducts() throws {
        for (rows, cols, bs) in [(40, 64, 64), (24, 96, 32), (9, 128, 128), (5, 48, 64), (7, 70, 64), (3, 256, 4096)] {
            var rng = SeededRNG(seed: UInt64(rows * 1000 + cols))
            let w = (0..<(rows * cols)).map { _ in Float(rng.unit() * 2 - 1) }
            let q = w.withUnsafeBufferPointer {
                NF4Tensor.quantize(WeightMatrix(rows: rows, cols: cols, float32: $0.baseAddress!), blocksize: bs, doubleQuant: true)
            }
            let d = q.dequantized()
            for N in 1...4 {
                let x = (0..<(N * cols)).map { _ in Float(rng.unit() * 2 - 1) }
                var got = [Float](repeating: 0, count: N * rows), want = got
                let scratch = LinearScratch()
                x.withUnsafeBufferPointer { xp in
                    linearForward(out: &got, inp: xp.baseAddress!, weight: q.matrix, bias: nil, N: N, scratch: scratch)
                    d.withUnsafeBufferPointer { dp in
                        linearForward(out: &want, inp: xp.baseAddress!, weight: WeightMatrix(rows: rows, cols: cols, float32: dp.baseAddress!),
                                      bias: nil, N: N, scratch: scratch)
                    }
                }
                for i in got.indices { #expect(abs(got[i] - want[i]) <= 1e-5 * Float(cols), "\(rows)x\(cols) bs \(bs) N \(N) [\(i)]: \(got[i]) vs \(want[i])") }
            }
        }
    }

    /// The dequantiser (AVX2 16-element groups with scalar edges) gives code · absmax bit for bit
    /// for every byte value, from even and odd starts, across block boundaries and partial ends.
    @Test func dequantiseEveryByteFromAnyStart() {
        for bs in [32, 64, 128] {
            let count = 3 * 512 + 37
            let packed = (0..<((count + 1) / 2)).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ 11) }
            let absmax = (0..<NF4.blocks(count, blocksize: bs)).map { Float($0 + 1) * 0.013 + 0.5 }
            for (start, n) in [(0, count), (1, count - 1), (15, 300), (16, 1000), (bs - 1, 2 * bs + 3), (33, 17)] {
                var out = [Float](repeating: .nan, count: n)
                packed.withUnsafeBufferPointer { p in
                    absmax.withUnsafeBufferPointer { a in
                        out.withUnsafeMutableBufferPointer {
                            NF4.dequantize(packed: p.baseAddress!, absmax: a.baseAddress!, blocksize: bs, from: start, count: n, into: $0.baseAddress!)
                        }
                    }
                }
                let want = (start..<(start + n)).map { e -> Float in
                    let byte = packed[e / 2]
                    return NF4.code[Int(e % 2 == 0 ? byte >> 4 : byte & 15)] * absmax[e / bs]
                }
                #expect(out.map(\.bitPattern) == want.map(\.bitPattern), "bs \(bs) from \(start) count \(n)")
            }
        }
    }
}
