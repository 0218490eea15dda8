import Foundation
import JSON
import SafeTensors
import Tokenizer

/// The tensors of a safetensors file, shard index or folder, as a TensorSource (mapped, no copy).
public final class SafeTensorsSource: TensorSource {
    public let store: SafeTensorsStore
    public var path: String { store.indexPath ?? store.files.first?.path ?? store.path }
    public var tensorNames: [String] { store.names }

    public init(path: String) throws {
        store = try SafeTensorsStore(path: path)
    }

    public func tensor(named name: String) -> StoredTensor? {
        guard let t = store[name] else { return nil }
        return StoredTensor(dtype: t.dtype, shape: t.shape, data: t.rawPointer)
    }

    /// The values of tensor `name` (F32, BF16, F16 or F64) as Float.
    public func floats(_ name: String) throws -> [Float] {
        guard let t = store[name] else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        return try t.floats()
    }
}

/// A Hugging Face Qwen2 model folder opened for inference: config, generation defaults, weights
/// (kept in their stored dtype), optionally a PEFT LoRA adapter, and the tokenizer with its chat
/// template.
public final class ModelFolder {
    public let url: URL
    public let config: Qwen2Config
    public let generationConfig: GenerationConfig
    public let model: Qwen2Model
    public let tokenizer: Tokenizer
    public let tokenizerConfig: TokenizerConfig

    /// How the base weights are held: nil for the stored dtype, else a line such as
    /// "NF4 (bitsandbytes 4-bit folder, blocksize 64, double quantisation)".
    public private(set) var quantization: String?

    /// Opens `path`; `adapter` is a PEFT adapter folder applied unmerged.
    public convenience init(path: String, adapter: String? = nil) throws {
        try self.init(path: path, adapter: adapter, loadIn4bit: nil, progress: nil)
    }

    /// Opens `path`, quantising the projections to NF4 when `loadIn4bit` is set (a folder that
    /// already is bitsandbytes 4-bit loads as NF4 either way); `progress(done, total)` while quantising.
    /// `touch` false: a mapped file's pages are read only when used (a ZeRO-3 rank reads its share).
    public init(path: String, adapter: String?, loadIn4bit: NF4Options?, touch: Bool = true, progress: ((Int, Int) -> Void)?) throws {
        url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw Qwen2Error.missingFile(path: path, hint: "--model must be a model folder (config.json, model.safetensors, tokenizer).")
        }
        config = try Qwen2Config.load(url.appendingPathComponent("config.json"))
        try Self.checkArchitecture(url.appendingPathComponent("config.json"))
        generationConfig = try GenerationConfig.load(url.appendingPathComponent("generation_config.json"))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        guard names.contains(where: { $0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json") }) else {
            let hint = names.contains(where: { $0.hasSuffix(".bin") })
                ? "Only safetensors weights are read; convert pytorch_model.bin with transformers' save_pretrained(safe_serialization=True)."
                : "The folder has no model.safetensors or model.safetensors.index.json."
            throw Qwen2Error.missingFile(path: url.appendingPathComponent("model.safetensors").path, hint: hint)
        }
        let (weights, quantization) = try ModelFolder.openWeights(config: config, folder: path, loadIn4bit: loadIn4bit, progress: progress, touch: touch)
        self.quantization = quantization
        let cfg = config
        model = Qwen2Model(weights: weights, adapter: try adapter.map { try ModelFolder.loadAdapter($0, config: cfg) })
        tokenizer = try Tokenizer(modelFolder: path)
        tokenizerConfig = try TokenizerConfig.load(folder: path)
    }

