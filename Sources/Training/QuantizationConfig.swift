import Qwen2

/// What a training config says about the base's 4-bit quantisation (QLoRA), read from the
/// BitsAndBytesConfig keys: nil when the base stays in its stored dtype.
extension TrainingConfig {
    public func quantization() throws -> NF4Options? {
        func value(_ k: String) -> JSONValue? { values.first { $0.0 == k }?.1 }
        func fail(_ key: String, _ message: String) -> TrainingError {
            TrainingError.badConfigValue(key: key, source: "config", message: message)
        }
        var load4 = false
        if case .bool(true)? = value("load_in_4bit") { load4 = true }
        guard trainMode == .qlora || load4 else { return nil }
        if trainMode == .full {
            throw fail("load_in_4bit", "a 4-bit base cannot be fully fine-tuned; use train_mode \"qlora\" (LoRA over the NF4 base)")
        }
        if case .string("fp4")? = value("bnb_4bit_quant_type") {
            throw fail("bnb_4bit_quant_type", "\"fp4\" is not supported; use \"nf4\" (the QLoRA data type, and Firefly's)")
        }
        var options = NF4Options()
        if case let .number(x, _)? = value("bnb_4bit_blocksize") {
            let b = Int(x)
            guard Double(b) == x, NF4.blocksizes.contains(b) else {
                throw fail("bnb_4bit_blocksize", "must be one of \(NF4.blocksizes.map(String.init).joined(separator: ", ")), got \(x)")
            }
            options.blocksize = b
        }
        if case let .bool(b)? = value("bnb_4bit_use_double_quant") { options.doubleQuant = b }
        if case let .array(items)? = value("llm_int8_skip_modules") {
            options.skipModules = items.compactMap { if case let .string(s) = $0 { return s }; return nil }
        }
        return options
    }

    /// bnb_4bit_compute_dtype when set to something other than float32: on the CPU the products
    /// run in fp32 whatever it says, which the trainer says once.
    public var quantizationComputeDType: String? {
        guard case let .string(s)? = values.first(where: { $0.0 == "bnb_4bit_compute_dtype" })?.1,
              !["float32", "fp32"].contains(s) else { return nil }
        return s
    }
}
