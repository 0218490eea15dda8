import QwenCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// The decoding kernel's NF4 row: Σ W[e0+i]·x[i] for i < n, reading the packed codes directly.
// Per block of the row: Σ code[c_i]·x[i] through a 256-entry table that turns one byte into its
// two codes (high nibble: even element, low: odd) as a pair of floats, then × the block absmax.
// The table is 2 KiB (L1), so a weight costs half a table load and half a 2-lane FMA, and the
// row reads 0.5 bytes per weight plus 4 bytes per block. Summing code·x before scaling by the
// absmax reassociates fp32 against dequantise-then-dot; decoding tolerates it (batches of more
// than `fusedRowLimit` rows dequantise tiles exactly and use BLAS).

/// byte → (code[byte >> 4], code[byte & 15]), 256 pairs.
let nf4PairTable: [SIMD2<Float>] = (0..<256).map { SIMD2(NF4.code[$0 >> 4], NF4.code[$0 & 15]) }

/// True when a row of `cols` weights can take the split-pair AVX2 kernel (`dotNF4Split`): whole
/// 16-weight groups, never straddling a block. Its input is then pair-split (`splitPairs`).
@inline(__always)
func nf4RowsSplit(_ w: WeightMatrix) -> Bool {
    #if arch(x86_64)
    return w.cols % 16 == 0 && (w.nf4?.blocksize ?? 0) % 16 == 0
    #else
    return false
    #endif
}

#if arch(x86_64)
/// Σ W[e0+i]·x[i] with x pair-split by `splitPairs` (within every 16 inputs the 8 even ones, then
/// the 8 odd ones): 8 packed bytes give the 8 even weights (high nibbles) and the 8 odd ones (low
/// nibbles) as two 8-lane index vectors; each is looked up in the 16-code table with two 8-entry
/// permutes and a blend on index bit 3. Per block, the code·x sums are scaled by its absmax.
/// n and e0 are multiples of 16; so is the block size.
public func dotNF4Split(_ q: NF4Layout, from e0: Int, _ xp: UnsafePointer<Float>, _ n: Int) -> Float {
    let lutLo = nf4LutLo, lutHi = nf4LutHi
    let fifteen = _mm256_set1_epi32(15)
    let bs = q.blocksize
    let xr = UnsafeRawPointer(xp)
    let packed = UnsafeRawPointer(q.packed)
    var total = SIMD8<Float>()
    @inline(__always) func lookup(_ idx: __m256i) -> SIMD8<Float> {
        let lo = _mm256_permutevar8x32_ps(lutLo, idx), hi = _mm256_permutevar8x32_ps(lutHi, idx)
        return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)))
    }
    @inline(__always) func group(_ e: Int, _ a: inout SIMD8<Float>, _ b: inout SIMD8<Float>) {
        let bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64((packed + (e >> 1)).assumingMemoryBound(to: __m128i.self)))
        let xo = (e - e0) * 4
        a = _mm256_fmadd_ps(lookup(_mm256_srli_epi32(bytes, 4)), xr.loadUnaligned(fromByteOffset: xo, as: SIMD8<Float>.self), a)
        b = _mm256_fmadd_ps(lookup(_mm256_and_si256(bytes, fifteen)), xr.loadUnaligned(fromByteOffset: xo + 32, as: SIMD8<Float>.self), b)
    }
    var e = e0
    let end = e0 + n
    while e < end {
        let blk = e / bs
        let stop = min(end, (blk + 1) * bs)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        while e + 32 <= stop {
            group(e, &a0, &a1)
            group(e + 16, &a2, &a3)
            e += 32
        }
        if e < stop {
            group(e, &a0, &a1)
            e += 16
        }
        total = _mm256_fmadd_ps((a0 + a1) + (a2 + a3), SIMD8<Float>(repeating: q.absmax[blk]), total)
    }
    return total.sum()
}

/// The 16 NF4 codes as two 8-lane permute tables.
let nf4LutLo = SIMD8<Float>(NF4.code[0], NF4.code[1], NF4.code[2], NF4.code[3], NF4.code[4], NF4.code[5], NF4.code[6], NF4.code[7])
let nf4LutHi = SIMD8<Float>(NF4.code[8], NF4.code[9], NF4.code[10], NF4.code[11], NF4.code[12], NF4.code[13], NF4.code[14], NF4.code[15])
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
