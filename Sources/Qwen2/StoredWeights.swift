import QwenCore

/// The WeightProvider of a model read from files: matrices stay in the file's dtype in mapped
/// memory (no copy unless a tensor is misaligned), norms and biases are widened to fp32 once.
/// Building it checks every tensor against the config and reports all problems in one error.
public final class StoredWeights: WeightProvider {
    public let config: Qwen2Config
    public let source: TensorSource
    public let embedding: WeightMatrix
    public let lmHead: WeightMatrix
    public var finalNorm: UnsafePointer<Float> { UnsafePointer(finalNormBuffer.pointer) }
    public private(set) var residentBytes: Int = 0

    private let layers: [LayerWeights]
    private let finalNormBuffer: AlignedBuffer<Float>
    /// fp32 copies (norms, biases) and realigned matrices this provider owns.
    private var owned: [AnyObject] = []

    /// `supplied` names tensors another provider reads itself (NF4 projections and their quant
    /// state): they are neither checked nor reported as unexpected, and their matrices here are
    /// placeholders that must not be used.
    public convenience init(config: Qwen2Config, source: TensorSource) throws {
        try self.init(config: config, source: source, supplied: { _ in false })
    }

    public init(config: Qwen2Config, source: TensorSource, supplied: (String) -> Bool) throws {
        self.config = config
        self.source = source
        var problems: [String] = []
        var expected = Set<String>()
        let C = config.hiddenSize, V = config.vocabSize

        func check(_ name: String, _ shape: [Int]) -> StoredTensor? {
            expected.insert(name)
            if supplied(name) { return nil }
            guard let t = source.tensor(named: name) else {
                problems.append("missing \(name) \(shape)")
                return nil
            }
            if !t.dtype.isFloatStorage {
                problems.append("\(name): dtype \(t.dtype) (expected F32, BF16 or F16)")
                return nil
            }
            if t.shape != shape {
                problems.append("\(name): shape \(t.shape), expected \(shape)")
                return nil
            }
            return t
        }
        var ownedBuffers: [AnyObject] = []
        var bytes = 0
        // A dummy fp32 value for pointers of tensors that failed their check (never used: init throws).
        let placeholder = AlignedBuffer<Float>(count: 1)
        ownedBuffers.append(placeholder)

        func vector(_ name: String, _ n: Int) -> UnsafePointer<Float> {
            guard let t = check(name, [n]) else { return UnsafePointer(placeholder.pointer) }
            let buf = AlignedBuffer<Float>(count: n)
            widen(t, into: buf.pointer)
            ownedBuffers.append(buf)
            bytes += n * 4
            return UnsafePointer(buf.pointer)
        }
        func matrix(_ name: String, _ rows: Int, _ cols: Int) -> WeightMatrix {
            guard let t = check(name, [rows, cols]) else {
                return WeightMatrix(rows: rows, cols: cols, float32: placeholder.pointer)
            }
            bytes += t.count * t.dtype.elementSize
            if Int(bitPattern: t.data) % t.dtype.elementSize == 0 {
                return WeightMatrix(rows: rows, cols: cols, dtype: t.dtype, base: t.data)
            }
            // Misaligned in the file: copy to an aligned buffer of the same dtype.
            let n = t.count * t.dtype.elementSize
            let buf = AlignedBuffer<UInt8>(count: n)
            UnsafeMutableRawPointer(buf.pointer).copyMemory(from: t.data, byteCount: n)
            ownedBuffers.append(buf)
            return WeightMatrix(rows: rows, cols: cols, dtype: t.dtype, base: UnsafeRawPointer(buf.pointer))
        }

        embedding = matrix("model.embed_tokens.weight", V, C)
        var layers: [LayerWeights] = []
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)."
            func proj(_ pr: Projection) -> WeightMatrix {
                let s = pr.shape(config)
                return matrix(p + pr.modulePath + ".weight", s.rows, s.cols)
            }
            layers.append(LayerWeights(
                inputNorm: vector(p + "input_layernorm.weight", C),
                postAttentionNorm: vector(p + "post_attention_layernorm.weight", C),
                q: proj(.q), k: proj(.k), v: proj(.v), o: proj(.o),
                qBias: vector(p + "self_attn.q_proj.bias", config.qDim),
                kBias: vector(p + "self_attn.k_proj.bias", config.kvDim),
                vBias: vector(p + "self_attn.v_proj.bias", config.kvDim),
                gate: proj(.gate), up: proj(.up), down: proj(.down)))
        }
        let norm = AlignedBuffer<Float>(count: C)
        if let t = check("model.norm.weight", [C]) { widen(t, into: norm.pointer) }
        finalNormBuffer = norm
        if config.tieWordEmbeddings {
            lmHead = embedding
            expected.insert("lm_head.weight")  // some tied checkpoints still carry a copy; ignored
        } else {
            lmHead = matrix("lm_head.weight", V, C)
        }
        for name in source.tensorNames where !expected.contains(name) && !supplied(name) {
            // Old checkpoints store RoPE's inv_freq buffers; they are recomputed, not read.
            if name.hasSuffix("rotary_emb.inv_freq") { continue }
            problems.append("unexpected \(name)")
        }
        if !problems.isEmpty {
            throw Qwen2Error.badTensors(path: source.path, problems: problems)
        }
        self.layers = layers
        self.owned = ownedBuffers
        self.residentBytes = bytes + C * 4
    }

    public func acquireLayer(_ index: Int) throws -> LayerWeights { layers[index] }

    /// Reads one byte of every page of every matrix, so a mapped file is in memory before the
    /// first forward (otherwise the first prompt pays the page faults of the whole model).
    public func touchAll() {
        var matrices = [embedding] + layers.flatMap { l in Projection.allCases.map { l.matrix($0) } }
        if !config.tieWordEmbeddings { matrices.append(lmHead) }
        for m in matrices {
            let bytes = m.count * m.dtype.elementSize
            let pages = (bytes + 4095) / 4096
            parallelChunks(pages, minChunk: 1024) { r in
                var sum: UInt8 = 0
                for p in r { sum &+= m.base.load(fromByteOffset: p * 4096, as: UInt8.self) }
                touchSink = sum
            }
        }
    }
    public func releaseLayer(_ index: Int) {}
}

nonisolated(unsafe) var touchSink: UInt8 = 0

/// Widens a stored float tensor into fp32 (alignment-safe).
func widen(_ t: StoredTensor, into out: UnsafeMutablePointer<Float>) {
    let n = t.count
    switch t.dtype {
    case .f32:
        UnsafeMutableRawPointer(out).copyMemory(from: t.data, byteCount: n * 4)
    case .bf16:
        for i in 0..<n { out[i] = floatFromBF16(t.data.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    default:
        for i in 0..<n { out[i] = floatFromF16(t.data.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    }
}
