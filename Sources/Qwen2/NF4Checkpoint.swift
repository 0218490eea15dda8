import Foundation
import JSON
import QwenCore

/// bitsandbytes' 4-bit serialisation (what transformers' save_pretrained writes for a model
/// loaded with load_in_4bit, and what `*-bnb-4bit` checkpoints hold). Per quantised Linear:
///   W                                     U8 ((n+1)/2, 1)   packed codes
///   W.absmax                              F32 (blocks), or U8 (blocks) when double-quantised
///   W.quant_map                           F32 (16)          the NF4 code
///   W.nested_absmax                       F32 (ceil(blocks/256))   (double quantisation)
///   W.nested_quant_map                    F32 (256)                (double quantisation)
///   W.quant_state.bitsandbytes__nf4       U8 (JSON bytes): quant_type, blocksize, dtype, shape,
///                                         nested_blocksize, nested_dtype, nested_offset
/// and config.json `quantization_config` with `quant_method: "bitsandbytes"`.
public enum NF4Checkpoint {
    enum Problem: Error { case bad(String) }

    public static let stateSuffix = ".quant_state.bitsandbytes__nf4"
    static let auxSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", stateSuffix]

    /// Names of the weights in `source` that carry a 4-bit quant state (nf4 or fp4).
    public static func quantizedWeights(_ source: TensorSource) -> Set<String> {
        var out = Set<String>()
        for n in source.tensorNames {
            if let r = n.range(of: ".quant_state.bitsandbytes__") { out.insert(String(n[..<r.lowerBound])) }
        }
        return out
    }

    /// True when a tensor is part of the quant state of one of `weights` (not the weight itself).
    public static func isQuantState(_ name: String, of weights: Set<String>) -> Bool {
        !weights.contains(name) && belongs(name, to: weights)
    }

    /// True when a tensor is a quantised weight or part of its state.
    static func belongs(_ name: String, to weights: Set<String>) -> Bool {
        if weights.contains(name) { return true }
        if let r = name.range(of: ".quant_state.bitsandbytes__") { return weights.contains(String(name[..<r.lowerBound])) }
        for s in auxSuffixes where name.hasSuffix(s) {
            if weights.contains(String(name.dropLast(s.count))) { return true }
        }
        return false
    }