    /// A PEFT LoRA adapter folder for a model of `config`.
    public static func loadAdapter(_ path: String, config: Qwen2Config) throws -> LoRAAdapter {
        let dir = URL(fileURLWithPath: path)
        let tensors = dir.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: tensors.path) else {
            throw Qwen2Error.missingFile(path: tensors.path, hint: "--adapter must be a PEFT adapter folder (adapter_config.json, adapter_model.safetensors).")
        }
        return try LoRAAdapter.load(configURL: dir.appendingPathComponent("adapter_config.json"),
                                    tensors: try SafeTensorsSource(path: tensors.path), model: config)
    }

    /// Only the model of a folder (config and weights, no tokenizer): for tools and tests.
    public static func loadModel(path: String, adapter: String? = nil) throws -> Qwen2Model {
        let url = URL(fileURLWithPath: path)
        let config = try Qwen2Config.load(url.appendingPathComponent("config.json"))
        try checkArchitecture(url.appendingPathComponent("config.json"))
        let (weights, _) = try openWeights(config: config, folder: path, loadIn4bit: nil, progress: nil, touch: false)
        return Qwen2Model(weights: weights, adapter: try adapter.map { try loadAdapter($0, config: config) })
    }

    /// The weights of a folder: NF4 for a bitsandbytes 4-bit folder or when `loadIn4bit` asks for
    /// it, else the stored dtype (mapped, paged in up front when `touch`).
    public static func openWeights(config: Qwen2Config, folder path: String, loadIn4bit: NF4Options?,
                                   progress: ((Int, Int) -> Void)?, touch: Bool = true) throws -> (WeightProvider, String?) {
        let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        let prequantized = try bitsandbytesQuantization(configURL)
        let source = try SafeTensorsSource(path: path)
        if prequantized || !NF4Checkpoint.quantizedWeights(source).isEmpty {
            let w = try NF4Weights(config: config, source: source)
            if w.quantizedCount == 0 {
                throw Qwen2Error.badTensors(path: source.path, problems: [
                    "config.json has a bitsandbytes quantization_config but no tensor has a quant_state.bitsandbytes__nf4"])
            }
            return (w, "NF4 (bitsandbytes 4-bit folder: \(w.quantizedCount) matrices, blocksize \(w.blocksize)\(w.doubleQuant ? ", double quantisation" : ""))")
        }
        if let o = loadIn4bit {
            let w = try NF4Weights(config: config, source: source, quantizing: o, progress: progress)
            return (w, "NF4 (quantised on load: \(w.quantizedCount) matrices, blocksize \(o.blocksize)\(o.doubleQuant ? ", double quantisation" : ""))")
        }
        let w = try StoredWeights(config: config, source: source)
        if touch { w.touchAll() }
        return (w, nil)
    }

    /// True when config.json declares bitsandbytes 4-bit weights; 8-bit ones are refused.
    static func bitsandbytesQuantization(_ url: URL) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: url.path),
              let q = (try? JSONValue.parse(Array(data)))?["quantization_config"], q.objectValue != nil else { return false }
        let method = q["quant_method"]?.stringValue ?? "?"
        guard method == "bitsandbytes" else {
            throw Qwen2Error.unsupportedConfig(path: url.path, key: "quantization_config",
                                               detail: "quant_method \"\(method)\" is not supported (only bitsandbytes 4-bit NF4); use the 16-bit model and --load-in-4bit")
        }
        if q["load_in_8bit"]?.boolValue == true || q["_load_in_8bit"]?.boolValue == true {
            throw Qwen2Error.unsupportedConfig(path: url.path, key: "quantization_config",
                                               detail: "load_in_8bit (LLM.int8) weights are not supported (only 4-bit NF4); use the 16-bit model and --load-in-4bit")
        }
        if let t = q["bnb_4bit_quant_type"]?.stringValue, t != "nf4" {
            throw Qwen2Error.unsupportedConfig(path: url.path, key: "quantization_config.bnb_4bit_quant_type",
                                               detail: "\"\(t)\" is not supported (only nf4)")
        }
        return true
    }

    /// Refuses configs whose `architectures` name something other than a Qwen2 causal LM.
    static func checkArchitecture(_ url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path),
              let list = (try? JSONValue.parse(Array(data)))?["architectures"]?.arrayValue else { return }
        let archs = list.compactMap(\.stringValue)
        let known = ["Qwen2ForCausalLM", "Qwen2Model"]
        if let a = archs.first(where: { !known.contains($0) }) {
            throw Qwen2Error.unsupportedConfig(path: url.path, key: "architectures",
                                               detail: "\(a) is not supported: qwenft runs Qwen2ForCausalLM (Qwen1.5, Qwen2, Qwen2.5)")
        }
    }

    /// The ids generation stops at: generation_config's eos_token_id (a list in Qwen2.5), the
    /// config's, and the tokenizer's eos token.
    public var eosTokenIds: Set<Int32> {
        var ids = Set((generationConfig.eosTokenIds.isEmpty ? config.eosTokenIds : generationConfig.eosTokenIds).map { Int32($0) })
        if let eos = tokenizerConfig.eosToken, let id = tokenizer.id(forToken: eos) { ids.insert(Int32(id)) }
        return ids
    }

    /// The folder's chat template, or a clear error naming the folder.
    public func chatTemplate() throws -> ChatTemplate {
        guard let source = tokenizerConfig.chatTemplate() else {
            throw Qwen2Error.missingFile(path: url.appendingPathComponent("tokenizer_config.json").path,
                                        hint: "The model has no chat template (tokenizer_config.json \"chat_template\" or chat_template.jinja); use --raw-prompt.")
        }
        return try ChatTemplate(source: source, bosToken: tokenizerConfig.bosToken, eosToken: tokenizerConfig.eosToken)
    }
}
