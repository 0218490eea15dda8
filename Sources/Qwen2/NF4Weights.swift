import Foundation
import QwenCore

/// The WeightProvider of a model whose seven projections per layer are NF4: quantised on load
/// from a 16/32-bit folder (`train_mode: qlora`, `--load-in-4bit`) or read from a bitsandbytes
/// 4-bit folder. Resident: the packed codes and fp32 absmax; the kernels dequantise tiles of
/// rows (cache-sized, reused) as they multiply, so no layer is ever whole in fp32.
/// Embeddings, lm_head, norms, biases and skipped modules come from the stored weights as they are.
public final class NF4Weights: WeightProvider {
    public let config: Qwen2Config
    public let base: StoredWeights
    /// tensors[layer][projection]; absent for a module kept unquantised.
    public let tensors: [[Projection: NF4Tensor]]
    public let blocksize: Int
    public let doubleQuant: Bool
    /// The options the base was quantised with on load; nil for a bitsandbytes 4-bit folder.
    public let quantizedOnLoad: NF4Options?
    private let layers: [LayerWeights]

    public var embedding: WeightMatrix { base.embedding }
    public var lmHead: WeightMatrix { base.lmHead }
    public var finalNorm: UnsafePointer<Float> { base.finalNorm }
    public let residentBytes: Int

    /// Quantises every projection of `source` not skipped by `options` (in parallel within each
    /// matrix; `progress(done, total)` after each). The source's pages of a quantised matrix are
    /// dropped from memory once it is done, so peak memory stays near the NF4 size.
    public init(config: Qwen2Config, source: TensorSource, quantizing options: NF4Options,
                progress: ((Int, Int) -> Void)? = nil) throws {
        guard NF4.blocksizes.contains(options.blocksize) else {
            throw Qwen2Error.unsupportedConfig(path: source.path, key: "bnb_4bit_blocksize",
                                               detail: "\(options.blocksize) is not one of \(NF4.blocksizes.map(String.init).joined(separator: ", "))")
        }
        self.config = config
        base = try StoredWeights(config: config, source: source)
        blocksize = options.blocksize
        doubleQuant = options.doubleQuant
        quantizedOnLoad = options
        var all: [[Projection: NF4Tensor]] = []
        let total = config.numHiddenLayers * Projection.allCases.count
        var done = 0
        var bytes = 0
        // One fp32 buffer for widening every half-precision matrix (see NF4Tensor.quantize).
        var largest = 0
        for p in Projection.allCases { let s = p.shape(config); largest = max(largest, s.rows * s.cols) }
        let scratch = AlignedBuffer<Float>(uninitializedCount: largest)
        for l in 0..<config.numHiddenLayers {
            let lw = try base.acquireLayer(l)
            var layer: [Projection: NF4Tensor] = [:]
            for p in Projection.allCases {
                done += 1
                let m = lw.matrix(p)
                if options.skips("model.layers.\(l).\(p.modulePath)") {
                    bytes += m.count * m.dtype.elementSize
                    continue
                }
                let q = NF4Tensor.quantize(m, blocksize: options.blocksize, doubleQuant: options.doubleQuant, scratch: scratch)
                if source is SafeTensorsSource { releasePages(m.base, bytes: m.count * m.dtype.elementSize) }
                layer[p] = q
                bytes += q.residentBytes
                progress?(done, total)
            }
            all.append(layer)
        }
        tensors = all
        layers = Self.substitute(base: base, tensors: all)
        residentBytes = base.residentBytes - Self.projectionBytes(config, base) + bytes
    }

    /// Reads a bitsandbytes 4-bit folder's tensors (see NF4Checkpoint): every quantised
    /// projection is checked; a bad quant state is an error naming the tensor.
    public init(config: Qwen2Config, source: TensorSource) throws {
        self.config = config
        quantizedOnLoad = nil
        let quantized = NF4Checkpoint.quantizedWeights(source)
        base = try StoredWeights(config: config, source: source, supplied: { name in
            NF4Checkpoint.belongs(name, to: quantized)
        })
        var all: [[Projection: NF4Tensor]] = []
        var problems: [String] = []
        var bytes = 0
        var sizes = Set<Int>(), nested = Set<Bool>()
        for l in 0..<config.numHiddenLayers {
            var layer: [Projection: NF4Tensor] = [:]
            for p in Projection.allCases {
                let name = "model.layers.\(l).\(p.modulePath).weight"
                let s = p.shape(config)
                guard quantized.contains(name) else {
                    bytes += s.rows * s.cols * 2
                    continue
                }
                do {
                    let t = try NF4Checkpoint.read(source, weight: name, rows: s.rows, cols: s.cols)
                    layer[p] = t
                    bytes += t.residentBytes
                    sizes.insert(t.blocksize)
                    nested.insert(t.nestedState != nil)
                } catch let NF4Checkpoint.Problem.bad(detail) {
                    problems.append(detail)
                }
            }
            all.append(layer)
        }
        if !problems.isEmpty { throw Qwen2Error.badTensors(path: source.path, problems: problems) }
        tensors = all
        blocksize = sizes.first ?? 64
        doubleQuant = nested.contains(true)
        layers = Self.substitute(base: base, tensors: all)
        residentBytes = base.residentBytes + bytes
    }

    public func acquireLayer(_ index: Int) throws -> LayerWeights { layers[index] }
    public func releaseLayer(_ index: Int) {}

    /// Number of NF4 matrices.
    public var quantizedCount: Int { tensors.reduce(0) { $0 + $1.count } }

    static func substitute(base: StoredWeights, tensors: [[Projection: NF4Tensor]]) -> [LayerWeights] {
        (0..<tensors.count).map { l in
            // StoredWeights never throws from acquireLayer; a placeholder is replaced below.
            var lw = (try? base.acquireLayer(l))!
            for (p, t) in tensors[l] {
                switch p {
                case .q: lw.q = t.matrix
                case .k: lw.k = t.matrix
                case .v: lw.v = t.matrix
                case .o: lw.o = t.matrix
                case .gate: lw.gate = t.matrix
                case .up: lw.up = t.matrix
                case .down: lw.down = t.matrix
                }
            }
            return lw
        }
    }

    static func projectionBytes(_ c: Qwen2Config, _ base: StoredWeights) -> Int {
        var n = 0
        for l in 0..<c.numHiddenLayers {
            guard let lw = try? base.acquireLayer(l) else { continue }
            for p in Projection.allCases { let m = lw.matrix(p); n += m.count * m.dtype.elementSize }
        }
        return n
    }
}

/// Drops the pages of a mapped tensor from this process's memory once it has been read (they
/// are reread from the file if ever touched again). A no-op on anything not page-aligned.
func releasePages(_ p: UnsafeRawPointer, bytes: Int) {
    let page = 4096
    let start = (Int(bitPattern: p) + page - 1) / page * page
    let end = (Int(bitPattern: p) + bytes) / page * page
    guard end > start, let ptr = UnsafeMutableRawPointer(bitPattern: start) else { return }
    _ = madvise(ptr, end - start, Int32(MADV_DONTNEED))
}
