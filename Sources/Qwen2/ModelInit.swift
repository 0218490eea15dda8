import Foundation
import JSON
import QwenCore
import SafeTensors
import Tokenizer

/// Named shapes for `qwenft init`: random-initialised Qwen2 models for tests, benchmarks and the
/// quickstart. The small ones use the Qwen2 vocabulary size (151,936) and tie embeddings, as
/// Qwen2.5-0.5B; the qwen2.5-* presets have the shapes of the released models (7B and 14B untied,
/// vocabulary 152,064).
public enum Qwen2Preset: String, CaseIterable, Sendable {
    case tiny
    case small
    case qwen25_05b = "qwen2.5-0.5b"
    case qwen25_15b = "qwen2.5-1.5b"
    case qwen25_3b = "qwen2.5-3b"
    case qwen25_7b = "qwen2.5-7b"
    case qwen25_14b = "qwen2.5-14b"

    public var config: Qwen2Config {
        let eos = [151_645]
        switch self {
        case .tiny:
            return Qwen2Config(vocabSize: 151_936, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                               numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 4096,
                               rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true,
                               bosTokenId: 151_643, eosTokenIds: eos)
        case .small:
            return Qwen2Config(vocabSize: 151_936, hiddenSize: 256, intermediateSize: 704, numHiddenLayers: 4,
                               numAttentionHeads: 8, numKeyValueHeads: 2, maxPositionEmbeddings: 8192,
                               rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true,
                               bosTokenId: 151_643, eosTokenIds: eos)
        case .qwen25_05b:
            return Qwen2Config(vocabSize: 151_936, hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24,
                               numAttentionHeads: 14, numKeyValueHeads: 2, maxPositionEmbeddings: 32768,
                               rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true,
                               bosTokenId: 151_643, eosTokenIds: eos)
        case .qwen25_15b:
            return Self.released(vocab: 151_936, hidden: 1536, intermediate: 8960, layers: 28, heads: 12, kvHeads: 2, tied: true)
        case .qwen25_3b:
            return Self.released(vocab: 151_936, hidden: 2048, intermediate: 11008, layers: 36, heads: 16, kvHeads: 2, tied: true)
        case .qwen25_7b:
            return Self.released(vocab: 152_064, hidden: 3584, intermediate: 18944, layers: 28, heads: 28, kvHeads: 4, tied: false)
        case .qwen25_14b:
            return Self.released(vocab: 152_064, hidden: 5120, intermediate: 13824, layers: 48, heads: 40, kvHeads: 8, tied: false)
        }
    }

    static func released(vocab: Int, hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, tied: Bool) -> Qwen2Config {
        Qwen2Config(vocabSize: vocab, hiddenSize: hidden, intermediateSize: intermediate, numHiddenLayers: layers,
                    numAttentionHeads: heads, numKeyValueHeads: kvHeads, maxPositionEmbeddings: 32768,
                    rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: tied,
                    bosTokenId: 151_643, eosTokenIds: [151_645])
    }

    /// Qwen2.5-Instruct's generation defaults.
    public static var generationConfig: GenerationConfig {
        var g = GenerationConfig()
        g.bosTokenId = 151_643
        g.eosTokenIds = [151_645, 151_643]
        g.padTokenId = 151_643
        g.doSample = true
        g.temperature = 0.7
        g.topP = 0.8
        g.topK = 20
        g.repetitionPenalty = 1.05
        return g
    }
}

