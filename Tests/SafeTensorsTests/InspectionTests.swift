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
