import QwenCore

/// A row-major matrix (rows, cols) in its stored dtype: `rows` outputs of a Linear layer, each a
/// row of `cols` inputs (PyTorch's weight layout). `dtype` is F32, BF16 or F16, or U8 for an
/// NF4 matrix (`nf4` then says where its codes and absmax are; see NF4.swift).
/// The memory belongs to whoever handed it out
/// (a mapped safetensors file, a WeightProvider's buffer) and must outlive every use.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let dtype: DType
    public let base: UnsafeRawPointer
    /// The block layout of an NF4 matrix (dtype U8, `base` its packed codes); nil otherwise.
    public let nf4: NF4Layout?

    public init(rows: Int, cols: Int, dtype: DType, base: UnsafeRawPointer) {
        self.rows = rows
        self.cols = cols
        self.dtype = dtype
        self.base = base
        self.nf4 = nil
    }

    /// An NF4 matrix: packed codes ((rows·cols+1)/2 bytes) with their fp32 absmax per block.
    public init(rows: Int, cols: Int, nf4 layout: NF4Layout) {
        self.rows = rows
        self.cols = cols
        self.dtype = .u8
        self.base = UnsafeRawPointer(layout.packed)
        self.nf4 = layout
    }

    public init(rows: Int, cols: Int, float32 pointer: UnsafePointer<Float>) {
        self.init(rows: rows, cols: cols, dtype: .f32, base: UnsafeRawPointer(pointer))
    }

    public var count: Int { rows * cols }

    /// The fp32 pointer when the matrix is stored in fp32 (no copy needed), else nil.
    public var float32: UnsafePointer<Float>? {
        dtype == .f32 ? base.assumingMemoryBound(to: Float.self) : nil
    }

    /// Walks the matrix in tiles of whole rows that fit `tileElements` floats: each tile's rows
    /// r0..<r0+rows are widened to fp32 into `tile` ((rows, cols), threaded), then `body(r0, rows)`
    /// multiplies with it. Half-precision weights thus never exist in fp32 whole unless they fit
    /// one tile. The tiles are of equal size (`widenedTileRows` rows, the last one shorter), so
    /// no product runs on a sliver of rows.
    public func forEachWidenedTile(into tile: UnsafeMutablePointer<Float>, tileElements: Int,
                                   _ body: (_ r0: Int, _ rows: Int) -> Void) {
        let tileRows = widenedTileRows(tileElements: tileElements)
        var r0 = 0
        while r0 < rows {
            let n = min(tileRows, rows - r0)
            parallelChunks(n, minChunk: 16) { r in
                widenRows((r0 + r.lowerBound)..<(r0 + r.upperBound), into: tile + r.lowerBound * cols)
            }
            body(r0, n)
            r0 += n
        }
    }

    /// Rows per tile of `forEachWidenedTile`: the rows split into the fewest tiles of at most
    /// `tileElements` floats (at least one row each), evened out and rounded up to a multiple of
    /// 16 (GEMM's block) where that still fits.
    public func widenedTileRows(tileElements: Int) -> Int {
        guard rows > 0 else { return 1 }
        let most = max(1, min(rows, tileElements / max(1, cols)))
        let tiles = (rows + most - 1) / most
        let even = (rows + tiles - 1) / tiles
        let rounded = (even + 15) / 16 * 16
        return max(1, min(rows, rounded <= most ? rounded : even))
    }

    /// Writes rows `range` as fp32 into `out` ((range.count, cols), row-major).
    public func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let start = range.lowerBound * cols, n = range.count * cols
        if let q = nf4 {
            NF4.dequantize(packed: q.packed, absmax: q.absmax, blocksize: q.blocksize, from: start, count: n, into: out)
            return
        }
        switch dtype {
        case .f32:
            out.update(from: base.assumingMemoryBound(to: Float.self) + start, count: n)
        case .bf16:
            widenBF16(base.assumingMemoryBound(to: UInt16.self) + start, out, n)
        default:
            widenF16(base.assumingMemoryBound(to: UInt16.self) + start, out, n)
        }
    }
}

/// Where an NF4 matrix's data is: packed codes, fp32 absmax (one per block), block size.
public struct NF4Layout: @unchecked Sendable {
    public let packed: UnsafePointer<UInt8>
    public let absmax: UnsafePointer<Float>
    public let blocksize: Int
    public init(packed: UnsafePointer<UInt8>, absmax: UnsafePointer<Float>, blocksize: Int) {
        self.packed = packed
        self.absmax = absmax
        self.blocksize = blocksize
    }
}

/// fp32 from bfloat16 bits (the bf16 is the top half of the fp32). A plain loop the compiler
/// vectorises (zero-extend and shift); `SIMD8<UInt32>(truncatingIfNeeded:)` was left as an
/// out-of-line call per 8 elements in release builds.
@inlinable
public func widenBF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n {
        dst[i] = Float(bitPattern: UInt32(src[i]) << 16)
    }
}

/// fp32 from IEEE half bits. Swift's Float16 widening vectorises to F16C's vcvtph2ps where the
/// target has it (x86-64 builds target Haswell); it equals `floatFromF16` on every non-NaN value
/// (HalfConversionTests checks all 65,536), and a NaN stays a NaN.
@inlinable
public func widenF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    #if os(macOS) && arch(x86_64)
    for i in 0..<n { dst[i] = floatFromF16(src[i]) }
    #else
    for i in 0..<n { dst[i] = Float(Float16(bitPattern: src[i])) }
    #endif
}
