import Foundation
import QwenCore

/// One LoRA pair on a Linear layer, as PEFT: y = x·Wᵀ + b + (x·Aᵀ)·Bᵀ · scale,
/// A (r, in), B (out, r), scale = alpha / r (rsLoRA: alpha / √r). fp32, unmerged.
public final class LoRAWeights: @unchecked Sendable {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    public let scale: Float
    public let a: AlignedBuffer<Float>
    public let b: AlignedBuffer<Float>

    public init(rank: Int, inFeatures: Int, outFeatures: Int, scale: Float) {
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scale = scale
        a = AlignedBuffer(count: rank * inFeatures)
        b = AlignedBuffer(count: outFeatures * rank)
    }
}

/// A set of LoRA pairs over a model's layers: `layers[i][projection]`.
public final class LoRAAdapter: @unchecked Sendable {
    public let rank: Int
    public let alpha: Double
    public let useRSLoRA: Bool
    public var layers: [[Projection: LoRAWeights]]

    /// PEFT's scaling: alpha / r, or alpha / √r with rsLoRA.
    public static func scale(alpha: Double, rank: Int, rsLoRA: Bool) -> Float {
        Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    public init(rank: Int, alpha: Double, useRSLoRA: Bool, layerCount: Int) {
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        layers = Array(repeating: [:], count: layerCount)
    }

    public var scale: Float { Self.scale(alpha: alpha, rank: rank, rsLoRA: useRSLoRA) }
}

/// The parts of PEFT's `adapter_config.json` that decide the math.
public struct PEFTAdapterConfig: Decodable {
    public var peftType: String?
    public var r: Int
    public var loraAlpha: Double
    public var useRSLoRA: Bool
    public var targetModules: [String]
    public var bias: String?
    public var useDora: Bool
    public var fanInFanOut: Bool
    public var rankPattern: [String: Int]
    public var alphaPattern: [String: Double]
    public var modulesToSave: [String]?

    enum CodingKeys: String, CodingKey {
        case peftType = "peft_type", r, loraAlpha = "lora_alpha", useRSLoRA = "use_rslora"
        case targetModules = "target_modules", bias, useDora = "use_dora", fanInFanOut = "fan_in_fan_out"
        case rankPattern = "rank_pattern", alphaPattern = "alpha_pattern", modulesToSave = "modules_to_save"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType)
        r = try c.decode(Int.self, forKey: .r)
        loraAlpha = try c.decodeIfPresent(Double.self, forKey: .loraAlpha) ?? 8
        useRSLoRA = try c.decodeIfPresent(Bool.self, forKey: .useRSLoRA) ?? false
        if let list = try? c.decodeIfPresent([String].self, forKey: .targetModules) {
            targetModules = list
        } else {
            targetModules = (try c.decodeIfPresent(String.self, forKey: .targetModules)).map { [$0] } ?? []
        }
        bias = try c.decodeIfPresent(String.self, forKey: .bias)
        useDora = try c.decodeIfPresent(Bool.self, forKey: .useDora) ?? false
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        rankPattern = (try? c.decodeIfPresent([String: Int].self, forKey: .rankPattern)) ?? [:]
        alphaPattern = (try? c.decodeIfPresent([String: Double].self, forKey: .alphaPattern)) ?? [:]
        modulesToSave = try? c.decodeIfPresent([String].self, forKey: .modulesToSave)
    }
}

