/// How a frozen weight is stored in memory. Weights stay in the dtype of their file (a bf16 model
/// costs 2 bytes per parameter resident) and are widened to fp32 only where a kernel needs it.
public enum WeightDType: String, Sendable {
    case float32 = "F32", bfloat16 = "BF16", float16 = "F16"

    public var byteSize: Int { self == .float32 ? 4 : 2 }
}

/// A row-major matrix (rows, cols) in its stored dtype: `rows` outputs of a Linear layer, each a
/// row of `cols` inputs (PyTorch's weight layout). The memory belongs to whoever handed it out
/// (a mapped safetensors file, a WeightProvider's buffer) and must outlive every use.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let dtype: WeightDType
    public let base: UnsafeRawPointer

    public init(rows: Int, cols: Int, dtype: WeightDType, base: UnsafeRawPointer) {
        self.rows = rows
        self.cols = cols
        self.dtype = dtype
        self.base = base
    }

    public init(rows: Int, cols: Int, float32 pointer: UnsafePointer<Float>) {
        self.init(rows: rows, cols: cols, dtype: .float32, base: UnsafeRawPointer(pointer))
    }

    public var count: Int { rows * cols }

    /// The fp32 pointer when the matrix is stored in fp32 (no copy needed), else nil.
    public var float32: UnsafePointer<Float>? {
        dtype == .float32 ? base.assumingMemoryBound(to: Float.self) : nil
    }

    /// Writes rows `range` as fp32 into `out` ((range.count, cols), row-major).
    public func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let start = range.lowerBound * cols, n = range.count * cols
        switch dtype {
        case .float32:
            out.update(from: base.assumingMemoryBound(to: Float.self) + start, count: n)
        case .bfloat16:
            widenBF16(base.assumingMemoryBound(to: UInt16.self) + start, out, n)
        case .float16:
            widenF16(base.assumingMemoryBound(to: UInt16.self) + start, out, n)
        }
    }
}

/// fp32 from bfloat16 bits: the bf16 is the top half of the fp32.
@inlinable
public func widenBF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n {
        let h = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<UInt16>.self)
        let w = SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16
        UnsafeMutableRawPointer(dst + i).storeBytes(of: unsafeBitCast(w, to: SIMD8<Float>.self),
                                                    as: SIMD8<Float>.self)
        i += 8
    }
    while i < n {
        dst[i] = Float(bitPattern: UInt32(src[i]) << 16)
        i += 1
    }
}

/// fp32 from IEEE half bits (exact: every half is a float).
@inlinable
public func widenF16(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { dst[i] = float16ToFloat(src[i]) }
}

/// IEEE half → fp32 by bit manipulation (no F16C needed): normals, subnormals, inf and NaN.
@inlinable
public func float16ToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1f
    let mant = UInt32(h & 0x3ff)
    if exp == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
    if exp == 0 {
        // Subnormal (or zero): mant · 2^-24, exact in fp32.
        let v = Float(mant) * Float(bitPattern: 0x3380_0000)
        return sign != 0 ? -v : v
    }
    return Float(bitPattern: sign | (UInt32(exp + 112) << 23) | (mant << 13))
}

/// fp32 → bfloat16 bits, round to nearest even (as torch's `.to(torch.bfloat16)`); NaN stays NaN.
@inlinable
public func floatToBF16(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    if f.isNaN { return UInt16(bits >> 16) | 0x40 }
    let rounded = bits &+ 0x7fff &+ ((bits >> 16) & 1)
    return UInt16(rounded >> 16)
}

/// fp32 → IEEE half bits, round to nearest even (overflow → inf).
@inlinable
public func floatToF16(_ f: Float) -> UInt16 {
    Float16(f).bitPattern
}
