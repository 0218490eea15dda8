import Foundation
import QwenCore
import Qwen2
import SafeTensors

/// What `qwenft quantize` wrote.
public struct QuantizeReport: Sendable {
    public var quantized: Int
    public var kept: Int
    public var files: [String]
    public var packedBytes: Int
}

/// `qwenft quantize`: a 16/32-bit model folder written as a bitsandbytes 4-bit folder (what
/// transformers saves for a model loaded with `load_in_4bit=True`): the seven projections of
/// every layer in NF4 with their quant state, everything else as stored, config.json with
/// `quantization_config`, generation config and tokenizer files copied.
public enum QuantizeModel {
    public static func run(model: String, out: String, options: NF4Options,
                           maxShardSize: Int = ModelFiles.defaultMaxShardSize,
                           progress: ((Int, Int) -> Void)? = nil) throws -> QuantizeReport {
        let modelURL = URL(fileURLWithPath: model).standardizedFileURL, outURL = URL(fileURLWithPath: out).standardizedFileURL
        guard modelURL.path != outURL.path else {
            throw TrainerError.writeFailed(path: out, message: "--out must differ from --model")
        }
        let config = try Qwen2Config.load(modelURL.appendingPathComponent("config.json"))
        let source = try SafeTensorsSource(path: model)
        guard NF4Checkpoint.quantizedWeights(source).isEmpty else {
            throw TrainerError.writeFailed(path: model, message: "the model is already a bitsandbytes 4-bit folder")
        }
        let weights = try NF4Weights(config: config, source: source, quantizing: options, progress: progress)
        var quantized: [String: NF4Tensor] = [:]
        for (l, layer) in weights.tensors.enumerated() {
            for (p, t) in layer { quantized["model.layers.\(l).\(p.modulePath).weight"] = t }
        }
        var tensors: [TensorToWrite] = []
        var packed = 0
        var originalDType = "float32"
        for view in source.store.tensors {
            if let t = quantized[view.name] {
                originalDType = view.dtype.torchName
                tensors += NF4Checkpoint.tensors(t, weight: view.name, dtype: view.dtype.torchName)
                packed += t.packedCount
            } else {
                tensors.append(TensorToWrite(copying: view))
            }
        }
        let result: ShardedWriteResult
        do {
            try ModelFiles.makeFolder(out)
            result = try SafeTensorsWriter.writeSharded(tensors, toFolder: out, maxShardSize: maxShardSize)
        } catch let e as TrainerError { throw e } catch {
            throw TrainerError.writeFailed(path: out, message: "\(error)")
        }
        // config.json: the base's, plus quantization_config as BitsAndBytesConfig.to_dict() writes it.
        let cfgPath = modelURL.appendingPathComponent("config.json").path
        guard let text = try? String(contentsOfFile: cfgPath, encoding: .utf8), case var .object(pairs) = try JSONValue.parse(text) else {
            throw TrainerError.writeFailed(path: cfgPath, message: "cannot read config.json as a JSON object")
        }
        pairs.removeAll { $0.0 == "quantization_config" }
        pairs.append(("quantization_config", quantizationConfig(options, computeDType: originalDType)))
        try ModelFiles.writeText(JSONValue.object(pairs).prettyText + "\n", to: outURL.appendingPathComponent("config.json").path)
        let gen = modelURL.appendingPathComponent("generation_config.json").path
        if FileManager.default.fileExists(atPath: gen) {
            let dst = outURL.appendingPathComponent("generation_config.json").path
            try? FileManager.default.removeItem(atPath: dst)
            try? FileManager.default.copyItem(atPath: gen, toPath: dst)
        }
        try ModelFiles.copyTokenizerFiles(from: model, to: out)
        return QuantizeReport(quantized: quantized.count, kept: source.store.tensors.count - quantized.count,
                              files: result.files + (result.indexPath.map { [$0] } ?? []), packedBytes: packed)
    }

    /// config.json's `quantization_config`, as transformers' BitsAndBytesConfig.to_dict() writes it.
    static func quantizationConfig(_ o: NF4Options, computeDType: String) -> JSONValue {
        .object([
            ("_load_in_4bit", .bool(true)), ("_load_in_8bit", .bool(false)),
            ("bnb_4bit_compute_dtype", .string(computeDType)), ("bnb_4bit_quant_storage", .string("uint8")),
            ("bnb_4bit_quant_type", .string("nf4")), ("bnb_4bit_use_double_quant", .bool(o.doubleQuant)),
            ("llm_int8_enable_fp32_cpu_offload", .bool(false)), ("llm_int8_has_fp16_weight", .bool(false)),
            ("llm_int8_skip_modules", o.skipModules.isEmpty ? .null : .array(o.skipModules.map { .string($0) })),
            ("llm_int8_threshold", .double(6.0)), ("load_in_4bit", .bool(true)), ("load_in_8bit", .bool(false)),
            ("quant_method", .string("bitsandbytes")),
        ])
    }
}