extension LoRAAdapter {
    /// Reads a PEFT LoRA adapter (`adapter_config.json` + its tensors) for a model of `config`.
    /// Keys look like `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`
    /// (an adapter name such as `.default` before `.weight` is accepted). Every problem — a
    /// feature qwenft does not apply, a tensor of the wrong shape, a key it cannot place — is
    /// reported with the adapter's path.
    public static func load(configURL: URL, tensors: TensorSource, model config: Qwen2Config) throws -> LoRAAdapter {
        let path = configURL.deletingLastPathComponent().path
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw Qwen2Error.missingFile(path: configURL.path, hint: "A PEFT adapter folder needs adapter_config.json.")
        }
        let ac = try decodeJSONFile(PEFTAdapterConfig.self, data, path: configURL.path)
        func refuse(_ why: String) -> Qwen2Error { .badAdapter(path: path, detail: why) }
        if let t = ac.peftType, t != "LORA" { throw refuse("peft_type \(t) is not supported (only LORA)") }
        if ac.useDora { throw refuse("DoRA adapters (use_dora) are not supported") }
        if ac.fanInFanOut { throw refuse("fan_in_fan_out adapters are not supported") }
        if let b = ac.bias, b != "none" { throw refuse("bias \"\(b)\" is not supported (only \"none\")") }
        if !ac.rankPattern.isEmpty || !ac.alphaPattern.isEmpty { throw refuse("rank_pattern / alpha_pattern are not supported") }
        if let m = ac.modulesToSave, !m.isEmpty { throw refuse("modules_to_save \(m) is not supported") }
        if ac.r <= 0 { throw refuse("r must be positive, got \(ac.r)") }

        let adapter = LoRAAdapter(rank: ac.r, alpha: ac.loraAlpha, useRSLoRA: ac.useRSLoRA, layerCount: config.numHiddenLayers)
        var problems: [String] = []
        var pairs: [String: (a: StoredTensor?, b: StoredTensor?)] = [:]
        for name in tensors.tensorNames {
            // …layers.{i}.{module path}.lora_{A|B}[.adapter].weight
            let parts = name.split(separator: ".").map(String.init)
            guard let li = parts.firstIndex(of: "layers"), li + 1 < parts.count, Int(parts[li + 1]) != nil,
                  let ab = parts.firstIndex(where: { $0 == "lora_A" || $0 == "lora_B" }), ab > li + 2,
                  parts.last == "weight", let t = tensors.tensor(named: name) else {
                problems.append("cannot place tensor \(name)")
                continue
            }
            let key = parts[li + 1] + "." + parts[(li + 2)..<ab].joined(separator: ".")
            if parts[ab] == "lora_A" { pairs[key, default: (nil, nil)].a = t } else { pairs[key, default: (nil, nil)].b = t }
        }
        let scale = adapter.scale
        for (key, pair) in pairs.sorted(by: { $0.key < $1.key }) {
            let dot = key.firstIndex(of: ".")!
            let layer = Int(key[..<dot])!
            let module = String(key[key.index(after: dot)...])
            guard layer < config.numHiddenLayers else { problems.append("layer \(layer) of \(key): the model has \(config.numHiddenLayers) layers"); continue }
            guard let p = Projection.allCases.first(where: { $0.modulePath == module }) else {
                problems.append("\(key): module \(module) is not a Qwen2 linear layer"); continue
            }
            guard let a = pair.a, let b = pair.b else { problems.append("\(key): lora_A or lora_B missing"); continue }
            let (out, inp) = p.shape(config)
            guard a.dtype.isFloatStorage, b.dtype.isFloatStorage else { problems.append("\(key): dtype \(a.dtype)/\(b.dtype)"); continue }
            guard a.shape == [ac.r, inp], b.shape == [out, ac.r] else {
                problems.append("layers.\(key): lora_A \(a.shape), lora_B \(b.shape); expected [\(ac.r), \(inp)] and [\(out), \(ac.r)] (is this adapter for a different model?)")
                continue
            }
            let w = LoRAWeights(rank: ac.r, inFeatures: inp, outFeatures: out, scale: scale)
            widen(a, into: w.a.pointer)
            widen(b, into: w.b.pointer)
            adapter.layers[layer][p] = w
        }
        if pairs.isEmpty { problems.append("no lora_A / lora_B tensors") }
        if !problems.isEmpty {
            throw refuse("the adapter does not fit the model:\n  " + problems.prefix(20).joined(separator: "\n  "))
        }
        return adapter
    }
}
