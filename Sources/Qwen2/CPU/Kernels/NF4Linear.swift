import QwenCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// The decoding kernel's NF4 row: Σ W[e0+i]·x[i] for i < n, reading the packed codes directly.
// Per block of the row: Σ code[c_i]·x[i] through a 256-entry table that turns one byte into its
// two codes (high nibble: even element, low: odd) as a pair of floats, then × the block absmax.
// The table is 2 KiB (L1), so a weight costs half a table load and half a 2-lane FMA, and the
// row reads 0.5 bytes per weight plus 4 bytes per block. Rows of whole 64-weight chunks take the
// AVX2 byte-plane kernel (`dotNF4Planar`) instead. Summing code·x before scaling by the absmax
// reassociates fp32 against dequantise-then-dot; decoding tolerates it (batches of more than
// `fusedRowLimit` rows dequantise tiles exactly and use BLAS).

/// byte → (code[byte >> 4], code[byte & 15]), 256 pairs.
let nf4PairTable: [SIMD2<Float>] = (0..<256).map { SIMD2(NF4.code[$0 >> 4], NF4.code[$0 & 15]) }

/// True when the rows of `w` take the byte-plane AVX2 kernel (`dotNF4Planar`): whole 64-weight
/// chunks (`cols` a multiple of 64), each inside one block or exactly two 32-blocks. Its input
/// is then reordered by `planarNF4Order`.
@inline(__always)
func nf4RowsPlanar(_ w: WeightMatrix) -> Bool {
    #if arch(x86_64)
    guard let bs = w.nf4?.blocksize else { return false }
    return w.cols % 64 == 0 && (bs % 64 == 0 || bs == 32)
    #else
    return false
    #endif
}

/// Where `dotNF4Planar` reads each input of a 64-weight chunk: position p of the reordered chunk
/// holds input `nf4PlanarSource[p]`. The chunk's 32 bytes give 32 high-nibble codes (even
/// weights 2j) then 32 low-nibble codes (odd weights 2j+1); the byte-plane lookup leaves code j
/// of each half in 8-lane vector v = (j % 16) / 4, lane 4·(j / 16) + j % 4 (the unpack order).
let nf4PlanarSource: [Int] = (0..<64).map { p in
    let odd = p / 32, v = (p % 32) / 8, lane = p % 8
    let j = (lane < 4 ? 0 : 16) + 4 * v + lane % 4
    return 2 * j + odd
}

/// Reorders x (`count` a multiple of 64) for `dotNF4Planar`, chunk by chunk.
public func planarNF4Order(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    nf4PlanarSource.withUnsafeBufferPointer { src in
        var i = 0
        while i + 64 <= count {
            for p in 0..<64 { out[i + p] = x[i + src[p]] }
            i += 64
        }
    }
}

#if arch(x86_64)
/// The 16 NF4 codes as four byte planes (byte k of every code's fp32 bits), each a 16-byte
/// `vpshufb` table repeated in both 128-bit lanes.
public struct NF4CodePlanes {
    let p0: __m256i, p1: __m256i, p2: __m256i, p3: __m256i

    public init() {
        func plane(_ k: Int) -> __m256i {
            var t = SIMD32<UInt8>()
            for j in 0..<32 { t[j] = UInt8(truncatingIfNeeded: NF4.code[j % 16].bitPattern >> (8 * k)) }
            return unsafeBitCast(t, to: __m256i.self)
        }
        p0 = plane(0); p1 = plane(1); p2 = plane(2); p3 = plane(3)
    }
}

/// The planes, built once; a kernel caller reads them once per run of rows.
let nf4CodePlanes = NF4CodePlanes()

