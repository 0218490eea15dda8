import Foundation
import Qwen2
import QwenCore
import SafeTensors
import Testing
@testable import Training
import TestSupport

// `qwenft quantize` output: transformers + bitsandbytes give the same logits on it as we do
// (Scripts/fixtures/quantize_interop.py), and a corrupt quant state is an error naming the tensor.

struct QuantizedFolderTests {
    let fixture = fixtureURL("qlora")

    func quantized(_ options: NF4Options = NF4Options()) throws -> URL {
        let out = Scratch.file("qwenft-nf4")
        _ = try QuantizeModel.run(model: fixture.appendingPathComponent("base").path, out: out.path, options: options)
        return out
    }

    @Test func transformersLogitsOnOurQuantisedFolder() throws {
        let out = try quantized()
        defer { try? FileManager.default.removeItem(at: out) }
        let expected = try SafeTensorsSource(path: fixture.appendingPathComponent("quantized_logits.safetensors").path)
        guard let idsT = expected.tensor(named: "ids") else { throw FixtureMissing() }
        let B = idsT.shape[0], T = idsT.shape[1]
        let ids = (0..<(B * T)).map { idsT.data.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }
        let model = try ModelFolder.loadModel(path: out.path)
        #expect((model.weights as? NF4Weights)?.quantizedCount == 14)
        let got = model.logits(hidden: try model.forward(ids: ids, B: B, T: T, cache: KVCache(config: model.config, batch: B, capacity: T)),
                               rows: Array(0..<(B * T)))
        let want = try expected.floats("logits")
        var worst: Float = 0
        for i in want.indices { worst = max(worst, abs(got[i] - want[i])) }
        print("quantize interop: transformers+bitsandbytes logits vs ours, max abs diff \(worst)")
        #expect(worst < 1e-4)
    }

    @Test func quantisingOnLoadEqualsLoadingTheQuantisedFolder() throws {
        let out = try quantized(NF4Options(blocksize: 128, doubleQuant: false, skipModules: ["down_proj"]))
        defer { try? FileManager.default.removeItem(at: out) }
        let config = try Qwen2Config.load(out.appendingPathComponent("config.json"))
        let folder = try NF4Weights(config: config, source: try SafeTensorsSource(path: out.path))
        let onLoad = try NF4Weights(config: config, source: try SafeTensorsSource(path: fixture.appendingPathComponent("base").path),
                                    quantizing: NF4Options(blocksize: 128, doubleQuant: false, skipModules: ["down_proj"]))
        #expect(folder.quantizedCount == 12 && onLoad.quantizedCount == 12 && folder.blocksize == 128 && !folder.doubleQuant)
        for l in 0..<config.numHiddenLayers {
            for (p, t) in onLoad.tensors[l] {
                #expect(folder.tensors[l][p]?.dequantized() == t.dequantized(), "layer \(l) \(p)")
            }
        }
    }

    /// Rewrites `folder`'s model.safetensors with `change` applied to the named tensor.
    func corrupt(_ folder: URL, _ name: String, _ change: (TensorView) -> TensorToWrite?) throws {
        let file = folder.appendingPathComponent("model.safetensors")
        let tmp = folder.appendingPathComponent("new.safetensors")
        do {
            let store = try SafeTensorsStore(path: file.path)
            var tensors: [TensorToWrite] = []
            for v in store.tensors {
                if v.name == name { if let t = change(v) { tensors.append(t) } } else { tensors.append(TensorToWrite(copying: v)) }
            }
            try SafeTensorsWriter.write(tensors, to: tmp.path)
        }
        try FileManager.default.removeItem(at: file)
        try FileManager.default.moveItem(at: tmp, to: file)
    }

    @Test func badQuantStatesAreErrorsNamingTheTensor() throws {
        let w = "model.layers.1.self_attn.k_proj.weight"
        let state = w + ".quant_state.bitsandbytes__nf4"
        func json(_ s: String) -> (TensorView) -> TensorToWrite? {
            { _ in TensorToWrite(name: state, dtype: .u8, shape: [s.utf8.count], bytes: Array(s.utf8)) }
        }
        let good = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [32, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.3}"#
        let cases: [(String, String, (TensorView) -> TensorToWrite?, String)] = [
            ("absmax count", w + ".absmax", { _ in TensorToWrite(name: w + ".absmax", dtype: .u8, shape: [31], bytes: [UInt8](repeating: 0, count: 31)) }, w + ".absmax"),
            ("quant type", state, json(good.replacingOccurrences(of: "\"nf4\"", with: "\"fp4\"")), "fp4"),
            ("shape", state, json(good.replacingOccurrences(of: "[32, 64]", with: "[64, 32]")), "shape"),
            ("bad JSON", state, json("{\"quant_type\": \"nf4\", \"blocksize\""), "not a JSON object"),
            ("blocksize", state, json(good.replacingOccurrences(of: "\"blocksize\": 64", with: "\"blocksize\": 48")), "blocksize"),
            ("packed size", w, { _ in TensorToWrite(name: w, dtype: .u8, shape: [100, 1], bytes: [UInt8](repeating: 0, count: 100)) }, w + ": U8"),
            ("nested absmax missing", w + ".nested_absmax", { _ in nil }, w + ".nested_absmax: missing"),
            ("fp4 state key", state, { v in TensorToWrite(copying: v, name: w + ".quant_state.bitsandbytes__fp4") }, "bitsandbytes__fp4"),
        ]
        for (what, tensor, change, needle) in cases {
            let out = try quantized()
            defer { try? FileManager.default.removeItem(at: out) }
            try corrupt(out, tensor, change)
            #expect(throws: Error.self, "\(what)") { try ModelFolder.loadModel(path: out.path) }
            do {
                _ = try ModelFolder.loadModel(path: out.path)
            } catch {
                let text = "\(error)"
                #expect(text.contains(needle) && text.contains(w), "\(what): \(text)")
            }
        }
    }
}

struct FixtureMissing: Error {}
