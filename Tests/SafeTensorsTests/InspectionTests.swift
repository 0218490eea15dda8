import Testing
@testable import SafeTensors

@Suite struct InspectionTests {
    @Test func summarisesTheTinyModel() throws {
        let report = try inspectModel(path: fixtures.appendingPathComponent("tiny-qwen2").path)
        #expect(report.architectures == ["Qwen2ForCausalLM"] && report.modelType == "qwen2")
        #expect(report.totalParameters == 6800 && report.totalBytes == 13600)
        #expect(report.files == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        #expect(report.parametersByDType.map(\.1) == [6800])
    }

    @Test func naturalOrderAndNumberFormats() {
        let names = ["layers.10.w", "layers.2.w", "layers.2.b", "a", "layers.02.c"]
        #expect(names.sorted(by: naturalLess) == ["a", "layers.2.b", "layers.02.c", "layers.2.w", "layers.10.w"])
        #expect(grouped(494_032_768) == "494,032,768" && grouped(12) == "12" && grouped(-1000) == "-1,000")
        #expect(humanCount(494_032_768) == "494.03M" && humanCount(999) == "999")
        #expect(humanBytes(988_065_536) == "942.29 MiB" && humanBytes(10) == "10 B")
    }
}

@Suite struct AdapterInspectionTests {
    @Test func adapterFolderShowsItsSettings() throws {
        let dir = try makeTempDir()
        try SafeTensorsWriter.write([
            TensorToWrite(name: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", shape: [2, 4], floats: [Float](repeating: 0, count: 8)),
            TensorToWrite(name: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", shape: [4, 2], floats: [Float](repeating: 0, count: 8)),
        ], to: dir + "/adapter_model.safetensors")
        try #"{"peft_type":"LORA","r":2,"lora_alpha":16,"target_modules":["q_proj","v_proj"],"base_model_name_or_path":"Qwen/Qwen2.5-0.5B","task_type":"CAUSAL_LM"}"#
            .write(toFile: dir + "/adapter_config.json", atomically: true, encoding: .utf8)
        let report = try inspectModel(path: dir)
        #expect(report.architectures == nil)
        #expect(report.totalParameters == 16)
        let text = report.text()
        #expect(text.contains("adapter: peft_type LORA, r 2, lora_alpha 16, base_model_name_or_path Qwen/Qwen2.5-0.5B, target_modules q_proj+v_proj"))
        #expect(report.json().contains(#""adapter":{"peft_type":"LORA","r":2,"lora_alpha":16,"base_model_name_or_path":"Qwen/Qwen2.5-0.5B","target_modules":["q_proj","v_proj"]}"#))
        try "[1]".write(toFile: dir + "/adapter_config.json", atomically: true, encoding: .utf8)
        expectError(["adapter_config.json", "expected a JSON object"]) { _ = try inspectModel(path: dir) }
    }
}
