import Foundation
import Qwen2

/// What a QLoRA adapter was trained against, recorded next to it (qlora_base.json) so that
/// `qwenft merge` can rebuild the same NF4 base: the weights the adapter learned to correct.
/// PEFT ignores the file.
///     {"quant_type": "nf4", "blocksize": 64, "double_quant": true, "skip_modules": [], "source": "quantised on load"}
public enum QLoRABase {
    public static let fileName = "qlora_base.json"

    static func write(_ w: NF4Weights, to folder: String) throws {
        let o = w.quantizedOnLoad
        let v = JSONValue.object([
            ("quant_type", .string("nf4")), ("blocksize", .int(w.blocksize)), ("double_quant", .bool(w.doubleQuant)),
            ("skip_modules", .array((o?.skipModules ?? []).map { .string($0) })),
            ("source", .string(o == nil ? "bitsandbytes 4-bit folder" : "quantised on load")),
        ])
        try ModelFiles.writeText(v.prettyText + "\n", to: (folder as NSString).appendingPathComponent(fileName))
    }

    /// The quantisation recorded in an adapter folder; nil when there is none (a plain LoRA adapter).
    public static func read(adapter folder: String) throws -> NF4Options? {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        guard let v = try? JSONValue.parse(text), case .object = v else {
            throw TrainerError.mergeFailed(path: path, message: "not a JSON object; delete it to merge onto the original base")
        }
        var o = NF4Options()
        if case let .number(b, _)? = v["blocksize"] { o.blocksize = Int(b) }
        guard NF4.blocksizes.contains(o.blocksize) else {
            throw TrainerError.mergeFailed(path: path, message: "blocksize \(o.blocksize) is not one of \(NF4.blocksizes)")
        }
        if case let .bool(d)? = v["double_quant"] { o.doubleQuant = d }
        if case let .array(items)? = v["skip_modules"] {
            o.skipModules = items.compactMap { if case let .string(s) = $0 { return s }; return nil }
        }
        return o
    }
}
