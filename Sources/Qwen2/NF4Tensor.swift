import Foundation
import QwenCore

/// How base weights are quantised to NF4 (transformers' BitsAndBytesConfig keys).
public struct NF4Options: Sendable, Equatable {
    /// Elements per absmax block (bnb_4bit_blocksize; 32…4096, powers of two).
    public var blocksize: Int = 64
    /// bnb_4bit_use_double_quant: absmax values themselves stored in 8 bits.
    public var doubleQuant: Bool = true
    /// llm_int8_skip_modules: module names (or name suffixes such as "mlp.down_proj") kept
    /// unquantised. Embeddings, lm_head, norms and biases never are.
    public var skipModules: [String] = []

    public init(blocksize: Int = 64, doubleQuant: Bool = true, skipModules: [String] = []) {
        self.blocksize = blocksize
        self.doubleQuant = doubleQuant
        self.skipModules = skipModules
    }

    /// True when the Linear at `modulePath` ("model.layers.3.mlp.down_proj") stays unquantised.
    public func skips(_ modulePath: String) -> Bool {
        skipModules.contains { s in
            modulePath == s || modulePath.hasSuffix("." + s) || modulePath.split(separator: ".").contains(Substring(s))
        }
    }
}

/// The 8-bit stored form of an NF4 tensor's absmax (double quantisation).
public struct NF4NestedState: Sendable {
    public var codes: [UInt8]
    public var nested: [Float]
    public var offset: Float
    /// The 256-value map the codes index (bitsandbytes' signed dynamic map unless a file says otherwise).
    public var map: [Float]
}

/// One (rows, cols) matrix in NF4: packed codes, the fp32 absmax the weights dequantise with
/// (resident), and, when double-quantised, the 8-bit form it came from (kept for writing).
public final class NF4Tensor: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let blocksize: Int
    public let packed: UnsafePointer<UInt8>
    public let absmax: AlignedBuffer<Float>
    public let nestedState: NF4NestedState?
    /// The bytes behind `packed` (our buffer, or the mapped file's owner).
    private let owner: AnyObject

    public var count: Int { rows * cols }
    public var blockCount: Int { NF4.blocks(count, blocksize: blocksize) }
    public var packedCount: Int { (count + 1) / 2 }
    /// Bytes resident: codes, fp32 absmax and the 8-bit state.
    public var residentBytes: Int {
        packedCount + absmax.count * 4 + (nestedState.map { $0.codes.count + $0.nested.count * 4 } ?? 0)
    }
    public var matrix: WeightMatrix {
        WeightMatrix(rows: rows, cols: cols,
                     nf4: NF4Layout(packed: packed, absmax: UnsafePointer(absmax.pointer), blocksize: blocksize))
    }

    public init(rows: Int, cols: Int, blocksize: Int, packed: UnsafePointer<UInt8>, owner: AnyObject,
                absmax: AlignedBuffer<Float>, nestedState: NF4NestedState?) {
        self.rows = rows
        self.cols = cols
        self.blocksize = blocksize
        self.packed = packed
        self.owner = owner
        self.absmax = absmax
        self.nestedState = nestedState
    }

    /// Quantises a stored matrix as bitsandbytes would (widened to fp32 first, like its
    /// `A.float()`); with `doubleQuant` the absmax used from then on is the 8-bit one.
    ///
    /// `scratch` (at least rows·cols floats) holds the widened copy of a half-precision matrix;
    /// a loader quantising many matrices passes one buffer for all, because a fresh fp32 copy per
    /// matrix, freed between the long-lived packed buffers, fragmented the heap by about one
    /// matrix per layer (0.5B: +1.1 GB resident).
    public static func quantize(_ m: WeightMatrix, blocksize: Int, doubleQuant: Bool,
                                scratch: AlignedBuffer<Float>? = nil) -> NF4Tensor {
        let n = m.count
        let bytes = AlignedBuffer<UInt8>(uninitializedCount: (n + 1) / 2)
        let nb = NF4.blocks(n, blocksize: blocksize)
        let absmax = AlignedBuffer<Float>(uninitializedCount: nb)
        if let f = m.float32 {
            NF4.quantize(f, count: n, blocksize: blocksize, packed: bytes.pointer, absmax: absmax.pointer)
        } else {
            let wide = scratch.flatMap { $0.count >= n ? $0 : nil } ?? AlignedBuffer<Float>(uninitializedCount: n)
            parallelChunks(m.rows, minChunk: 16) { r in m.widenRows(r, into: wide.pointer + r.lowerBound * m.cols) }
            NF4.quantize(wide.pointer, count: n, blocksize: blocksize, packed: bytes.pointer, absmax: absmax.pointer)
        }
        var nested: NF4NestedState?
        if doubleQuant {
            let dq = NF4.doubleQuantize(Array(absmax.buffer))
            dq.codes.withUnsafeBufferPointer { c in
                dq.nested.withUnsafeBufferPointer { p in
                    NF4.dequantizeAbsmax(codes: c.baseAddress!, count: nb, nested: p.baseAddress!, offset: dq.offset, into: absmax.pointer)
                }
            }
            nested = NF4NestedState(codes: dq.codes, nested: dq.nested, offset: dq.offset, map: NF4.dynamicMap)
        }
        return NF4Tensor(rows: m.rows, cols: m.cols, blocksize: blocksize, packed: UnsafePointer(bytes.pointer),
                         owner: bytes, absmax: absmax, nestedState: nested)
    }

    /// The whole matrix dequantised to fp32 (rows·cols): for merging and tests.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            NF4.dequantize(packed: packed, absmax: UnsafePointer(absmax.pointer), blocksize: blocksize,
                           from: 0, count: count, into: o.baseAddress!)
        }
        return out
    }
}
