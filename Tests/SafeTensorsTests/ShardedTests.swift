import Foundation
import Testing
@testable import SafeTensors
import QwenCore

@Suite struct ShardedTests {
    let tiny = fixtures.appendingPathComponent("tiny-qwen2").path

    func stateDictOrder() throws -> (order: [String], maxShardSize: Int) {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("tiny-qwen2.order.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (try #require(json["order"] as? [String]), try #require(json["max_shard_size"] as? Int))
    }

    @Test func readsATransformersShardedFolderAsOneMap() throws {
        let store = try SafeTensorsStore(path: tiny)
        #expect(store.indexPath == tiny + "/model.safetensors.index.json")
        #expect(store.files.count == 2)
        let (order, _) = try stateDictOrder()
        #expect(Set(store.names) == Set(order))
        let embed = try store.tensor("model.embed_tokens.weight")
        #expect(embed.dtype == .bf16 && embed.shape == [64, 16])
        #expect(try store.tensor("lm_head.weight").file.hasSuffix("model-00002-of-00002.safetensors"))
        // The index file itself and a single shard open too.
        #expect(try SafeTensorsStore(path: tiny + "/model.safetensors.index.json").names.count == order.count)
        #expect(try SafeTensorsStore(path: tiny + "/model-00001-of-00002.safetensors").files.count == 1)
        expectError(["model.safetensors.index.json", "'nope'"]) { _ = try store.tensor("nope") }
    }

    @Test func ourShardsAndIndexEqualTransformersBytes() throws {
        let store = try SafeTensorsStore(path: tiny)
        let (order, maxShardSize) = try stateDictOrder()
        let dir = try makeTempDir()
        let result = try SafeTensorsWriter.writeSharded(order.map { TensorToWrite(copying: try store.tensor($0)) },
                                                        toFolder: dir, maxShardSize: maxShardSize)
        #expect(result.files.map { ($0 as NSString).lastPathComponent }
                == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        #expect(result.totalSize == 13600)
        for name in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"] {
            #expect(try readBytes(dir + "/" + name) == readBytes(tiny + "/" + name), "\(name)")
        }
        if let out = interopOut {
            try? FileManager.default.removeItem(atPath: out + "/sharded")
            try SafeTensorsWriter.writeSharded(order.map { TensorToWrite(copying: try store.tensor($0)) },
                                               toFolder: out + "/sharded", maxShardSize: 3000)
        }
    }

    @Test func oneShardIsASingleFileAndStaleShardsGo() throws {
        let store = try SafeTensorsStore(path: tiny)
        let tensors = store.names.map { TensorToWrite(copying: store[$0]!) }
        let dir = try makeTempDir()
        try SafeTensorsWriter.writeSharded(tensors, toFolder: dir, maxShardSize: 2000)
        let many = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(many.contains("model.safetensors.index.json"))
        #expect(many.filter { $0.hasSuffix(".safetensors") }.count > 2)
        try "keep".write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let r = try SafeTensorsWriter.writeSharded(tensors, toFolder: dir, maxShardSize: parseByteSize("1MB")!)
        #expect(r.indexPath == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["config.json", "model.safetensors"])
        let back = try SafeTensorsStore(path: dir)
        #expect(back.names.count == store.names.count)
        for name in store.names { #expect(back[name]!.byteArray() == store[name]!.byteArray()) }
    }

    @Test func shardPlanFollowsHuggingFaceHub() {
        #expect(SafeTensorsWriter.planShards([6, 6, 2, 6, 2, 2], maxShardSize: 10) == [[0], [1, 2], [3, 4, 5]])
        #expect(SafeTensorsWriter.planShards([3, 12, 3, 3], maxShardSize: 10) == [[1], [0, 2, 3]])
        #expect(SafeTensorsWriter.planShards([], maxShardSize: 10) == [[]])
        #expect(SafeTensorsWriter.planShards([10, 0, 1], maxShardSize: 10) == [[0, 1], [2]])
        #expect(SafeTensorsWriter.isShardFileName("model-00001-of-00002.safetensors", prefix: "model"))
        #expect(!SafeTensorsWriter.isShardFileName("model-1-of-2.safetensors", prefix: "model"))
    }

    @Test func byteSizesParseAsHuggingFaceDoes() {
        #expect(parseByteSize("5GB") == 5_000_000_000)
        #expect(parseByteSize("200MB") == 200_000_000)
        #expect(parseByteSize("1KiB") == 1024)
        #expect(parseByteSize("2 GiB") == 2 * 1024 * 1024 * 1024)
        #expect(parseByteSize("123") == 123)
        #expect(parseByteSize("0.5GB") == 500_000_000)
        #expect(parseByteSize("lots") == nil)
        #expect(parseByteSize("-1") == nil)
    }

    @Test func indexProblemsNameTheIndexShardAndTensor() throws {
        let dir = try makeTempDir()
        for f in try FileManager.default.contentsOfDirectory(atPath: tiny) {
            try FileManager.default.copyItem(atPath: tiny + "/" + f, toPath: dir + "/" + f)
        }
        try FileManager.default.removeItem(atPath: dir + "/model-00002-of-00002.safetensors")
        expectError(["model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing", "lm_head.weight"]) {
            _ = try SafeTensorsStore(path: dir)
        }
        try #"{"weight_map":{"ghost":"model-00001-of-00002.safetensors"}}"#.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        expectError(["model.safetensors.index.json", "'ghost'", "model-00001-of-00002.safetensors"]) {
            _ = try SafeTensorsStore(path: dir)
        }
        try #"{"weight_map":[1]}"#.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        expectError(["model.safetensors.index.json", "weight_map"]) { _ = try SafeTensorsStore(path: dir) }
        try #"{"weight_map":{"a":"../x.safetensors"}}"#.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        expectError(["model.safetensors.index.json", "'a'", "../x.safetensors"]) { _ = try SafeTensorsStore(path: dir) }
        try "{oops".write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        expectError(["model.safetensors.index.json", "not valid JSON"]) { _ = try SafeTensorsStore(path: dir) }
    }

    @Test func duplicateTensorsAcrossShardsAndFolderLookup() throws {
        let dir = try makeTempDir()
        try SafeTensorsWriter.write([TensorToWrite(name: "a", shape: [1], floats: [1])], to: dir + "/s1.safetensors")
        try SafeTensorsWriter.write([TensorToWrite(name: "a", shape: [1], floats: [2]),
                                     TensorToWrite(name: "b", shape: [1], floats: [2])], to: dir + "/s2.safetensors")
        try #"{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}"#.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        expectError(["'a'", "s1.safetensors", "s2.safetensors"]) { _ = try SafeTensorsStore(path: dir) }
        expectError(["no model.safetensors"]) { _ = try SafeTensorsStore(path: try makeTempDir()) }
        expectError(["/no/such/place", "no such file"]) { _ = try SafeTensorsStore(path: "/no/such/place") }
        // A folder with one *.safetensors (an adapter folder) opens that file.
        let adapter = try makeTempDir()
        try SafeTensorsWriter.write([TensorToWrite(name: "lora", shape: [1], floats: [1])], to: adapter + "/adapter_model.safetensors")
        #expect(try SafeTensorsStore(path: adapter).names == ["lora"])
    }
}
