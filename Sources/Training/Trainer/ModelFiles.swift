import Foundation
import QwenCore
import Qwen2
import SafeTensors

// The files a run hands back to the Python stack: a PEFT adapter folder (adapter_config.json +
// adapter_model.safetensors, which `PeftModel.from_pretrained` loads), or a Hugging Face model
// folder (config, generation config, safetensors shards + index, tokenizer files).

public enum ModelFiles {
    /// Tokenizer and template files transformers' tokenizers save beside a model.
    public static let tokenizerFileNames = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "qwen.tiktoken",
    ]

    /// 5 GB, transformers' default `max_shard_size`.
    public static let defaultMaxShardSize = 5_000_000_000

    /// Writes `text` to `path` through a temporary file, a sync and a rename.
    public static func writeText(_ text: String, to path: String) throws {
        do { try AtomicFile.write(path: path, bytes: Array(text.utf8)) } catch { throw writeFailure(path, error) }
    }

    /// Copies the tokenizer files of `modelFolder` that exist into `destination`.
    public static func copyTokenizerFiles(from modelFolder: String, to destination: String) throws {
        for name in tokenizerFileNames {
            let src = (modelFolder as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: src) else { continue }
            try copyFile(src, to: (destination as NSString).appendingPathComponent(name))
        }
    }

    /// Copies `src` over `dst` atomically (the files are small: configs, tokenizers).
    static func copyFile(_ src: String, to dst: String) throws {
        guard let data = FileManager.default.contents(atPath: src) else {
            throw TrainingError.writeFailed(path: dst, message: "cannot read \(src)")
        }
        do { try AtomicFile.write(path: dst, bytes: [UInt8](data)) } catch { throw writeFailure(dst, error) }
    }

    /// Appends `bytes` to `path` (created if missing); the error says why, as the OS puts it.
    static func append(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError.writeFailed(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        if let reason = writeAll(bytes, fd: fd) { throw TrainingError.writeFailed(path: path, message: reason) }
    }

    /// write(2) until every byte is out; nil, or the OS's reason ("No space left on device").
    static func writeAll(_ bytes: [UInt8], fd: Int32) -> String? {
        bytes.withUnsafeBytes { buf -> String? in
            var done = 0
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                done += n
            }
            return nil
        }
    }

    /// A write error as TrainingError.writeFailed naming the file and the OS's reason
    /// ("No space left on device (reserve 4096 bytes for the output file)").
    static func writeFailure(_ path: String, _ error: Error) -> TrainingError {
        switch error {
        case let e as TrainingError: return e
        case let SafeTensorsError.io(target, operation, reason): return .writeFailed(path: target, message: "\(reason) (\(operation))")
        default: return .writeFailed(path: path, message: "\(error)")
        }
    }

    // MARK: - PEFT adapters

    /// PEFT's `adapter_config.json` for a LoRA adapter of `spec` (the fields peft 0.x reads;
    /// sorted keys, two-space indent, as `save_pretrained` writes it).
    public static func peftAdapterConfig(spec: LoRASpec, dropout: Double, baseModel: String) -> JSONValue {
        let pairs: [(String, JSONValue)] = [
            ("alpha_pattern", .object([])),
            ("auto_mapping", .null),
            ("base_model_name_or_path", .string(baseModel)),
            ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)),
            ("layers_pattern", .null),
            ("layers_to_transform", .null),
            ("lora_alpha", spec.alpha.rounded() == spec.alpha ? .int(Int(spec.alpha)) : .double(spec.alpha)),
            ("lora_dropout", .double(dropout)),
            ("modules_to_save", .null),
            ("peft_type", .string("LORA")),
            ("r", .int(spec.rank)),
            ("rank_pattern", .object([])),
            ("revision", .null),
            ("target_modules", .array(spec.targets.map { .string($0.rawValue) })),
            ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)),
            ("use_rslora", .bool(spec.useRSLoRA)),
        ]
        return .object(pairs)
    }

    /// Writes `state`'s LoRA A/B (laid out by `TrainableParameters.loraLayout`) as a PEFT adapter
    /// folder: adapter_config.json and adapter_model.safetensors (f32, PEFT's key names).
    public static func writePEFTAdapter(state: TrainableState, config c: Qwen2Config, spec: LoRASpec,
                                        dropout: Double, baseModel: String, to folder: String) throws {
        try makeFolder(folder)
        var tensors: [TensorToWrite] = []
        for e in try TrainableParameters.loraLayout(config: c, spec: spec).entries {
            let entry = try state.layout.require(e.name)
            tensors.append(TensorToWrite(name: e.name, shape: entry.shape, pointer: UnsafePointer(state.param(entry))))
        }
        let path = (folder as NSString).appendingPathComponent("adapter_model.safetensors")
        do { try SafeTensorsWriter.write(tensors, to: path) } catch { throw writeFailure(path, error) }
        try writeText(peftAdapterConfig(spec: spec, dropout: dropout, baseModel: baseModel).prettyText + "\n",
                      to: (folder as NSString).appendingPathComponent("adapter_config.json"))
    }

    // MARK: - Hugging Face model folders

    /// `config.json` of `modelFolder` with torch_dtype (and the newer "dtype") set to `dtype`.
    public static func configJSON(of modelFolder: String, dtype: DType) throws -> String {
        let path = (modelFolder as NSString).appendingPathComponent("config.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrainingError.mergeFailed(path: path, message: "cannot read config.json")
        }
        guard case var .object(pairs) = try JSONValue.parse(text) else {
            throw TrainingError.mergeFailed(path: path, message: "config.json is not a JSON object")
        }
        var set = false
        for i in pairs.indices where pairs[i].0 == "torch_dtype" || pairs[i].0 == "dtype" {
            pairs[i].1 = .string(dtype.torchName)
            set = true
        }
        if !set { pairs.append(("torch_dtype", .string(dtype.torchName))) }
        return JSONValue.object(pairs).prettyText + "\n"
    }

    /// A complete HF folder: `tensors` as safetensors shards (+ index), config.json from the base
    /// with `dtype`, generation_config.json and tokenizer files copied from `baseFolder`.
    public static func writeModelFolder(tensors: [TensorToWrite], baseFolder: String, dtype: DType,
                                        maxShardSize: Int, to folder: String) throws {
        try makeFolder(folder)
        do {
            try SafeTensorsWriter.writeSharded(tensors, toFolder: folder, maxShardSize: maxShardSize)
        } catch { throw writeFailure(folder, error) }
        try writeText(try configJSON(of: baseFolder, dtype: dtype), to: (folder as NSString).appendingPathComponent("config.json"))
        let gen = (baseFolder as NSString).appendingPathComponent("generation_config.json")
        if FileManager.default.fileExists(atPath: gen) {
            try copyFile(gen, to: (folder as NSString).appendingPathComponent("generation_config.json"))
        }
        try copyTokenizerFiles(from: baseFolder, to: folder)
    }

    /// Full fine-tuning's weights (f32 master copies) as an HF folder.
    public static func writeFullModel(state: TrainableState, baseFolder: String, to folder: String,
                                      maxShardSize: Int = defaultMaxShardSize) throws {
        let tensors = state.layout.entries.map {
            TensorToWrite(name: $0.name, shape: $0.shape, pointer: UnsafePointer(state.param($0)))
        }
        try writeModelFolder(tensors: tensors, baseFolder: baseFolder, dtype: .f32, maxShardSize: maxShardSize, to: folder)
    }

    static func makeFolder(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw TrainingError.writeFailed(path: path, message: "\(error.localizedDescription)")
        }
    }
}
