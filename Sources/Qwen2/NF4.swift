import QwenCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// NF4 (4-bit NormalFloat) exactly as bitsandbytes 0.50 stores it.
//
// A weight (out, in) is flattened row-major (blocks may span rows) and cut into blocks of
// `blocksize` elements (64 by default; the last block may be partial). Each block keeps its
// absmax in fp32; every element is scaled by it into [-1, 1] and rounded to the nearest of the
// 16 NF4 codes, an exact midpoint going to the lower code. Two codes per byte, the even element
// in the high nibble; an odd count pads a last low nibble with the code of 0.0 (7).
// Dequantised: W[i] = code[c_i] · absmax[i / blocksize], in fp32.
//
// Double quantisation compresses the absmax values: offset = their mean; (absmax − offset) is
// quantised 8-bit blockwise (blocks of 256) with bitsandbytes' signed dynamic map, keeping one
// fp32 "nested absmax" per 256. Dequantised: absmax[i] = map[q_i] · nested[i / 256] + offset.
// The 4-bit codes come from the true absmax; the weights dequantise with the stored one.
//
// Rounding of the 8-bit step: exact nearest code, ties to the lower one, which is what
// bitsandbytes' default (pure torch) kernel does. Its compiled CPU kernel rounds through a
// lookup table and picks the other neighbour for a few values in a thousand (format.json of
// the fixtures counts them); a checkpoint's stored codes are used as they are, so this choice
// matters only for what `qwenft quantize` and `train_mode: qlora` produce.

public enum NF4 {
    /// bitsandbytes.functional.get_4bit_type("nf4"), as fp32 bit patterns.
    public static let code: [Float] = [
        0xBF800000, 0xBF3239B1, 0xBF066B30, 0xBECA32A0, 0xBE91A24D, 0xBE3D353F, 0xBDBA7871, 0x00000000,
        0x3DA2FAFF, 0x3E24CAE3, 0x3E7C04DD, 0x3EAD033A, 0x3EE1A4B8, 0x3F1007AB, 0x3F3913B3, 0x3F800000,
    ].map { Float(bitPattern: $0) }

    /// bitsandbytes.functional.create_dynamic_map(signed=True): the 8-bit code of the absmax.
    public static let dynamicMap: [Float] = [
        0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
        0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
        0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
        0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
        0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
        0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
        0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
        0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
        0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
        0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
        0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
        0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
        0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
        0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
        0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
        0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
        0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
        0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
        0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
        0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
        0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
        0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
        0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
        0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
        0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
        0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
        0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
        0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
        0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
        0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
        0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
        0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000,
    ].map { Float(bitPattern: $0) }

    /// Block sizes bitsandbytes accepts.
    public static let blocksizes = [32, 64, 128, 256, 512, 1024, 2048, 4096]
    /// The block size of the 8-bit absmax quantisation (fixed in bitsandbytes).
    public static let nestedBlocksize = 256

    /// Decision bounds between neighbouring codes, (code[i] + code[i+1]) / 2 in fp32 (what
    /// torch.bucketize compares against: a value equal to a bound takes the lower code).
    static let bounds4: [Float] = (0..<15).map { (code[$0] + code[$0 + 1]) / 2 }
    static let bounds8: [Float] = (0..<255).map { (dynamicMap[$0] + dynamicMap[$0 + 1]) / 2 }

    /// torch's clamp(min=1e-38) on an fp32 tensor: the double 1e-38 rounded to fp32.
    static let tiny = Float(1e-38)

    /// Number of blocks for `count` elements.
    public static func blocks(_ count: Int, blocksize: Int) -> Int { (count + blocksize - 1) / blocksize }