/// Writes a random-initialised Qwen2 model folder in Hugging Face format: config.json,
/// generation_config.json, model.safetensors (in `dtype`), and — from `tokenizer`, a `.tiktoken`
/// rank file or a `tokenizer.json` — tokenizer.json plus tokenizer_config.json with the Qwen2.5
/// ChatML template. Initialisation as transformers' `_init_weights`: normal(0, initializer_range)
/// (0.02 unless the config says otherwise) for Linear and Embedding weights, zero biases, unit norm weights; seeded, so the same seed gives the same file.
public func initializeModelFolder(config: Qwen2Config, tokenizer: String?, out: String, seed: UInt64,
                                  dtype: DType = .f32) throws {
    guard dtype.isFloatStorage else {
        throw Qwen2Error.badInput("--dtype \(dtype.torchName) is not a weight dtype (use float32, bfloat16 or float16)")
    }
    try config.validate()
    let dir = URL(fileURLWithPath: out)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var cfg = config
    cfg.dtype = dtype.torchName

    if let tokenizer {
        guard FileManager.default.fileExists(atPath: tokenizer) else {
            throw Qwen2Error.missingFile(path: tokenizer, hint: "--tokenizer must be a .tiktoken rank file or a tokenizer.json (Scripts/fetch-vocab.sh fetches qwen.tiktoken).")
        }
        let target = dir.appendingPathComponent("tokenizer.json")
        if tokenizer.hasSuffix(".json") {
            if FileManager.default.fileExists(atPath: target.path) { try FileManager.default.removeItem(at: target) }
            try FileManager.default.copyItem(atPath: tokenizer, toPath: target.path)
        } else {
            try TokenizerJSONWriter.write(tiktoken: tokenizer, to: target.path)
        }
        let tc = TokenizerConfig(eosToken: "<|im_end|>", padToken: "<|endoftext|>",
                                 chatTemplates: ["default": ChatTemplate.qwen25], modelMaxLength: 131_072)
        try tc.jsonData().write(to: dir.appendingPathComponent("tokenizer_config.json"))
    }

    try initConfigJSON(cfg).write(to: dir.appendingPathComponent("config.json"))
    try initConfigJSON(Qwen2Preset.generationConfig).write(to: dir.appendingPathComponent("generation_config.json"))

    var tensors: [TensorToWrite] = []
    var stream: UInt64 = 0
    let std = Float(cfg.initializerRange)
    func normal(_ name: String, _ shape: [Int]) {
        stream += 1
        let s = seed &* 0x1000_0000 &+ stream
        tensors.append(TensorToWrite(name: name, dtype: dtype, shape: shape) { buf in
            fillNormal(buf, count: shape.reduce(1, *), std: std, seed: s, dtype: dtype)
        })
    }
    func constant(_ name: String, _ n: Int, _ value: Float) {
        tensors.append(TensorToWrite(name: name, shape: [n], floats: [Float](repeating: value, count: n), as: dtype))
    }
    let C = cfg.hiddenSize
    normal("model.embed_tokens.weight", [cfg.vocabSize, C])
    for i in 0..<cfg.numHiddenLayers {
        let p = "model.layers.\(i)."
        constant(p + "input_layernorm.weight", C, 1)
        constant(p + "post_attention_layernorm.weight", C, 1)
        for pr in Projection.allCases {
            let s = pr.shape(cfg)
            normal(p + pr.modulePath + ".weight", [s.rows, s.cols])
        }
        constant(p + "self_attn.q_proj.bias", cfg.qDim, 0)
        constant(p + "self_attn.k_proj.bias", cfg.kvDim, 0)
        constant(p + "self_attn.v_proj.bias", cfg.kvDim, 0)
    }
    constant("model.norm.weight", C, 1)
    if !cfg.tieWordEmbeddings { normal("lm_head.weight", [cfg.vocabSize, C]) }
    try SafeTensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors").path)
}

/// Writes `count` normal(0, std) values as `dtype` into `buf`, in blocks of 64K values each with
/// its own generator (so threads split the work and the result does not depend on their count).
/// Each block's SplitMix64 starts at a hashed point (`blockSeed`): seeding block b with
/// `seed ^ b·γ`, γ being SplitMix's own increment, made block b+m (whenever the XOR acted as an
/// add) a copy of block b shifted by m draws, so `init` wrote duplicate embedding rows (tiny
/// preset: row 23 "8" == row 131093), tied logits no LoRA could separate.
func fillNormal(_ buf: UnsafeMutableRawBufferPointer, count: Int, std: Float, seed: UInt64, dtype: DType) {
    let block = 1 << 16
    let blocks = (count + block - 1) / block
    guard let base = buf.baseAddress else { return }
    parallelFor(blocks) { b in
        var rng = SeededRNG(seed: blockSeed(seed, block: b))
        let lo = b * block, n = min(block, count - lo)
        var values = [Float](repeating: 0, count: n)
        var i = 0
        while i < n {
            // Box–Muller: two normals per pair of uniforms.
            let u1 = max(rng.unit(), 1e-300), u2 = rng.unit()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            values[i] = Float(r * cos(2 * Double.pi * u2)) * std
            if i + 1 < n { values[i + 1] = Float(r * sin(2 * Double.pi * u2)) * std }
            i += 2
        }
        values.withUnsafeBufferPointer {
            let dst = base + lo * dtype.elementSize
            switch dtype {
            case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: $0.baseAddress!, byteCount: n * 4)
            case .bf16:
                let h = dst.assumingMemoryBound(to: UInt16.self)
                for j in 0..<n { h[j] = bf16Bits(fromFloat: $0[j]) }
            default:
                let h = dst.assumingMemoryBound(to: UInt16.self)
                for j in 0..<n { h[j] = f16Bits(fromFloat: $0[j]) }
            }
        }
    }
}

/// The start of block `block`'s generator for tensor seed `seed`: both through SplitMix64's
/// finaliser, so blocks (and tensors) begin at unrelated points of the 2^64-long sequence.
func blockSeed(_ seed: UInt64, block: Int) -> UInt64 {
    func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return mix(mix(seed &+ 0x9E37_79B9_7F4A_7C15) ^ UInt64(block))
}

/// config.json and generation_config.json as `qwenft init` writes them: pretty, keys sorted,
/// `" : "` between key and value, integral doubles bare, no final newline; the bytes these
/// files had when Foundation's encoder wrote them.
func initConfigJSON<T: Encodable>(_ value: T) throws -> Data {
    Data(try JSONValueEncoder().encode(value).text(.foundation(pretty: true)).utf8)
}
