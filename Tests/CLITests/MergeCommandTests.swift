import Foundation
import Testing

@Suite struct MergeCommandTests {
    /// Train a few steps, merge, and check the merged folder is complete and scores like base + adapter.
    @Test func mergedFolderMatchesBaseWithAdapter() throws {
        let s = try TrainSetup()
        let t = try runQwenft(["train", "--config", s.config], environment: s.env)
        #expect(t.status == 0, "\(t.stderr)")
        let merged = s.dir.appendingPathComponent("merged").path
        let m = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", s.output, "--out", merged, "--max-shard-size", "10MB"])
        #expect(m.status == 0, "\(m.stderr)")
        #expect(m.stdout.contains("merged 14 LoRA pairs"))
        for name in ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json"] {
            #expect(FileManager.default.fileExists(atPath: merged + "/" + name), "\(name)")
        }
        let evalData = s.dir.appendingPathComponent("eval.jsonl").path
        try "{\"text\": \"<|im_start|>user\\nwho are you<|im_end|>\\n<|im_start|>assistant\\nI'm 888888.<|im_end|>\"}\n"
            .write(toFile: evalData, atomically: true, encoding: .utf8)
        let a = try runQwenft(["eval", "--model", try TinyModel.folder(), "--adapter", s.output, "--data", evalData, "--json"])
        let b = try runQwenft(["eval", "--model", merged, "--data", evalData, "--json"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr) \(b.stderr)")
        let la = try JSONSerialization.jsonObject(with: a.stdoutData) as! [String: Any]
        let lb = try JSONSerialization.jsonObject(with: b.stdoutData) as! [String: Any]
        let x = la["loss"] as! Double, y = lb["loss"] as! Double
        #expect(abs(x - y) < 1e-4 * abs(x))

        let bf = s.dir.appendingPathComponent("merged-bf16").path
        let m2 = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", s.output, "--out", bf, "--dtype", "bfloat16"])
        #expect(m2.status == 0, "\(m2.stderr)")
        let cfg = try String(contentsOfFile: bf + "/config.json", encoding: .utf8)
        #expect(cfg.contains("bfloat16"))
    }

    @Test func badAdapterIsAnError() throws {
        let dir = try makeTempDir()
        let r = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", dir.path, "--out", dir.path + "/out"])
        #expect(r.status == 1 && r.stderr.contains("adapter_model.safetensors"), "\(r.stderr)")
        // An adapter of another model: its shapes do not fit.
        let other = qwen2ModelFixtures.appendingPathComponent("untied-gqa2-lora-plain").path
        let r2 = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", other, "--out", dir.path + "/out2"])
        #expect(r2.status == 1 && r2.stderr.hasPrefix("qwenft: error:"), "\(r2.stderr)")
    }

    @Test func badOptionsAreErrors() throws {
        let dir = try makeTempDir()
        let r = try runQwenft(["merge", "--base", "/nonexistent/base", "--adapter", dir.path, "--out", dir.path + "/o"])
        #expect(r.status == 1 && r.stderr.contains("/nonexistent/base"))
        let r2 = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", dir.path, "--out", dir.path + "/o", "--dtype", "int8"])
        #expect(r2.status == 1 && r2.stderr.contains("--dtype"))
        let r3 = try runQwenft(["merge", "--base", try TinyModel.folder(), "--adapter", dir.path, "--out", dir.path + "/o", "--max-shard-size", "lots"])
        #expect(r3.status == 1 && r3.stderr.contains("--max-shard-size"))
    }
}