    /// Quantises x (count) into `packed` ((count+1)/2 bytes) and `absmax` (one per block),
    /// bit for bit as bitsandbytes' quantize_4bit(quant_type="nf4"). Blocks run in parallel.
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, blocksize: Int,
                                packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>) {
        let nb = blocks(count, blocksize: blocksize)
        // Chunks of whole blocks of an even length, so no byte is shared by two threads.
        parallelChunks(nb, minChunk: max(1, 16384 / blocksize)) { range in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: blocksize + 1) { q in
              bounds4.withUnsafeBufferPointer { bp in
                let qp = q.baseAddress!, bounds = bp.baseAddress!
                for b in range {
                    let e0 = b * blocksize, n = min(blocksize, count - e0)
                    var m: Float = 0
                    for i in 0..<n { m = max(m, abs(x[e0 + i])) }
                    if n == blocksize {
                        // Full blocks multiply by the reciprocal; a partial last block divides
                        // (and keeps the clamped absmax): both as bitsandbytes does.
                        absmax[b] = m
                        let r = 1 / max(m, tiny)
                        var i = 0
                        #if arch(x86_64)
                        let rv = _mm256_set1_ps(r)
                        while i + 8 <= n {
                            let v = _mm256_mul_ps(UnsafeRawPointer(x + e0 + i).loadUnaligned(as: __m256.self), rv)
                            let c = unsafeBitCast(nearest4x8(v, bounds), to: SIMD8<Int32>.self)
                            for k in 0..<8 { qp[i + k] = UInt8(truncatingIfNeeded: c[k]) }
                            i += 8
                        }
                        #endif
                        while i < n { qp[i] = nearest4(x[e0 + i] * r, bounds); i += 1 }
                    } else {
                        let am = max(m, tiny)
                        absmax[b] = am
                        for i in 0..<n { qp[i] = nearest4(x[e0 + i] / am, bounds) }
                    }
                    if n % 2 == 1 { qp[n] = 7 }  // pad: the code of 0.0 (only the very last block)
                    for j in 0..<((n + 1) / 2) {
                        packed[e0 / 2 + j] = (qp[2 * j] << 4) | qp[2 * j + 1]
                    }
                }
              }
            }
        }
    }

    /// The code of a scaled value: the number of bounds strictly below it (clamped to [-1, 1]),
    /// by a four-step binary search over the 15 bounds.
    @inline(__always)
    static func nearest4(_ v: Float, _ b: UnsafePointer<Float>) -> UInt8 {
        let s = min(max(v, -1), 1)
        var c = 0
        if s > b[7] { c = 8 }
        if s > b[c + 3] { c += 4 }
        if s > b[c + 1] { c += 2 }
        if s > b[c] { c += 1 }
        return UInt8(c)
    }

    #if arch(x86_64)
    /// `nearest4` of eight values at once, without branches: the count of bounds strictly below
    /// each clamped value, as the sign bits of bound − value (exact: it is negative exactly when
    /// the bound is below, +0 when equal). A NaN clamps to −1 (maxps returns its second operand)
    /// and so takes code 0, as in `nearest4`. The binary search's four unpredictable branches
    /// made quantising cost about 60 cycles a weight.
    @inline(__always)
    static func nearest4x8(_ v: __m256, _ bounds: UnsafePointer<Float>) -> __m256i {
        let s = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-1)), _mm256_set1_ps(1))
        var c = _mm256_setzero_si256()
        for k in 0..<15 {
            let d = _mm256_sub_ps(_mm256_set1_ps(bounds[k]), s)
            c = _mm256_add_epi32(c, _mm256_srli_epi32(_mm256_castps_si256(d), 31))
        }
        return c
    }
    #endif

    /// The 8-bit code of a scaled absmax: nearest of the dynamic map, ties to the lower code.
    static func nearest8(_ v: Float) -> UInt8 {
        let s = min(max(v, -1), 1)
        var lo = 0, hi = 255  // first bound >= s
        while lo < hi {
            let mid = (lo + hi) / 2
            if bounds8[mid] < s { lo = mid + 1 } else { hi = mid }
        }
        return UInt8(lo)
    }

    /// Double quantisation of `absmax`: the 8-bit codes, one fp32 nested absmax per 256 and the
    /// offset (the mean, accumulated in double and rounded once).
    public static func doubleQuantize(_ absmax: [Float]) -> (codes: [UInt8], nested: [Float], offset: Float) {
        let n = absmax.count
        var sum = 0.0
        for a in absmax { sum += Double(a) }
        let offset = n == 0 ? 0 : Float(sum / Double(n))
        let nb = blocks(n, blocksize: nestedBlocksize)
        var codes = [UInt8](repeating: 0, count: n)
        var nested = [Float](repeating: 0, count: nb)
        for b in 0..<nb {
            let e0 = b * nestedBlocksize, m = min(nestedBlocksize, n - e0)
            var am: Float = 0
            for i in 0..<m { am = max(am, abs(absmax[e0 + i] - offset)) }
            if m == nestedBlocksize {
                nested[b] = am
                let r = 1 / max(am, tiny)
                for i in 0..<m { codes[e0 + i] = nearest8((absmax[e0 + i] - offset) * r) }
            } else {
                let c = max(am, tiny)
                nested[b] = c
                for i in 0..<m { codes[e0 + i] = nearest8((absmax[e0 + i] - offset) / c) }
            }
        }
        return (codes, nested, offset)
    }

    /// absmax[i] = map[codes[i]] · nested[i / 256] + offset (fp32, as bitsandbytes dequantises).
    public static func dequantizeAbsmax(codes: UnsafePointer<UInt8>, count: Int, nested: UnsafePointer<Float>,
                                        offset: Float, map: [Float] = dynamicMap, into out: UnsafeMutablePointer<Float>) {
        map.withUnsafeBufferPointer { map in
            for i in 0..<count {
                let scaled = map[Int(codes[i])] * nested[i / nestedBlocksize]
                out[i] = scaled + offset
            }
        }
    }

    /// Elements e0 ..< e0+count of an NF4 tensor, dequantised into `out` (fp32): code · absmax,
    /// the exact fp32 products bitsandbytes forms. On x86-64 whole 16-element groups take an AVX2
    /// path (`dequantize16`) that gives the same bits as the scalar loop, about 4× as fast; the
    /// training passes dequantise every projection tile by tile through here.
    @inline(__always)
    public static func dequantize(packed: UnsafePointer<UInt8>, absmax: UnsafePointer<Float>, blocksize: Int,
                                  from e0: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        let tables = (codeLo, codeHi)
        #endif
        code.withUnsafeBufferPointer { cp in
            let c = cp.baseAddress!
            var e = e0, o = 0
            let end = e0 + count
            while e < end {
                let b = e / blocksize
                let stop = min(end, (b + 1) * blocksize)
                let a = absmax[b]
                if e & 1 == 1 {
                    out[o] = c[Int(packed[e >> 1] & 0xF)] * a
                    e += 1; o += 1
                }
                #if arch(x86_64)
                while e + 16 <= stop {
                    dequantize16(packed + (e >> 1), a, out + o, tables)
                    e += 16; o += 16
                }
                #endif
                while e + 2 <= stop {
                    let byte = packed[e >> 1]
                    out[o] = c[Int(byte >> 4)] * a
                    out[o + 1] = c[Int(byte & 0xF)] * a
                    e += 2; o += 2
                }
                if e < stop {
                    out[o] = c[Int(packed[e >> 1] >> 4)] * a
                    e += 1; o += 1
                }
            }
        }
    }

    #if arch(x86_64)
    /// 16 weights from 8 packed bytes: the nibbles are spread in element order (high nibble
    /// first) into 16 byte lanes, widened to two 8-lane index vectors, each looked up in the
    /// 16-code table with two 8-entry permutes and a blend on index bit 3, then × absmax.
    @inline(__always)
    static func dequantize16(_ p: UnsafePointer<UInt8>, _ absmax: Float, _ out: UnsafeMutablePointer<Float>,
                             _ tables: (__m256, __m256)) {
        let bytes = _mm_loadl_epi64(UnsafeRawPointer(p).assumingMemoryBound(to: __m128i.self))
        let mask = _mm_set1_epi8(15)
        let lo = _mm_and_si128(bytes, mask)
        let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask)
        let nibbles = _mm_unpacklo_epi8(hi, lo)  // h0 l0 h1 l1 … h7 l7: elements 0…15
        let i0 = _mm256_cvtepu8_epi32(nibbles), i1 = _mm256_cvtepu8_epi32(_mm_unpackhi_epi64(nibbles, nibbles))
        let scale = _mm256_set1_ps(absmax)
        let raw = UnsafeMutableRawPointer(out)
        raw.storeBytes(of: _mm256_mul_ps(lookup8(i0, tables), scale), as: __m256.self)
        raw.storeBytes(of: _mm256_mul_ps(lookup8(i1, tables), scale), toByteOffset: 32, as: __m256.self)
    }

    @inline(__always)
    static func lookup8(_ idx: __m256i, _ tables: (__m256, __m256)) -> __m256 {
        let lo = _mm256_permutevar8x32_ps(tables.0, idx), hi = _mm256_permutevar8x32_ps(tables.1, idx)
        return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)))
    }

    /// The 16 codes as two 8-lane permute tables.
    static let codeLo = unsafeBitCast(SIMD8<Float>(code[0], code[1], code[2], code[3], code[4], code[5], code[6], code[7]), to: __m256.self)
    static let codeHi = unsafeBitCast(SIMD8<Float>(code[8], code[9], code[10], code[11], code[12], code[13], code[14], code[15]), to: __m256.self)
    #endif
}
