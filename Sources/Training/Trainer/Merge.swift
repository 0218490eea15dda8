import Foundation
import QwenCore
import Qwen2
import SafeTensors

/// What `qwenft merge` wrote.
public struct MergeReport: Sendable {
    public var mergedPairs: Int
    public var tensors: Int
    public var files: [String]
    public var dtype: DType
    /// What the adapter was merged onto, for the user: "the original base", "the dequantised NF4 base (…)".
    public var onto: String = "the base as stored"
}

/// `qwenft merge`: folds a PEFT LoRA adapter into its base, W += s · B·A in f32 (as peft's
/// `merge_and_unload`: delta = (B @ A) · scaling, then added to the weight), and writes a
/// complete Hugging Face folder: safetensors shards + index, config.json (torch_dtype set),
/// generation_config.json, tokenizer files. Tensors are converted one at a time, straight into
/// the output file, so memory stays near one tensor besides the mapped base.
public enum AdapterMerge {
    ///
    /// A QLoRA adapter (qlora_base.json beside it) merges by default onto the dequantised NF4
    /// base it was trained against (the base re-quantised as recorded); `ontoOriginal` merges it
    /// into the 16-bit base instead. A bitsandbytes 4-bit base is always dequantised (fp32 values,
    /// written in `dtype`), and the output has no quantization_config.
    /// `backend` forms each B·A and converts the merged weights.
    public static func merge(base: String, adapter: String, out: String, dtype: DType? = nil,
                             maxShardSize: Int = ModelFiles.defaultMaxShardSize, ontoOriginal: Bool = false,
                             backend: any ModelBackend = CPUBackend()) throws -> MergeReport {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: base, isDirectory: &isDir), isDir.boolValue else {
            throw TrainingError.mergeFailed(path: base, message: "--base must be a model folder (config.json, safetensors weights)")
        }
        if let d = dtype, !d.isFloatStorage {
            throw TrainingError.mergeFailed(path: out, message: "--dtype \(d.torchName) is not a weight dtype; use float32, bfloat16 or float16")
        }
        let baseURL = URL(fileURLWithPath: base).standardizedFileURL, outURL = URL(fileURLWithPath: out).standardizedFileURL
        guard baseURL.path != outURL.path else {
            throw TrainingError.mergeFailed(path: out, message: "--out must differ from --base (the base is read while the output is written)")
        }
        let config = try Qwen2Config.load(baseURL.appendingPathComponent("config.json"))
        let lora = try ModelFolder.loadAdapter(adapter, config: config)
        let store: SafeTensorsStore
        do { store = try SafeTensorsStore(path: base) } catch {
            throw TrainingError.mergeFailed(path: base, message: "\(error)")
        }
        // The output dtype: --dtype, else the base's (its first float tensor's).
        let storedDType = store.tensors.first(where: { $0.dtype.isFloatStorage })?.dtype ?? .f32
        let target = dtype ?? storedDType

        // The NF4 base, when the merge goes onto one.
        var nf4: [String: NF4Tensor] = [:]
        var nf4Names = Set<String>()
        var onto = "the base as stored"
        let source = try SafeTensorsSource(path: base)
        let fourBitFolder = !NF4Checkpoint.quantizedWeights(source).isEmpty
        let recorded = try QLoRABase.read(adapter: adapter)
        var weights: NF4Weights?
        if fourBitFolder {
            if ontoOriginal {
                throw TrainerError.mergeFailed(path: base, message: "--onto-original: the base is a bitsandbytes 4-bit folder, there is no 16-bit original in it; give the 16-bit base")
            }
            weights = try NF4Weights(config: config, source: source)
            onto = "the dequantised NF4 base (bitsandbytes 4-bit folder)"
            nf4Names = NF4Checkpoint.quantizedWeights(source)
        } else if let o = recorded {
            if ontoOriginal {
                onto = "the original base (--onto-original; the adapter was trained on its NF4 quantisation)"
            } else {
                weights = try NF4Weights(config: config, source: source, quantizing: o)
                onto = "the dequantised NF4 base the adapter was trained against (blocksize \(o.blocksize)\(o.doubleQuant ? ", double quantisation" : ""); --onto-original for the 16-bit base)"
            }
        }
        if let w = weights {
            for (l, layer) in w.tensors.enumerated() {
                for (p, t) in layer { nf4[TrainableParameters.layerName(l, p.modulePath + ".weight")] = t }
            }
        }

