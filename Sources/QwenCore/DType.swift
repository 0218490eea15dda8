/// Element types of stored tensors, named as safetensors names them ("F32", "BF16", …).
/// The compute path is fp32; the others are storage formats that convert to and from it
/// (see HalfConversion.swift), or integer/bool tensors carried through unchanged.
public enum DType: String, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u8 = "U8"
    case bool = "BOOL"

    /// The name in a safetensors header: "F32", "BF16", "BOOL"…
    public var safetensorsName: String { rawValue }

    /// Parses a safetensors dtype name (case-sensitive, as the format defines it).
    public init?(safetensorsName: String) { self.init(rawValue: safetensorsName) }

    /// Bytes per element.
    public var elementSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// True for the types `Float` values can be widened from (and narrowed to): F32, BF16, F16.
    public var isFloatStorage: Bool { self == .f32 || self == .bf16 || self == .f16 }

    /// PyTorch's name: "float32", "bfloat16", "float16", "int64"… (as in config.json `torch_dtype`).
    public var torchName: String {
        switch self {
        case .f64: return "float64"
        case .f32: return "float32"
        case .f16: return "float16"
        case .bf16: return "bfloat16"
        case .i64: return "int64"
        case .i32: return "int32"
        case .i16: return "int16"
        case .i8: return "int8"
        case .u8: return "uint8"
        case .bool: return "bool"
        }
    }

    /// Parses what users write for a dtype: PyTorch names ("bfloat16", "torch.float16"), their
    /// short forms ("bf16", "fp16", "fp32", "half", "float") or a safetensors name ("BF16").
    public init?(name: String) {
        var s = name.trimmingWhitespace().lowercased()
        if s.hasPrefix("torch.") { s.removeFirst("torch.".count) }
        switch s {
        case "float64", "double", "fp64", "f64": self = .f64
        case "float32", "float", "fp32", "f32": self = .f32
        case "float16", "half", "fp16", "f16": self = .f16
        case "bfloat16", "bf16": self = .bf16
        case "int64", "long", "i64": self = .i64
        case "int32", "int", "i32": self = .i32
        case "int16", "short", "i16": self = .i16
        case "int8", "i8": self = .i8
        case "uint8", "u8": self = .u8
        case "bool": self = .bool
        default: return nil
        }
    }

    public var description: String { rawValue }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
