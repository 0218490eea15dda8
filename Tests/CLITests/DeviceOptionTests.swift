import Foundation
import Testing

/// `--device` on generate, chat, eval and train (the config's `device` key): cpu runs as the
/// default does; cuda answers that this build has no CUDA backend yet (exit 1) before any work.
@Suite struct DeviceOptionTests {
    @Test func cpuIsTheDefault() throws {
        let e = try TinyExpectations.load()
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--prompt", e.prompt, "--device", "cpu",
                               "--greedy", "--max-new-tokens", "8", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
        #expect(obj?["ids"] as? [Int] == Array(e.greedy_ids.prefix(8)))
    }

    @Test func cudaIsNotAvailableYet() throws {
        let model = try TinyModel.folder()
        let data = try makeTempDir().appendingPathComponent("data.jsonl")
        try "{\"text\": \"hello there\"}\n".write(to: data, atomically: true, encoding: .utf8)
        for (args, device) in [(["generate", "--model", model, "--prompt", "hi", "--max-new-tokens", "2"], "cuda"),
                               (["chat", "--model", model, "--max-new-tokens", "2"], "cuda:1"),
                               (["eval", "--model", model, "--data", data.path], "CUDA:0")] {
            let r = try runQwenft(args + ["--device", device], stdin: Data())
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("not available in this build yet") && r.stderr.contains("--device cpu"), "\(args[0]): \(r.stderr)")
            #expect(r.stdout.isEmpty, "\(args[0]) produced output: \(r.stdout)")
        }
        let bad = try runQwenft(["generate", "--model", model, "--prompt", "hi", "--device", "gpu"])
        #expect(bad.status == 1 && bad.stderr.contains("unknown device \"gpu\"") && bad.stderr.contains("cuda:N"), "\(bad.stderr)")
    }

    @Test func trainReadsTheDeviceKey() throws {
        let s = try TrainSetup(extra: ", \"device\": \"cuda\"")
        let r = try runQwenft(["train", "--config", s.config], environment: s.env)
        #expect(r.status == 1)
        #expect(r.stderr.contains("device cuda:0") && r.stderr.contains("not available in this build yet"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.output + "/adapter_model.safetensors"))
        // --device overrides the key like any other; a bad value names the key.
        let o = try runQwenft(["train", "--config", s.config, "--device", "cuda:3"], environment: s.env)
        #expect(o.status == 1 && o.stderr.contains("device cuda:3"), "\(o.stderr)")
        let b = try runQwenft(["train", "--config", s.config, "--device", "tpu"], environment: s.env)
        #expect(b.status == 1 && b.stderr.contains("device") && b.stderr.contains("unknown device \"tpu\""), "\(b.stderr)")
    }
}