/// Σ W[e0+i]·x[i] for i < n, x reordered by `planarNF4Order`; n and e0 multiples of 64, the
/// block size 32 or a multiple of 64.
///
/// Per 64-weight chunk: one 32-byte load of codes; the high and low nibbles become two vectors
/// of 32 byte indices; four `vpshufb`s look up the four bytes of each code and two rounds of
/// unpacks assemble them into four 8-lane fp32 vectors per index vector (exact code values).
/// That is 3 in-lane shuffles per 8 weights, which AMD Zen 3 runs on two pipes; the kernel it
/// replaced (two cross-lane `vpermps` and a blend per 8 weights) took about 1.8× the CPU per
/// weight (C copies of both, rows in cache). The shuffles are the bound: more rows per call or more
/// unrolling did not help. Per block the code·x sums are scaled by its absmax (with 32-blocks,
/// the lower 128-bit lane of a chunk is its first block).
@inline(__always)
public func dotNF4Planar(_ q: NF4Layout, from e0: Int, _ xp: UnsafePointer<Float>, _ n: Int,
                         planes c: NF4CodePlanes) -> Float {
    let low = _mm256_set1_epi8(15)
    let xr = UnsafeRawPointer(xp), packed = UnsafeRawPointer(q.packed)
    let absmax = q.absmax, bs = q.blocksize
    @inline(__always) func xs(_ e: Int, _ k: Int) -> SIMD8<Float> {
        xr.loadUnaligned(fromByteOffset: (e - e0 + 8 * k) * 4, as: SIMD8<Float>.self)
    }
    /// code·x over the 32 weights whose code indices are the bytes of `idx`, against the chunk's
    /// reordered x vectors k…k+3, as 8 lanes (lanes 0-3 from the first 16 indices, 4-7 the last).
    @inline(__always) func half(_ idx: __m256i, _ e: Int, _ k: Int) -> SIMD8<Float> {
        let b0 = _mm256_shuffle_epi8(c.p0, idx), b1 = _mm256_shuffle_epi8(c.p1, idx)
        let b2 = _mm256_shuffle_epi8(c.p2, idx), b3 = _mm256_shuffle_epi8(c.p3, idx)
        let l01 = _mm256_unpacklo_epi8(b0, b1), h01 = _mm256_unpackhi_epi8(b0, b1)
        let l23 = _mm256_unpacklo_epi8(b2, b3), h23 = _mm256_unpackhi_epi8(b2, b3)
        let w0 = unsafeBitCast(_mm256_unpacklo_epi16(l01, l23), to: SIMD8<Float>.self)
        let w1 = unsafeBitCast(_mm256_unpackhi_epi16(l01, l23), to: SIMD8<Float>.self)
        let w2 = unsafeBitCast(_mm256_unpacklo_epi16(h01, h23), to: SIMD8<Float>.self)
        let w3 = unsafeBitCast(_mm256_unpackhi_epi16(h01, h23), to: SIMD8<Float>.self)
        let a = _mm256_fmadd_ps(w2, xs(e, k + 2), w0 * xs(e, k))
        let b = _mm256_fmadd_ps(w3, xs(e, k + 3), w1 * xs(e, k + 1))
        return a + b
    }
    @inline(__always) func chunk(_ e: Int) -> SIMD8<Float> {
        let bytes = packed.loadUnaligned(fromByteOffset: e >> 1, as: __m256i.self)
        let high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low), lowNibbles = _mm256_and_si256(bytes, low)
        return half(high, e, 0) + half(lowNibbles, e, 4)
    }
    var total = SIMD8<Float>()
    var e = e0
    let end = e0 + n
    if bs == 32 {
        let ar = UnsafeRawPointer(absmax)
        while e < end {
            let pair = ar.loadUnaligned(fromByteOffset: (e >> 5) * 4, as: SIMD2<Float>.self)
            let scale = SIMD8<Float>(lowHalf: SIMD4(repeating: pair[0]), highHalf: SIMD4(repeating: pair[1]))
            total = _mm256_fmadd_ps(chunk(e), scale, total)
            e += 64
        }
        return total.sum()
    }
    var blk = e0 / bs
    var stop = min(end, (blk + 1) * bs)
    while e < end {
        var a = chunk(e)
        e += 64
        if e + 64 <= stop {
            var b = chunk(e)
            e += 64
            while e + 128 <= stop {
                a += chunk(e)
                b += chunk(e + 64)
                e += 128
            }
            if e < stop {
                a += chunk(e)
                e += 64
            }
            a += b
        }
        total = _mm256_fmadd_ps(a, SIMD8<Float>(repeating: absmax[blk]), total)
        blk += 1
        stop = min(end, stop + bs)
    }
    return total.sum()
}
#endif

public func dotNF4(_ q: NF4Layout, from e0: Int, _ x: UnsafePointer<Float>, _ n: Int) -> Float {
    nf4PairTable.withUnsafeBufferPointer { tp -> Float in
        let table = tp.baseAddress!
        let code = NF4.code
        let packed = q.packed, absmax = q.absmax, bs = q.blocksize
        let xr = UnsafeRawPointer(x)
        var total: Float = 0
        var e = e0
        let end = e0 + n
        while e < end {
            let b = e / bs
            let stop = min(end, (b + 1) * bs)
            var s: Float = 0
            var i = e
            if i & 1 == 1 {  // a row starting mid-byte (odd cols): its first element is a low nibble
                s += code[Int(packed[i >> 1] & 0xF)] * x[i - e0]
                i += 1
            }
            var a0 = SIMD2<Float>(), a1 = SIMD2<Float>(), a2 = SIMD2<Float>(), a3 = SIMD2<Float>()
            while i + 8 <= stop {
                let p = packed + (i >> 1)
                let xo = (i - e0) * 4
                a0 += table[Int(p[0])] * xr.loadUnaligned(fromByteOffset: xo, as: SIMD2<Float>.self)
                a1 += table[Int(p[1])] * xr.loadUnaligned(fromByteOffset: xo + 8, as: SIMD2<Float>.self)
                a2 += table[Int(p[2])] * xr.loadUnaligned(fromByteOffset: xo + 16, as: SIMD2<Float>.self)
                a3 += table[Int(p[3])] * xr.loadUnaligned(fromByteOffset: xo + 24, as: SIMD2<Float>.self)
                i += 8
            }
            while i + 2 <= stop {
                a0 += table[Int(packed[i >> 1])] * xr.loadUnaligned(fromByteOffset: (i - e0) * 4, as: SIMD2<Float>.self)
                i += 2
            }
            if i < stop {
                s += code[Int(packed[i >> 1] >> 4)] * x[i - e0]
                i += 1
            }
            s += ((a0 + a1) + (a2 + a3)).sum()
            total += s * absmax[b]
            e = stop
        }
        return total
    }
}
