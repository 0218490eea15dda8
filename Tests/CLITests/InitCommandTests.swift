import Foundation
import Testing

@Suite struct InitCommandTests {
    @Test func writesAHuggingFaceFolderDeterministically() throws {
        let dir = try TinyModel.folder()
        for f in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "missing \(f)")
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! [String: Any]
        #expect(config["hidden_size"] as? Int == 64)
        #expect(config["num_hidden_layers"] as? Int == 2)
        #expect(config["tie_word_embeddings"] as? Bool == true)
        let again = try makeTempDir().appendingPathComponent("again").path
        let r = try runQwenft(["init", "--preset", "tiny", "--seed", "7", "--out", again])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: dir + "/model.safetensors", andPath: again + "/model.safetensors"))
    }

    /// config.json and generation_config.json keep the bytes Foundation's encoder wrote before the
    /// JSON target (Fixtures/init-golden, written by commit 5cc41a7); tokenizer_config.json has the
    /// same content laid out as transformers' save_pretrained writes it (Scripts/fixtures/init_golden.py).
    @Test func configFilesHaveTheirGoldenBytes() throws {
        let dir = try TinyModel.folder()
        let golden = cliFixtures.appendingPathComponent("init-golden")
        for f in ["config.json", "generation_config.json", "tokenizer_config.json"] {
            let got = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
            let want = try Data(contentsOf: golden.appendingPathComponent(f))
            #expect(got == want, "\(f):\n\(String(decoding: got, as: UTF8.self))")
        }
        let before = try JSONSerialization.jsonObject(with: Data(contentsOf: golden.appendingPathComponent("tokenizer_config.foundation.json")))
        let now = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/tokenizer_config.json")))
        #expect((before as? NSDictionary) == (now as? NSDictionary))
    }

    @Test func bfloat16WeightsAreHalfTheSize() throws {
        let dir = try makeTempDir().path
        let r = try runQwenft(["init", "--preset", "tiny", "--dtype", "bfloat16", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/model.safetensors")[.size] as! Int
        #expect(size < 151_936 * 64 * 2 + 1_000_000)
    }

    @Test func unknownPresetIsAnError() throws {
        let r = try runQwenft(["init", "--preset", "huge", "--out", try makeTempDir().path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error:") && r.stderr.contains("huge") && r.stderr.contains("qwen2.5-0.5b"))
    }

    @Test func missingTokenizerFileIsAnError() throws {
        let r = try runQwenft(["init", "--preset", "tiny", "--tokenizer", "/nonexistent/qwen.tiktoken", "--out", try makeTempDir().path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/qwen.tiktoken"))
    }

    @Test func initStdScalesTheWeightsAndIsRecorded() throws {
        let dir = try makeTempDir().path
        let r = try runQwenft(["init", "--preset", "tiny", "--init-std", "0.5", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any]
        #expect(config?["initializer_range"] as? Double == 0.5)
        let inspect = try runQwenft(["inspect", dir])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        for bad in ["0", "-1", "nan", "11"] {
            let e = try runQwenft(["init", "--preset", "tiny", "--init-std", bad, "--out", try makeTempDir().path])
            #expect(e.status == 1, "--init-std \(bad)")
            #expect(e.stderr.hasPrefix("qwenft: error:") && e.stderr.contains("--init-std"), "\(e.stderr)")
        }
    }
}
