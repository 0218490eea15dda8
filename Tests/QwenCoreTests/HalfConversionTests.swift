import Foundation
import Testing
@testable import QwenCore
import TestSupport

/// Golden bits from PyTorch (Scripts/fixtures/half_conversion.py).
private struct HalfFixture {
    var f32: [UInt32], bf16: [UInt16], f16: [UInt16]
    var f16In: [UInt16], f16Out: [UInt32], bf16In: [UInt16], bf16Out: [UInt32]

    static func load() throws -> HalfFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/half_conversion.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        let json = try #require(object as? [String: Any])
        func ints(_ key: String) throws -> [Int] { try #require(json[key] as? [Int], "fixture key \(key)") }
        return HalfFixture(
            f32: try ints("f32").map { UInt32($0) }, bf16: try ints("bf16").map { UInt16($0) },
            f16: try ints("f16").map { UInt16($0) },
            f16In: try ints("f16_in").map { UInt16($0) }, f16Out: try ints("f16_out").map { UInt32($0) },
            bf16In: try ints("bf16_in").map { UInt16($0) }, bf16Out: try ints("bf16_out").map { UInt32($0) })
    }
}

private func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

@Suite struct HalfConversionTests {
    @Test func scalarNarrowingMatchesTorchBitForBit() throws {
        let fx = try HalfFixture.load()
        #expect(fx.f32.count == fx.bf16.count && fx.f32.count == fx.f16.count && fx.f32.count > 900)
        for (i, w) in fx.f32.enumerated() {
            let x = Float(bitPattern: w)
            #expect(bf16Bits(fromFloat: x) == fx.bf16[i], "bf16 of \(hex(w))")
            #expect(f16Bits(fromFloat: x) == fx.f16[i], "f16 of \(hex(w))")
        }
    }

    @Test func bulkConvertersMatchTorchBitForBit() throws {
        let fx = try HalfFixture.load()
        // Repeat the inputs so the threaded path with several chunks runs too.
        let reps = 200
        let src = AlignedBuffer<Float>((0..<reps).flatMap { _ in fx.f32.map { Float(bitPattern: $0) } })
        let n = src.count
        let bf = AlignedBuffer<UInt16>(count: n), hf = AlignedBuffer<UInt16>(count: n)
        convertF32ToBF16(src.pointer, bf.pointer, count: n)
        convertF32ToF16(src.pointer, hf.pointer, count: n)
        #expect(Array(bf.buffer) == Array((0..<reps).map { _ in fx.bf16 }.joined()))
        #expect(Array(hf.buffer) == Array((0..<reps).map { _ in fx.f16 }.joined()))

        let back = AlignedBuffer<Float>(count: fx.f16In.count)
        convertF16ToF32(fx.f16In, back.pointer, count: fx.f16In.count)
        #expect(back.toArray().map(\.bitPattern) == fx.f16Out)
        let back2 = AlignedBuffer<Float>(count: fx.bf16In.count)
        convertBF16ToF32(fx.bf16In, back2.pointer, count: fx.bf16In.count)
        #expect(back2.toArray().map(\.bitPattern) == fx.bf16Out)
    }

    @Test func wideningMatchesTorchIncludingNaNPayloads() throws {
        let fx = try HalfFixture.load()
        for (h, want) in zip(fx.f16In, fx.f16Out) {
            #expect(floatFromF16(h).bitPattern == want, "f16 \(hex(h))")
        }
        for (h, want) in zip(fx.bf16In, fx.bf16Out) {
            #expect(floatFromBF16(h).bitPattern == want, "bf16 \(hex(h))")
        }
    }

    #if !(os(macOS) && arch(x86_64))
    /// Every f16 value widens exactly (Swift's Float16 as a second oracle) and narrows back to itself.
    @Test func everyF16ValueRoundTrips() {
        for h in 0...UInt16.max {
            let x = floatFromF16(h)
            let oracle = Float(Float16(bitPattern: h))
            if oracle.isNaN {
                #expect(x.isNaN)
                #expect(f16Bits(fromFloat: x) == h | 0x0200, "NaN \(hex(h)) comes back quieted")
            } else {
                #expect(x.bitPattern == oracle.bitPattern, "f16 \(hex(h))")
                #expect(f16Bits(fromFloat: x) == h, "f16 \(hex(h)) round trip")
            }
        }
    }

    /// Narrowing agrees with Swift's own IEEE round-to-nearest-even on a sweep of fp32 patterns.
    @Test func f16NarrowingAgreesWithSwiftFloat16() {
        var w: UInt32 = 0x2F00_0000   // below f16's smallest subnormal
        while w < 0x4800_0000 {       // past f16's largest value
            let x = Float(bitPattern: w)
            #expect(f16Bits(fromFloat: x) == Float16(x).bitPattern, "\(hex(w))")
            #expect(f16Bits(fromFloat: -x) == Float16(-x).bitPattern, "-\(hex(w))")
            w &+= 0x1F3  // odd stride: hits every low-bit pattern class
        }
    }
    #endif

    @Test func everyBF16ValueRoundTrips() {
        for h in 0...UInt16.max {
            let x = floatFromBF16(h)
            if x.isNaN { #expect(bf16Bits(fromFloat: x) == 0xFFFF) } else { #expect(bf16Bits(fromFloat: x) == h) }
        }
    }

    @Test func dtypeDispatchConvertsEachFloatType() {
        let values: [Float] = [1, -2.5, 3.140625, 65504, 1e-7, 0]
        for dtype in [DType.f32, .bf16, .f16, .f64] {
            let backend = CPUBackend()
            let raw = backend.allocate(UInt8.self, count: values.count * dtype.elementSize)
            let input = backend.upload(values), device = backend.upload([Float](repeating: .nan, count: values.count))
            backend.convertFromFloat(raw.pointer, dtype: dtype, from: input.readOnly, count: values.count)
            backend.convertToFloat(device.pointer, from: raw.readOnly, dtype: dtype, count: values.count)
            let out = backend.download(device.readOnly, count: values.count)
            let want = values.map { x -> Float in
                switch dtype {
                case .bf16: return floatFromBF16(bf16Bits(fromFloat: x))
                case .f16: return floatFromF16(f16Bits(fromFloat: x))
                default: return x
                }
            }
            #expect(out == want, "\(dtype)")
        }
        var r: [Float] = [1.00390625, 3]
        roundToBF16InPlace(&r, count: 2)
        #expect(r == [1, 3])
    }
}

@Suite struct DTypeTests {
    @Test func safetensorsNamesAndSizes() {
        #expect(DType.allCases.map(\.safetensorsName) == ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"])
        #expect(DType.allCases.map(\.elementSize) == [8, 4, 2, 2, 8, 4, 2, 1, 1, 1])
        #expect(DType(safetensorsName: "BF16") == .bf16)
        #expect(DType(safetensorsName: "bf16") == nil)
        #expect(DType(safetensorsName: "F8_E4M3") == nil)
    }

    @Test func userSpellingsParse() {
        #expect(DType(name: "bfloat16") == .bf16)
        #expect(DType(name: "torch.float16") == .f16)
        #expect(DType(name: " fp32 ") == .f32)
        #expect(DType(name: "BF16") == .bf16)
        #expect(DType(name: "float8") == nil)
        #expect(DType.bf16.torchName == "bfloat16")
    }
}
