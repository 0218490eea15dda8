import Foundation
import Testing

@Suite struct InspectCommandTests {
    let tiny = cliFixtures.appendingPathComponent("tiny-qwen2").path

    @Test func tableForAShardedModelFolder() throws {
        let r = try runQwenft(["inspect", tiny])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 safetensors files (index model.safetensors.index.json)"))
        #expect(r.stdout.contains("architecture: Qwen2ForCausalLM (model_type qwen2)"))
        #expect(r.stdout.contains("model.layers.1.self_attn.q_proj.weight"))
        #expect(r.stdout.contains("tensors: 27  parameters: 6,800"))
        #expect(r.stdout.contains("bytes: 13,600"))
        let lines = r.stdout.split(separator: "\n")
        let embed = try #require(lines.first { $0.hasPrefix("model.embed_tokens.weight ") })
        #expect(embed.hasSuffix("BF16   [64, 16]"))
    }

    @Test func jsonForScripts() throws {
        let r = try runQwenft(["inspect", tiny, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        #expect(json["architectures"] as? [String] == ["Qwen2ForCausalLM"])
        #expect(json["total_parameters"] as? Int == 6800)
        #expect(json["total_bytes"] as? Int == 13600)
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        #expect(tensors.count == 27)
        let norm = try #require(tensors.first { $0["name"] as? String == "model.norm.weight" })
        #expect(norm["dtype"] as? String == "BF16" && norm["shape"] as? [Int] == [16])
        #expect(norm["file"] as? String == "model-00002-of-00002.safetensors")
    }

    @Test func aSingleFileHasNoArchitecture() throws {
        let r = try runQwenft(["inspect", tiny + "/model-00001-of-00002.safetensors", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        #expect(json["architectures"] is NSNull)
        #expect(json["files"] as? [String] == ["model-00001-of-00002.safetensors"])
    }

    @Test func missingPathIsAnError() throws {
        let r = try runQwenft(["inspect", "/no/such/model"])
        #expect(r.status == 1)
        #expect(r.stderr == "qwenft: error: /no/such/model: no such file or folder\n")
    }

    @Test func truncatedFileNamesTheFile() throws {
        let dir = try makeTempDir()
        let src = try Data(contentsOf: URL(fileURLWithPath: tiny + "/model-00002-of-00002.safetensors"))
        let path = dir.appendingPathComponent("cut.safetensors").path
        try src.prefix(src.count - 10).write(to: URL(fileURLWithPath: path))
        let r = try runQwenft(["inspect", path])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error: \(path): tensor '"))
        #expect(r.stderr.contains("reach past"))
        #expect(r.stdout.isEmpty)
    }

    @Test func garbageAndMissingShardAreErrors() throws {
        let dir = try makeTempDir()
        let junk = dir.appendingPathComponent("junk.safetensors").path
        try Data("definitely not safetensors".utf8).write(to: URL(fileURLWithPath: junk))
        let r = try runQwenft(["inspect", junk])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error: \(junk): "))

        let model = dir.appendingPathComponent("model").path
        try FileManager.default.copyItem(atPath: tiny, toPath: model)
        try FileManager.default.removeItem(atPath: model + "/model-00001-of-00002.safetensors")
        let r2 = try runQwenft(["inspect", model])
        #expect(r2.status == 1)
        #expect(r2.stderr.contains("model-00001-of-00002.safetensors"))
        #expect(r2.stderr.contains("is missing"))
    }

    @Test func badConfigIsAnError() throws {
        let dir = try makeTempDir()
        let model = dir.appendingPathComponent("model").path
        try FileManager.default.copyItem(atPath: tiny, toPath: model)
        try Data(#"{"architectures": "Qwen2"}"#.utf8).write(to: URL(fileURLWithPath: model + "/config.json"))
        let r = try runQwenft(["inspect", model])
        #expect(r.status == 1)
        #expect(r.stderr.contains("config.json: \"architectures\" must be a list of strings"))
    }

    @Test func helpDescribesTheCommand() throws {
        let r = try runQwenft(["inspect", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("--json"))
        let r2 = try runQwenft(["inspect"])
        #expect(r2.status == 1)
        #expect(r2.stderr.hasPrefix("qwenft: error:"))
    }
}

/// Each malformed file the issue names ends in `qwenft: error:` naming the file (and tensor), exit 1.
@Suite struct InspectBadFileTests {
    static let cases: [(label: String, header: String, data: Int, fragments: [String])] = [
        ("unknown dtype", #"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#, 2, ["'w'", "unknown dtype"]),
        ("shape/size mismatch", #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, ["'w'", "needs 12 bytes"]),
        ("range outside", #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8, ["'w'", "reach past"]),
        ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12, ["'a'", "'b'", "overlapping"]),
        ("bad JSON", #"{"w":{"dtype":"F32","#, 0, ["not valid JSON"]),
        ("header past end", "", -1, ["past the end"]),
        ("truncated", "", -2, ["truncated"]),
    ]

    @Test(arguments: 0..<cases.count)
    func badFile(_ k: Int) throws {
        let c = Self.cases[k]
        var bytes: [UInt8]
        switch c.data {
        case -1: bytes = [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0x7B, 0x7D]
        case -2: bytes = [4, 0, 0]
        default:
            let h = Array(c.header.utf8)
            var n = UInt64(h.count)
            bytes = []
            for _ in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
            bytes += h + [UInt8](repeating: 0, count: c.data)
        }
        let path = try makeTempDir().appendingPathComponent("bad.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try runQwenft(["inspect", path, "--json"])
        #expect(r.status == 1, "\(c.label)")
        #expect(r.stderr.hasPrefix("qwenft: error: \(path): "), "\(c.label): \(r.stderr)")
        for f in c.fragments { #expect(r.stderr.contains(f), "\(c.label): \(r.stderr)") }
        #expect(r.stdout.isEmpty)
    }
}
