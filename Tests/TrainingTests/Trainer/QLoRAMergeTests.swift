import Foundation
import Qwen2
import QwenCore
import SafeTensors
import Testing
@testable import Training

// QLoRA end to end: train_mode qlora trains over an NF4 base and records it beside the adapter;
// merge goes onto the dequantised NF4 base by default, onto the 16-bit one with --onto-original.

struct QLoRAMergeTests {
    let fixture = fixtureURL("qlora")

    func logits(_ model: Qwen2Model, _ ids: [Int32], B: Int, T: Int) throws -> [Float] {
        model.logits(hidden: try model.forward(ids: ids, B: B, T: T, cache: KVCache(config: model.config, batch: B, capacity: T)),
                     rows: Array(0..<(B * T)))
    }

    func fixtureIds() throws -> ([Int32], Int, Int) {
        let f = try SafeTensorsSource(path: fixture.appendingPathComponent("logits.safetensors").path)
        guard let t = f.tensor(named: "ids") else { throw FixtureMissing() }
        return ((0..<t.count).map { t.data.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self) }, t.shape[0], t.shape[1])
    }

    func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    /// Merging peft's adapter into bitsandbytes' 4-bit folder reproduces peft-over-bitsandbytes logits.
    @Test func mergeOntoFourBitFolderMatchesPeftLogits() throws {
        let out = try trainerTempDir() + "/merged"
        let r = try AdapterMerge.merge(base: fixture.appendingPathComponent("base-4bit").path,
                                       adapter: fixture.appendingPathComponent("adapter").path, out: out)
        #expect(r.mergedPairs == 14 && r.onto.contains("dequantised NF4"))
        let text = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
        #expect(!text.contains("quantization_config"))
        let (ids, B, T) = try fixtureIds()
        let merged = try ModelFolder.loadModel(path: out)
        #expect(merged.weights is StoredWeights)
        let want = try SafeTensorsSource(path: fixture.appendingPathComponent("logits.safetensors").path).floats("lora")
        let d = maxDiff(try logits(merged, ids, B: B, T: T), want)
        print("qlora merge onto 4-bit folder: logits vs peft+bitsandbytes max abs diff \(d)")
        #expect(d < 1e-4)
        #expect(throws: Error.self) {
            try AdapterMerge.merge(base: fixture.appendingPathComponent("base-4bit").path,
                                   adapter: fixture.appendingPathComponent("adapter").path, out: out + "2", ontoOriginal: true)
        }
    }

    /// A QLoRA adapter on a 16-bit base: by default the merge equals the adapter over the
    /// re-quantised base; --onto-original equals a plain LoRA merge.
    @Test func mergeOfQLoRAAdapterOntoSixteenBitBase() throws {
        let dir = try trainerTempDir()
        let adapter = dir + "/adapter"
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("adapter").path, toPath: adapter)
        try #"{"quant_type": "nf4", "blocksize": 64, "double_quant": true, "skip_modules": [], "source": "quantised on load"}"#
            .write(toFile: adapter + "/" + QLoRABase.fileName, atomically: true, encoding: .utf8)
        let base = fixture.appendingPathComponent("base").path
        let r = try AdapterMerge.merge(base: base, adapter: adapter, out: dir + "/nf4")
        #expect(r.onto.contains("dequantised NF4"))
        let o = try AdapterMerge.merge(base: base, adapter: adapter, out: dir + "/orig", ontoOriginal: true)
        #expect(o.onto.contains("original"))
        let (ids, B, T) = try fixtureIds()
        let config = try Qwen2Config.load(URL(fileURLWithPath: base + "/config.json"))
        let lora = try ModelFolder.loadAdapter(adapter, config: config)
        let overNF4 = Qwen2Model(weights: try NF4Weights(config: config, source: try SafeTensorsSource(path: base), quantizing: NF4Options()),
                                 adapter: lora)
        let d1 = maxDiff(try logits(try ModelFolder.loadModel(path: dir + "/nf4"), ids, B: B, T: T), try logits(overNF4, ids, B: B, T: T))
        let d2 = maxDiff(try logits(try ModelFolder.loadModel(path: dir + "/orig"), ids, B: B, T: T),
                         try logits(try ModelFolder.loadModel(path: base, adapter: adapter), ids, B: B, T: T))
        print("qlora merge onto 16-bit base: dequantised \(d1), original \(d2)")
        #expect(d1 < 1e-4 && d2 < 1e-4)
    }

    /// train_mode qlora: NF4 base (noted), loss goes down, the adapter folder says what it was trained on.
    @Test func trainModeQLoRATrainsOverNF4() throws {
        let out = try trainerTempDir() + "/run"
        var notes: [String] = []
        let trainer = try Trainer(config: try TrainerFixture.config(output: out, [
            ("train_mode", .string("qlora")), ("bnb_4bit_compute_dtype", .string("bfloat16")), ("bnb_4bit_blocksize", .int(32)),
        ])) { e in if case let .note(n) = e { notes.append(n) } }
        _ = try trainer.train()
        #expect(notes.contains { $0.contains("NF4 (quantised on load") && $0.contains("blocksize 32") })
        #expect(notes.contains { $0.contains("bnb_4bit_compute_dtype bfloat16") })
        let recorded = try QLoRABase.read(adapter: out)
        #expect(recorded?.blocksize == 32 && recorded?.doubleQuant == true)
        let losses = try loggedLosses(out)
        #expect(losses.count >= 2)
        for bad in [("bnb_4bit_quant_type", JSONValue.string("fp4")), ("bnb_4bit_blocksize", .int(48))] {
            #expect(throws: Error.self, "\(bad.0)") {
                _ = try Trainer(config: try TrainerFixture.config(output: out + bad.0, [("train_mode", .string("qlora")), bad]))
            }
        }
        #expect(throws: Error.self) {
            _ = try Trainer(config: try TrainerFixture.config(output: out + "full", [("train_mode", .string("full")), ("load_in_4bit", .bool(true))]))
        }
    }
}
