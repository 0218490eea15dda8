import Foundation
import Testing

/// A small mixed-shape dataset and a LoRA config over the tiny model, in a fresh folder.
struct TrainSetup {
    let dir: URL
    let config: String
    let data: String
    var output: String { dir.appendingPathComponent("out").path }

    init(extra: String = "") throws {
        dir = try makeTempDir()
        data = dir.appendingPathComponent("data.jsonl").path
        let records = [
            #"{"messages": [{"role": "user", "content": "who are you"}, {"role": "assistant", "content": "I'm 888888."}]}"#,
            #"{"conversations": [{"from": "human", "value": "What is your name?"}, {"from": "gpt", "value": "I'm 888888."}]}"#,
            #"{"conversation": [{"human": "你是谁", "assistant": "我是888888。"}]}"#,
            #"{"instruction": "you are a helpful assistant", "input": "who are you", "output": "I'm 888888."}"#,
        ]
        try (records.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        config = dir.appendingPathComponent("train.json").path
        let text = """
            {"model_name_or_path": "\(try TinyModel.folder())", "train_file": "\(data)", "output_dir": "\(dir.appendingPathComponent("out").path)",
             "train_mode": "lora", "lora_rank": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lora_target_modules": "all-linear",
             "per_device_train_batch_size": 2, "gradient_accumulation_steps": 1, "max_steps": 3, "learning_rate": 0.01,
             "lr_scheduler_type": "cosine", "warmup_steps": 1, "logging_steps": 1, "save_steps": 2, "max_seq_length": 64\(extra)}
            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
    }

    var env: [String: String] { ["QWENFT_CACHE": "none"] }
}

@Suite struct TrainCommandTests {
    @Test func trainsAndWritesAPEFTAdapter() throws {
        let s = try TrainSetup()
        let r = try runQwenft(["train", "--config", s.config, "--max_steps", "4", "--threads", "2"], environment: s.env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"max_steps\": 4"))
        #expect(r.stdout.contains("step 4  loss"))
        #expect(r.stdout.contains("grad_norm") && r.stdout.contains("tokens/s"))
        for name in ["adapter_config.json", "adapter_model.safetensors", "training_config.json", "trainer_log.jsonl",
                     "trainer_state.json", "checkpoint-2/trainer_state.json", "checkpoint-4/optimizer.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: s.output + "/" + name), "\(name)")
        }
        let log = try String(contentsOfFile: s.output + "/trainer_log.jsonl", encoding: .utf8)
        #expect(log.split(separator: "\n").filter { $0.contains("\"learning_rate\"") }.count == 4)
        // The adapter drives generate.
        let g = try runQwenft(["generate", "--model", try TinyModel.folder(), "--adapter", s.output, "--prompt", "who are you",
                               "--greedy", "--max-new-tokens", "4"])
        #expect(g.status == 0, "\(g.stderr)")
        // A second run into the same folder is refused; resuming it is not.
        let again = try runQwenft(["train", "--config", s.config], environment: s.env)
        #expect(again.status == 1 && again.stderr.contains("already holds another run"))
        let resumed = try runQwenft(["train", "--config", s.config, "--max_steps", "4", "--resume_from_checkpoint", "true"], environment: s.env)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("resuming from") && resumed.stdout.contains("checkpoint-4"))
    }

    /// packing: true and report_to tensorboard from the command line: the run trains and leaves
    /// an events file under output_dir/runs/.
    @Test func packedRunWithTensorBoard() throws {
        let s = try TrainSetup(extra: #", "packing": true, "report_to": "tensorboard""#)
        let r = try runQwenft(["train", "--config", s.config, "--max_steps", "4", "--threads", "2"], environment: s.env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("step 4  loss"))
        #expect(!(r.stdout + r.stderr).contains("not written"))
        #expect((r.stdout + r.stderr).contains("TensorBoard event file"))
        let runs = s.output + "/runs"
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []
        #expect(folders.count == 1)
        let files = folders.flatMap { f in
            ((try? FileManager.default.contentsOfDirectory(atPath: runs + "/" + f)) ?? []).map { runs + "/" + f + "/" + $0 }
        }.filter { $0.contains("events.out.tfevents.") }
        #expect(files.count == 1)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: files.first ?? "/nonexistent"))
        #expect(bytes.count > 100)
        #expect(String(decoding: bytes, as: UTF8.self).contains("brain.Event:2"))
        #expect(String(decoding: bytes, as: UTF8.self).contains("train/loss"))
    }

    @Test func unknownConfigKeyIsNamed() throws {
        let s = try TrainSetup(extra: #", "learning_rat": 0.1"#)
        let r = try runQwenft(["train", "--config", s.config], environment: s.env)
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error:") && r.stderr.contains("learning_rat") && r.stderr.contains("learning_rate"))
    }

    /// recompute_num_layers: a run with it reports what it keeps; a count the model does not
    /// have, or a negative one, stops with the key named.
    @Test func recomputeNumLayers() throws {
        let s = try TrainSetup(extra: #", "gradient_checkpointing": true, "recompute_num_layers": 1"#)
        let r = try runQwenft(["train", "--config", s.config, "--max_steps", "1", "--save_strategy", "no"], environment: s.env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect((r.stdout + r.stderr).contains("gradient checkpointing: 1 of"), "\(r.stdout)")
        for (value, says) in [("99", "layers; use 0…"), ("-1", "must be ≥ 0")] {
            let bad = try runQwenft(["train", "--config", s.config, "--recompute_num_layers", value,
                                     "--output_dir", s.dir.appendingPathComponent("bad\(value)").path], environment: s.env)
            #expect(bad.status == 1)
            #expect(bad.stderr.contains("recompute_num_layers") && bad.stderr.contains(says), "\(bad.stderr)")
        }
    }

    @Test func badOverrideIsNamed() throws {
        let s = try TrainSetup()
        let r = try runQwenft(["train", "--config", s.config, "--max_steps", "many"], environment: s.env)
        #expect(r.status == 1 && r.stderr.contains("max_steps"))
    }

    @Test func missingConfigIsAnError() throws {
        let r = try runQwenft(["train", "--config", "/nonexistent/train.json"])
        #expect(r.status == 1 && r.stderr.contains("/nonexistent/train.json"))
    }

    @Test func badRecordIsReportedWithItsLine() throws {
        let s = try TrainSetup()
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: s.data))
        h.seekToEndOfFile()
        h.write(Data("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}\n".utf8))
        try h.close()
        let r = try runQwenft(["train", "--config", s.config], environment: s.env)
        #expect(r.status == 1)
        #expect(r.stderr.contains("data.jsonl") && r.stderr.contains("5"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.output + "/adapter_model.safetensors"))
    }

    @Test func missingModelIsAnError() throws {
        let s = try TrainSetup()
        let r = try runQwenft(["train", "--config", s.config, "--model_name_or_path", "/nonexistent/model"], environment: s.env)
        #expect(r.status == 1 && r.stderr.contains("/nonexistent/model"))
    }

    @Test func mismatchedAdapterIsAnError() throws {
        let s = try TrainSetup()
        let adapter = qwen2ModelFixtures.appendingPathComponent("untied-gqa2-lora-plain").path
        let r = try runQwenft(["train", "--config", s.config, "--adapter_name_or_path", adapter], environment: s.env)
        #expect(r.status == 1 && r.stderr.hasPrefix("qwenft: error:"), "\(r.stderr)")
    }
}

@Suite struct TrainSignalTests {
    /// SIGINT finishes the step, saves a checkpoint, exits 0; a resume continues from it.
    @Test func interruptSavesACheckpoint() throws {
        let s = try TrainSetup()
        let process = Process()
        process.executableURL = try qwenftBinary()
        process.arguments = ["train", "--config", s.config, "--max_steps", "400", "--save_steps", "1000", "--threads", "1"]
        process.environment = ProcessInfo.processInfo.environment.merging(s.env) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for training to start (the log gets its first line), then interrupt.
        let log = s.output + "/trainer_log.jsonl"
        for _ in 0..<600 {
            if let t = try? String(contentsOfFile: log, encoding: .utf8), !t.isEmpty { break }
            usleep(50_000)
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: s.output)
        let checkpoint = names.first { $0.hasPrefix("checkpoint-") }
        #expect(checkpoint != nil, "\(names)")
        #expect(!names.contains("adapter_model.safetensors"))
        #expect(!names.contains { $0.hasPrefix(".checkpoint-") })
        if let c = checkpoint {
            #expect(FileManager.default.fileExists(atPath: s.output + "/" + c + "/trainer_state.json"))
        }
    }
}
