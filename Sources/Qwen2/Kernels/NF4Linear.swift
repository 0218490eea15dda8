import QwenCore

// The decoding kernel's NF4 row: Σ W[e0+i]·x[i] for i < n, reading the packed codes directly.
// Per block of the row: Σ code[c_i]·x[i] through a 256-entry table that turns one byte into its
// two codes (high nibble: even element, low: odd) as a pair of floats, then × the block absmax.
// The table is 2 KiB (L1), so a weight costs half a table load and half a 2-lane FMA, and the
// row reads 0.5 bytes per weight plus 4 bytes per block. Summing code·x before scaling by the
// absmax reassociates fp32 against dequantise-then-dot; decoding tolerates it (batches of more
// than `fusedRowLimit` rows dequantise tiles exactly and use BLAS).

/// byte → (code[byte >> 4], code[byte & 15]), 256 pairs.
let nf4PairTable: [SIMD2<Float>] = (0..<256).map { SIMD2(NF4.code[$0 >> 4], NF4.code[$0 & 15]) }

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
