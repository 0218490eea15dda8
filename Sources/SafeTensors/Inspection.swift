import QwenCore

/// What `qwenft inspect` reports about a safetensors file or a model folder.
public struct ModelInspection: Sendable {
    public struct Tensor: Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let parameters: Int
        public let bytes: Int
        /// The file holding it, relative to the inspected folder (or the file's own name).
        public let file: String
    }

    /// The path as given.
    public let path: String
    /// The safetensors files read (names within the folder).
    public let files: [String]
    /// The shard index, when there is one (name within the folder).
    public let index: String?
    /// config.json's `architectures` (a model folder with a config only).
    public let architectures: [String]?
    /// config.json's `model_type`.
    public let modelType: String?
    /// adapter_config.json's main settings (an adapter folder), as found in the file.
    let adapterSettings: [(String, JSONValue)]?

    /// adapter_config.json's main settings (an adapter folder): peft_type, r, lora_alpha,
    /// use_rslora, base_model_name_or_path, target_modules — as text, in that order, those present.
    public var adapter: [(key: String, value: String)]? {
        adapterSettings?.map { key, v in
            switch v {
            case let .string(s): return (key, s)
            case let .array(items): return (key, items.map { $0.stringValue ?? compactJSON($0) }.joined(separator: "+"))
            default: return (key, compactJSON(v))
            }
        }
    }
    /// The `__metadata__` of the first file.
    public let metadata: [String: String]?
    /// Tensors in natural name order (layers.2 before layers.10).
    public let tensors: [Tensor]

    public var totalParameters: Int { tensors.reduce(0) { $0 + $1.parameters } }
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.bytes } }

    /// Parameter counts per dtype, largest first.
    public var parametersByDType: [(DType, Int)] {
        var counts: [DType: Int] = [:]
        for t in tensors { counts[t.dtype, default: 0] += t.parameters }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
    }

    /// A table for people.
    public func text() -> String {
        var lines: [String] = []
        var source = "\(path): \(files.count) safetensors file\(files.count == 1 ? "" : "s")"
        if let index { source += " (index \(index))" }
        lines.append(source)
        if let architectures {
            var arch = "architecture: \(architectures.isEmpty ? "(none listed)" : architectures.joined(separator: ", "))"
            if let modelType { arch += " (model_type \(modelType))" }
            lines.append(arch)
        }
        if let adapter {
            lines.append("adapter: " + adapter.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        let nameWidth = min(72, tensors.map(\.name.count).max() ?? 4)
        lines.append(pad("name", nameWidth) + "  " + pad("dtype", 5) + "  shape")
        for t in tensors {
            lines.append(pad(t.name, nameWidth) + "  " + pad(t.dtype.rawValue, 5) + "  " + shapeText(t.shape))
        }
        lines.append("tensors: \(tensors.count)  parameters: \(grouped(totalParameters)) (\(humanCount(totalParameters)))  bytes: \(grouped(totalBytes)) (\(humanBytes(totalBytes)))")
        if !tensors.isEmpty {
            lines.append("dtypes: " + parametersByDType.map { "\($0.0.rawValue) \(grouped($0.1))" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object for scripts.
    public func json() -> String {
        var pairs: [(String, JSONValue)] = [
            ("path", .string(path)),
            ("files", .array(files.map { .string($0) })),
            ("index", index.map { .string($0) } ?? .null),
            ("architectures", architectures.map { .array($0.map { .string($0) }) } ?? .null),
            ("model_type", modelType.map { .string($0) } ?? .null),
            ("adapter", adapterSettings.map { .object($0) } ?? .null),
        ]
        if let metadata {
            pairs.append(("metadata", .object(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) })))
        } else {
            pairs.append(("metadata", .null))
        }
        pairs.append(("tensors", .array(tensors.map { t in
            .object([("name", .string(t.name)), ("dtype", .string(t.dtype.rawValue)),
                     ("shape", .array(t.shape.map { .integer($0) })), ("parameters", .integer(t.parameters)),
                     ("bytes", .integer(t.bytes)), ("file", .string(t.file))])
        })))
        pairs.append(("total_parameters", .integer(totalParameters)))
        pairs.append(("total_bytes", .integer(totalBytes)))
        pairs.append(("parameters_by_dtype", .object(parametersByDType.map { ($0.0.rawValue, .integer($0.1)) })))
        return compactJSON(.object(pairs)) + "\n"
    }
}

/// Reads the tensors of a safetensors file, a shard index or a model folder (and, for a folder,
/// the architecture from config.json) without reading any tensor data.
public func inspectModel(path: String) throws(SafeTensorsError) -> ModelInspection {
    let store = try SafeTensorsStore(path: path)
    var isDir = false
    _ = fileExists(path, isDirectory: &isDir)
    let folder = isDir ? path : parentFolder(of: path)
    func relative(_ p: String) -> String {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return p.hasPrefix(prefix) ? String(p.dropFirst(prefix.count)) : p
    }
    var architectures: [String]? = nil
    var modelType: String? = nil
    let configPath = join(folder, "config.json")
    var configIsDir = false
    if isDir, fileExists(configPath, isDirectory: &configIsDir), !configIsDir {
        let config = try readConfig(configPath)
        architectures = config.architectures
        modelType = config.modelType
    }
    var adapter: [(String, JSONValue)]? = nil
    let adapterConfigPath = join(folder, "adapter_config.json")
    if isDir, fileExists(adapterConfigPath, isDirectory: &configIsDir), !configIsDir {
        adapter = try readAdapterConfig(adapterConfigPath)
    }
    let tensors = store.tensors.map { t in
        ModelInspection.Tensor(name: t.name, dtype: t.dtype, shape: t.shape, parameters: t.elementCount,
                               bytes: t.byteCount, file: relative(t.file))
    }.sorted { naturalLess($0.name, $1.name) }
    return ModelInspection(path: path, files: store.files.map { relative($0.path) },
                           index: store.indexPath.map(relative), architectures: architectures,
                           modelType: modelType, adapterSettings: adapter, metadata: store.files.first?.metadata, tensors: tensors)
}

/// A small JSON file (config.json, adapter_config.json) that must hold an object.
func readJSONObject(_ path: String) throws(SafeTensorsError) -> JSONValue {
    let mapping = try MappedFile(path: path)
    let json: JSONValue
    do {
        json = try parseJSON(mapping.bytes)
    } catch {
        throw .badConfig(file: path, reason: "not valid JSON: \(error)")
    }
    guard json.objectValue != nil else { throw .badConfig(file: path, reason: "expected a JSON object, found \(json.kindName)") }
    return json
}

/// `architectures` and `model_type` from a config.json; other keys are not looked at.
func readConfig(_ path: String) throws(SafeTensorsError) -> (architectures: [String], modelType: String?) {
    let json = try readJSONObject(path)
    var architectures: [String] = []
    if let value = json["architectures"], value != .null {
        guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
            throw .badConfig(file: path, reason: "\"architectures\" must be a list of strings")
        }
        architectures = items.map { $0.stringValue! }
    }
    return (architectures, json["model_type"]?.stringValue)
}

/// The settings of a PEFT adapter_config.json worth a glance, as they are in the file.
func readAdapterConfig(_ path: String) throws(SafeTensorsError) -> [(String, JSONValue)] {
    let json = try readJSONObject(path)
    return ["peft_type", "r", "lora_alpha", "use_rslora", "base_model_name_or_path", "target_modules"].compactMap { key in
        guard let v = json[key], v != .null else { return nil }
        return (key, v)
    }
}

/// Name order with digit runs compared as numbers: "layers.2" < "layers.10".
func naturalLess(_ a: String, _ b: String) -> Bool {
    var i = Array(a.utf8)[...], j = Array(b.utf8)[...]
    func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
    while let x = i.first, let y = j.first {
        if isDigit(x) && isDigit(y) {
            let da = i.prefix(while: isDigit), db = j.prefix(while: isDigit)
            let na = da.drop(while: { $0 == 48 }), nb = db.drop(while: { $0 == 48 })
            if na.count != nb.count { return na.count < nb.count }
            if !na.elementsEqual(nb) { return na.lexicographicallyPrecedes(nb) }
            i = i.dropFirst(da.count)
            j = j.dropFirst(db.count)
        } else {
            if x != y { return x < y }
            i = i.dropFirst()
            j = j.dropFirst()
        }
    }
    return i.isEmpty && !j.isEmpty
}

private func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

private func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// 1234567 → "1,234,567"
func grouped(_ n: Int) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (k, c) in s.enumerated() {
        if k > 0 && (s.count - k) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// 494032768 → "494.03M"
func humanCount(_ n: Int) -> String {
    let units: [(Double, String)] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
    for (scale, unit) in units where Double(n) >= scale { return fixed2(Double(n) / scale) + unit }
    return String(n)
}

/// 988065536 → "942.29 MiB"
func humanBytes(_ n: Int) -> String {
    let units: [(Double, String)] = [(0x1p40, "TiB"), (0x1p30, "GiB"), (0x1p20, "MiB"), (0x1p10, "KiB")]
    for (scale, unit) in units where Double(n) >= scale { return fixed2(Double(n) / scale) + " " + unit }
    return "\(n) B"
}

private func fixed2(_ x: Double) -> String {
    let cents = Int((x * 100).rounded())
    let frac = cents % 100
    return "\(cents / 100)." + (frac < 10 ? "0" : "") + "\(frac)"
}