        var pending = Set<String>()
        for (l, layer) in lora.layers.enumerated() {
            for p in layer.keys { pending.insert(TrainableParameters.layerName(l, p.modulePath + ".weight")) }
        }
        var tensors: [TensorToWrite] = []
        var merged = 0
        for view in store.tensors {
            if let t = nf4[view.name] {
                // A quantised projection: dequantised to fp32, the LoRA product added, converted.
                let lw = projection(of: view.name).flatMap { (l, p) in l < lora.layers.count ? lora.layers[l][p] : nil }
                if let w = lw {
                    guard w.outFeatures == t.rows, w.inFeatures == t.cols else {
                        throw TrainerError.mergeFailed(path: adapter, message: "\(view.name) is [\(t.rows), \(t.cols)] in the base, the adapter's B·A is [\(w.outFeatures), \(w.inFeatures)]")
                    }
                    pending.remove(view.name)
                    merged += 1
                }
                tensors.append(TensorToWrite(name: view.name, dtype: target, shape: [t.rows, t.cols]) { out in
                    let weight = backend.upload(t.dequantized())
                    if let w = lw { backend.loraMerge(weight: weight.pointer, lora: w) }
                    convert(weight, to: target, into: out, backend: backend)
                })
                continue
            }
            if fourBitFolder, NF4Checkpoint.isQuantState(view.name, of: nf4Names) { continue }
            let outType = view.dtype.isFloatStorage ? target : view.dtype
            guard let (l, p) = projection(of: view.name), l < lora.layers.count, let w = lora.layers[l][p] else {
                tensors.append(view.dtype.isFloatStorage ? TensorToWrite(converting: view, to: outType) : TensorToWrite(copying: view))
                continue
            }
            guard view.shape == [w.outFeatures, w.inFeatures] else {
                throw TrainingError.mergeFailed(path: adapter, message: "\(view.name) is \(view.shape) in the base, the adapter's B·A is [\(w.outFeatures), \(w.inFeatures)]")
            }
            pending.remove(view.name)
            merged += 1
            let name = view.name
            tensors.append(TensorToWrite(name: name, dtype: outType, shape: view.shape) { out in
                let count = view.shape.reduce(1, *)
                guard out.count == count * outType.elementSize else {
                    throw TrainingError.mergeFailed(path: name, message: "output buffer of \(out.count) bytes for \(count) values")
                }
                // The base weight widened straight into the backend's memory (on the CPU: in place).
                let weight = backend.allocate(Float.self, count: count, zeroed: false)
                try backend.withHostAccess(weight.pointer, count: count) { try view.copyFloats(into: $0.baseAddress!) }
                backend.loraMerge(weight: weight.pointer, lora: w)
                convert(weight, to: outType, into: out, backend: backend)
            })
        }
        if let missing = pending.sorted().first {
            throw TrainingError.mergeFailed(path: adapter, message: "the adapter has weights for \(missing), which the base does not have")
        }
        let result: ShardedWriteResult
        do {
            try ModelFiles.makeFolder(out)
            result = try SafeTensorsWriter.writeSharded(tensors, toFolder: out, maxShardSize: maxShardSize)
        } catch { throw ModelFiles.writeFailure(out, error) }
        var configText = try ModelFiles.configJSON(of: base, dtype: target)
        if fourBitFolder, case let .object(pairs) = try JSONValue.parse(configText) {
            configText = JSONValue.object(pairs.filter { $0.0 != "quantization_config" }).prettyText + "\n"
        }
        try ModelFiles.writeText(configText, to: outURL.appendingPathComponent("config.json").path)
        let gen = baseURL.appendingPathComponent("generation_config.json").path
        if fm.fileExists(atPath: gen) {
            try ModelFiles.copyFile(gen, to: outURL.appendingPathComponent("generation_config.json").path)
        }
        try ModelFiles.copyTokenizerFiles(from: base, to: out)
        return MergeReport(mergedPairs: merged, tensors: tensors.count, files: result.files + (result.indexPath.map { [$0] } ?? []),
                           dtype: target, onto: onto)
    }

    /// "model.layers.3.mlp.down_proj.weight" → (3, .down).
    static func projection(of name: String) -> (Int, Projection)? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix), name.hasSuffix(".weight") else { return nil }
        let rest = name.dropFirst(prefix.count).dropLast(".weight".count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let module = String(rest[rest.index(after: dot)...])
        guard let p = Projection.allCases.first(where: { $0.modulePath == module }) else { return nil }
        return (layer, p)
    }

    /// The merged f32 weight (the backend's memory) converted to `dtype` by the backend, its bytes
    /// copied out into the file's buffer `out`.
    static func convert(_ weight: DeviceBuffer<Float>, to dtype: DType, into out: UnsafeMutableRawBufferPointer,
                        backend: any ModelBackend) {
        guard let dst = out.bindMemory(to: UInt8.self).baseAddress else { return }
        let bytes = backend.allocate(UInt8.self, count: out.count, zeroed: false)
        backend.convertFromFloat(bytes.pointer, dtype: dtype, from: weight.readOnly, count: weight.count)
        backend.copyToHost(dst, from: bytes.readOnly, count: out.count)
    }

}