    /// Reads and checks one quantised weight of shape (rows, cols).
    static func read(_ source: TensorSource, weight w: String, rows: Int, cols: Int) throws -> NF4Tensor {
        func bad(_ d: String) -> Problem { .bad(d) }
        func tensor(_ name: String) throws -> StoredTensor {
            guard let t = source.tensor(named: name) else { throw bad("\(name): missing (part of the 4-bit quant state of \(w))") }
            return t
        }
        if source.tensor(named: w + stateSuffix) == nil {
            let other = source.tensorNames.first { $0.hasPrefix(w + ".quant_state.bitsandbytes__") } ?? w
            throw bad("\(other): quant type \(other.components(separatedBy: "__").last ?? "?") is not supported (only nf4; re-quantise with bnb_4bit_quant_type \"nf4\")")
        }
        let stateT = try tensor(w + stateSuffix)
        guard stateT.dtype == .u8 else { throw bad("\(w + stateSuffix): dtype \(stateT.dtype), expected U8 (JSON bytes)") }
        let obj: JSONValue
        do {
            obj = try JSONValue.parse(UnsafeRawBufferPointer(start: stateT.data, count: stateT.count))
        } catch {
            throw bad("\(w + stateSuffix): not a JSON object (\(stateT.count) bytes, \(error)); the quant state is corrupt")
        }
        guard obj.objectValue != nil else {
            throw bad("\(w + stateSuffix): not a JSON object (\(stateT.count) bytes); the quant state is corrupt")
        }
        // A member as JSON text for messages, or "missing".
        func shown(_ key: String) -> String { obj[key].map { $0.text(.python(indent: nil)) } ?? "missing" }
        let quantType = obj["quant_type"]?.stringValue ?? "?"
        guard quantType == "nf4" else { throw bad("\(w + stateSuffix): quant_type \"\(quantType)\" is not supported (only nf4)") }
        guard let blocksize = obj["blocksize"]?.integerValue, NF4.blocksizes.contains(blocksize) else {
            throw bad("\(w + stateSuffix): blocksize \(shown("blocksize")) is not one of \(NF4.blocksizes)")
        }
        guard let shape = obj["shape"]?.arrayValue?.compactMap(\.integerValue), shape == [rows, cols] else {
            throw bad("\(w + stateSuffix): shape \(shown("shape")), expected [\(rows), \(cols)] from config.json")
        }
        let n = rows * cols, blocks = NF4.blocks(n, blocksize: blocksize)
        let packedT = try tensor(w)
        guard packedT.dtype == .u8, packedT.count == (n + 1) / 2 else {
            throw bad("\(w): \(packedT.dtype) \(packedT.shape), expected U8 [\((n + 1) / 2), 1] for a [\(rows), \(cols)] weight")
        }
        let map = try tensor(w + ".quant_map")
        guard map.dtype == .f32, map.count == 16 else { throw bad("\(w).quant_map: \(map.dtype) \(map.shape), expected F32 [16]") }
        let stored = (0..<16).map { map.data.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        guard stored == NF4.code else { throw bad("\(w).quant_map: not the NF4 code of bitsandbytes") }
        let absmaxT = try tensor(w + ".absmax")
        let absmax = AlignedBuffer<Float>(uninitializedCount: blocks)
        var nestedState: NF4NestedState?
        if obj["nested_offset"] != nil || source.tensor(named: w + ".nested_absmax") != nil {
            guard let offset = obj["nested_offset"]?.doubleValue.map(Float.init) else {
                throw bad("\(w + stateSuffix): nested_offset missing for a double-quantised weight")
            }
            let nb = obj["nested_blocksize"]?.integerValue ?? NF4.nestedBlocksize
            guard nb == NF4.nestedBlocksize else { throw bad("\(w + stateSuffix): nested_blocksize \(nb), expected 256") }
            if let nd = obj["nested_dtype"]?.stringValue, nd != "float32" {
                throw bad("\(w + stateSuffix): nested_dtype \(nd), expected float32")
            }
            guard absmaxT.dtype == .u8, absmaxT.count == blocks else {
                throw bad("\(w).absmax: \(absmaxT.dtype) \(absmaxT.shape), expected U8 [\(blocks)] (one code per block of \(blocksize))")
            }
            let nestedT = try tensor(w + ".nested_absmax")
            let nnb = NF4.blocks(blocks, blocksize: nb)
            guard nestedT.dtype == .f32, nestedT.count == nnb else {
                throw bad("\(w).nested_absmax: \(nestedT.dtype) \(nestedT.shape), expected F32 [\(nnb)]")
            }
            let nmapT = try tensor(w + ".nested_quant_map")
            guard nmapT.dtype == .f32, nmapT.count == 256 else {
                throw bad("\(w).nested_quant_map: \(nmapT.dtype) \(nmapT.shape), expected F32 [256]")
            }
            let codes = Array(UnsafeBufferPointer(start: absmaxT.data.assumingMemoryBound(to: UInt8.self), count: blocks))
            let nested = (0..<nnb).map { nestedT.data.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            let nmap = (0..<256).map { nmapT.data.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            codes.withUnsafeBufferPointer { c in
                nested.withUnsafeBufferPointer { p in
                    NF4.dequantizeAbsmax(codes: c.baseAddress!, count: blocks, nested: p.baseAddress!, offset: offset,
                                         map: nmap, into: absmax.pointer)
                }
            }
            nestedState = NF4NestedState(codes: codes, nested: nested, offset: offset, map: nmap)
        } else {
            guard absmaxT.dtype == .f32, absmaxT.count == blocks else {
                throw bad("\(w).absmax: \(absmaxT.dtype) \(absmaxT.shape), expected F32 [\(blocks)] (one per block of \(blocksize))")
            }
            for i in 0..<blocks { absmax.pointer[i] = absmaxT.data.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        }
        for i in 0..<blocks where !absmax.pointer[i].isFinite {
            throw bad("\(w).absmax: block \(i) is \(absmax.pointer[i]) (not finite)")
        }
        return NF4Tensor(rows: rows, cols: cols, blocksize: blocksize, packed: packedT.data.assumingMemoryBound(to: UInt8.self),
                         owner: source, absmax: absmax, nestedState: nestedState)
    }

    /// The JSON bytes of a quant state, as bitsandbytes packs it.
    public static func stateJSON(_ t: NF4Tensor, dtype: String) -> [UInt8] {
        var s = "{\"quant_type\": \"nf4\", \"blocksize\": \(t.blocksize), \"dtype\": \"\(dtype)\", \"shape\": [\(t.rows), \(t.cols)]"
        if let n = t.nestedState {
            s += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": \(Double(n.offset))"
        }
        s += "}"
        return Array(s.utf8)
    }
}

import SafeTensors

extension NF4Checkpoint {
    /// The six tensors bitsandbytes saves for one quantised weight named `w`; `dtype` is the
    /// torch name of the weight's original dtype (what transformers dequantises to).
    public static func tensors(_ t: NF4Tensor, weight w: String, dtype: String) -> [TensorToWrite] {
        var out: [TensorToWrite] = []
        let packed = Array(UnsafeBufferPointer(start: t.packed, count: t.packedCount))
        out.append(TensorToWrite(name: w, dtype: .u8, shape: [t.packedCount, 1], bytes: packed))
        if let n = t.nestedState {
            out.append(TensorToWrite(name: w + ".absmax", dtype: .u8, shape: [n.codes.count], bytes: n.codes))
            out.append(TensorToWrite(name: w + ".nested_absmax", shape: [n.nested.count], floats: n.nested))
            out.append(TensorToWrite(name: w + ".nested_quant_map", shape: [256], floats: n.map))
        } else {
            out.append(TensorToWrite(name: w + ".absmax", shape: [t.blockCount], floats: Array(t.absmax.buffer)))
        }
        out.append(TensorToWrite(name: w + ".quant_map", shape: [16], floats: NF4.code))
        let json = stateJSON(t, dtype: dtype)
        out.append(TensorToWrite(name: w + stateSuffix, dtype: .u8, shape: [json.count], bytes: json))
        return out
    }
}
