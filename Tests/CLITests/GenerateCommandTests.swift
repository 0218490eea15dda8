import Foundation
import Testing

@Suite struct GenerateCommandTests {
    @Test func greedyMatchesTransformers() throws {
        let e = try TinyExpectations.load()
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--prompt", e.prompt,
                               "--greedy", "--max-new-tokens", "24", "--json", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(obj["ids"] as? [Int] == e.greedy_ids)
        #expect(obj["text"] as? String == e.greedy_text)
        #expect(r.stderr.contains("tokens/s"))
    }

    @Test func streamedTextIsTheJSONText() throws {
        let e = try TinyExpectations.load()
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--prompt", e.prompt,
                               "--greedy", "--max-new-tokens", "24"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == e.greedy_text + "\n")
    }

    @Test func messagesFileRendersLikePrompt() throws {
        let e = try TinyExpectations.load()
        let file = try makeTempDir().appendingPathComponent("messages.json")
        try JSONSerialization.data(withJSONObject: [["role": "user", "content": e.prompt]]).write(to: file)
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--messages", file.path,
                               "--greedy", "--max-new-tokens", "24", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(obj["ids"] as? [Int] == e.greedy_ids)
    }

    @Test func badMessagesFileIsAnError() throws {
        let file = try makeTempDir().appendingPathComponent("messages.json")
        try "[{\"role\": \"user\"}]".write(to: file, atomically: true, encoding: .utf8)
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--messages", file.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("messages.json"))
    }

    @Test func seededSamplingIsReproducible() throws {
        let args = ["generate", "--model", try TinyModel.folder(), "--raw-prompt", "Once upon a time",
                    "--temperature", "1.2", "--top-k", "50", "--top-p", "0.9", "--max-new-tokens", "12", "--json"]
        let a = try runQwenft(args + ["--seed", "3"]), b = try runQwenft(args + ["--seed", "3"])
        #expect(a.status == 0 && a.stdout == b.stdout)
    }

    /// Ids past the tokenizer (the embedding's padding rows, 151,665…151,935) are valid model input;
    /// generated ones decode to nothing, as in transformers, instead of failing the run.
    @Test func idsPastTheTokenizerAreAccepted() throws {
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--prompt-ids", "[151900, 151935]",
                               "--greedy", "--max-new-tokens", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func missingModelFolderIsAnError() throws {
        let r = try runQwenft(["generate", "--model", "/nonexistent/model", "--prompt", "hi"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error:") && r.stderr.contains("/nonexistent/model"))
    }

    @Test func folderWithoutWeightsIsAnError() throws {
        let dir = try makeTempDir()
        try FileManager.default.copyItem(atPath: try TinyModel.folder() + "/config.json", toPath: dir.path + "/config.json")
        let r = try runQwenft(["generate", "--model", dir.path, "--prompt", "hi"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("model.safetensors"))
    }

    @Test func unsupportedArchitectureIsAnError() throws {
        let dir = try makeTempDir()
        try #"{"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1}"#
            .write(toFile: dir.path + "/config.json", atomically: true, encoding: .utf8)
        let r = try runQwenft(["generate", "--model", dir.path, "--prompt", "hi"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("llama") && r.stderr.contains("config.json"))
    }

    @Test func promptLongerThanThePositionLimitIsAnError() throws {
        let long = String(repeating: "hello ", count: 5000)  // tiny: max_position_embeddings 4096
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--raw-prompt", long, "--max-new-tokens", "2"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("max_position_embeddings"))
    }

    @Test func adapterForAnotherModelIsAnError() throws {
        let adapter = qwen2ModelFixtures.appendingPathComponent("untied-gqa2-lora-plain").path
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--adapter", adapter, "--prompt", "hi"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("untied-gqa2-lora-plain") && r.stderr.contains("different model"))
    }

    @Test func badSamplingValueIsAnError() throws {
        let r = try runQwenft(["generate", "--model", try TinyModel.folder(), "--prompt", "hi", "--top-p", "1.5"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("top-p"))
    }

    @Test func promptSourcesAreExclusive() throws {
        let r = try runQwenft(["generate", "--model", "x", "--prompt", "a", "--raw-prompt", "b"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("exactly one"))
    }
}

@Suite struct ChatCommandTests {
    @Test func pipedTurnsAnswerLikeGenerate() throws {
        let e = try TinyExpectations.load()
        let input = "\(e.prompt)\n/reset\n\(e.prompt)\n/system Be brief.\nhello\n/exit\nnever read\n"
        let r = try runQwenft(["chat", "--model", try TinyModel.folder(), "--greedy", "--max-new-tokens", "24"],
                              stdin: Data(input.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        // The same answer twice (the reset forgets the first turn), then a third one.
        #expect(r.stdout.hasPrefix(e.greedy_text + "\n" + e.greedy_text + "\n"))
        #expect(r.stderr.components(separatedBy: "prefill").count - 1 == 3)  // one stats line per answer
    }

    @Test func endOfInputEndsTheChat() throws {
        let r = try runQwenft(["chat", "--model", try TinyModel.folder(), "--greedy", "--max-new-tokens", "3"], stdin: Data())
        #expect(r.status == 0)
        #expect(r.stdout.isEmpty)
    }
}

@Suite struct EvalCommandTests {
    @Test func lossMatchesTransformers() throws {
        let e = try TinyExpectations.load()
        let data = try makeTempDir().appendingPathComponent("data.jsonl")
        let lines = try e.texts.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)
        let r = try runQwenft(["eval", "--model", try TinyModel.folder(), "--data", data.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let loss = try #require(obj["loss"] as? Double)
        #expect(abs(loss - e.eval.loss) / e.eval.loss < 1e-5, "loss \(loss) vs \(e.eval.loss)")
        #expect(obj["tokens"] as? Int == e.eval.tokens)
        #expect(obj["token_accuracy"] as? Double == e.eval.token_accuracy)
    }

    @Test func badRecordNamesTheLine() throws {
        let data = try makeTempDir().appendingPathComponent("bad.jsonl")
        try "{\"text\": \"ok\"}\n{\"prompt\": \"no text\"}\n".write(to: data, atomically: true, encoding: .utf8)
        let r = try runQwenft(["eval", "--model", try TinyModel.folder(), "--data", data.path])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.jsonl:2") && r.stderr.contains("text"))
    }
}
