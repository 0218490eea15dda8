import Foundation
import Testing
@testable import SafeTensors
import QwenCore

@Suite struct WriterTests {
    /// The tensors of all_dtypes.safetensors, rebuilt from their description (not from the file).
    func describedTensors() throws -> [TensorToWrite] {
        try loadDescription().map { d in
            TensorToWrite(name: d.name, dtype: try #require(DType(safetensorsName: d.dtype)), shape: d.shape, bytes: d.bytes)
        }
    }

    @Test func ourBytesEqualPythonsForTheSameTensors() throws {
        let dir = try makeTempDir()
        try SafeTensorsWriter.write(try describedTensors(), to: dir + "/ours.safetensors")
        let ours = try readBytes(dir + "/ours.safetensors")
        let theirs = try readBytes(fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        #expect(ours.count == theirs.count)
        #expect(ours == theirs)

        let floatsOnly = try describedTensors().filter { $0.name.hasPrefix("f") }
        try SafeTensorsWriter.write(floatsOnly, to: dir + "/nometa.safetensors", metadata: nil)
        #expect(try readBytes(dir + "/nometa.safetensors")
                == (try readBytes(fixtures.appendingPathComponent("python/no_metadata.safetensors").path)))

        if let out = interopOut {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try SafeTensorsWriter.write(try describedTensors().reversed(), to: out + "/swift_all_dtypes.safetensors")
        }
    }

    @Test func headerLayout() throws {
        let dir = try makeTempDir()
        try SafeTensorsWriter.write([TensorToWrite(name: "x", shape: [1], floats: [1])], to: dir + "/x.safetensors")
        let bytes = try readBytes(dir + "/x.safetensors")
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        #expect(bytes[2..<8].allSatisfy { $0 == 0 })
        #expect(n % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        #expect(header == #"{"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"# + "   ")
        #expect(bytes.count == 8 + n + 4)
    }

    @Test func escapesNamesAndMetadataAsSerdeJSON() throws {
        let dir = try makeTempDir()
        let name = "a\"b\\c\nd\u{1}é/"
        try SafeTensorsWriter.write([TensorToWrite(name: name, shape: [], floats: [3])], to: dir + "/e.safetensors",
                                    metadata: ["k": "v\t"])
        let bytes = try readBytes(dir + "/e.safetensors")
        let header = String(decoding: bytes[8...], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"k":"v\t"},"a\"b\\c\nd\u0001é/":"#))
        let back = try SafeTensorsFile(path: dir + "/e.safetensors")
        #expect(back.names == [name] && back.metadata == ["k": "v\t"])
        #expect(try back.tensor(name).floats() == [3])
    }

    @Test func roundTripsConvertedFloats() throws {
        let dir = try makeTempDir()
        let src = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        let f32 = try src.tensor("f32.matrix")
        let values = try f32.floats()
        let tensors = [
            TensorToWrite(converting: f32, to: .bf16, name: "to.BF16"),
            TensorToWrite(converting: f32, to: .f16, name: "to.F16"),
            TensorToWrite(name: "from.pointer", shape: [4, 6], pointer: f32.f32Pointer!, as: .f32),
            TensorToWrite(name: "from.array.f64", shape: [24], floats: values, as: .f64),
        ]
        try SafeTensorsWriter.write(tensors, to: dir + "/c.safetensors")
        let back = try SafeTensorsFile(path: dir + "/c.safetensors")
        // torch's own narrowing of the same matrix is in the fixture.
        #expect(try back.tensor("to.BF16").byteArray() == src.tensor("bf16.matrix").byteArray())
        #expect(try back.tensor("to.F16").byteArray() == src.tensor("f16.matrix").byteArray())
        #expect(try back.tensor("from.pointer").floats() == values)
        #expect(try back.tensor("from.array.f64").floats() == values)
        if let out = interopOut {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try SafeTensorsWriter.write(Array(tensors[0..<2]), to: out + "/swift_converted.safetensors")
        }
    }

    @Test func replacesAtomicallyAndLeavesNoTemporaryFiles() throws {
        let dir = try makeTempDir()
        let path = dir + "/m.safetensors"
        try SafeTensorsWriter.write([TensorToWrite(name: "a", shape: [2], floats: [1, 2])], to: path)
        try SafeTensorsWriter.write([TensorToWrite(name: "b", shape: [1], floats: [3])], to: path)
        #expect(try SafeTensorsFile(path: path).names == ["b"])
        // A failing tensor leaves the previous file as it was, and no temporary file behind.
        let before = try readBytes(path)
        let bad = TensorToWrite(name: "c", dtype: .f32, shape: [2]) { _ in
            throw SafeTensorsError.invalidTensor(tensor: "c", reason: "test failure")
        }
        expectError(["'c'", "test failure"]) { try SafeTensorsWriter.write([bad], to: path) }
        #expect(try readBytes(path) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.safetensors"])
    }

    @Test func rejectsInconsistentTensors() throws {
        let dir = try makeTempDir()
        let p = dir + "/x.safetensors"
        expectError(["'w'", "3 bytes", "needs 8"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "w", dtype: .f32, shape: [2], bytes: [1, 2, 3])], to: p)
        }
        expectError(["'w'", "3 values", "holds 2"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "w", shape: [2], floats: [1, 2, 3])], to: p)
        }
        expectError(["'d'", "twice"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "d", shape: [1], floats: [1]),
                                         TensorToWrite(name: "d", shape: [1], floats: [1])], to: p)
        }
        expectError(["__metadata__", "reserved"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "__metadata__", shape: [1], floats: [1])], to: p)
        }
        expectError(["'i'", "cannot store Float values as I32"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "i", shape: [1], floats: [1], as: .i32)], to: p)
        }
        expectError(["'big'", "too large"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "big", dtype: .f32, shape: [1 << 40, 1 << 30], bytes: [])], to: p)
        }
        expectError(["no/such/folder", "temporary file"]) {
            try SafeTensorsWriter.write([TensorToWrite(name: "a", shape: [1], floats: [1])], to: dir + "/no/such/folder/x.safetensors")
        }
        #expect(!FileManager.default.fileExists(atPath: p))
    }

    @Test func writesAnEmptyFile() throws {
        let dir = try makeTempDir()
        try SafeTensorsWriter.write([], to: dir + "/e.safetensors")
        let f = try SafeTensorsFile(path: dir + "/e.safetensors")
        #expect(f.tensors.isEmpty && f.metadata == ["format": "pt"])
    }
}

@Suite struct RewriteInPlaceTests {
    /// Saving over the file (or shards) the tensors are being read from works: the old inode
    /// stays mapped until the views go, the new file replaces it by rename.
    @Test func overwriteTheSourceFileAndShards() throws {
        let dir = try makeTempDir()
        let path = dir + "/m.safetensors"
        try SafeTensorsWriter.write([TensorToWrite(name: "a", shape: [3], floats: [1, 2, 3]),
                                     TensorToWrite(name: "b", shape: [2], floats: [4, 5])], to: path)
        let src = try SafeTensorsFile(path: path)
        try SafeTensorsWriter.write(src.tensors.map { TensorToWrite(converting: $0, to: .bf16) }, to: path)
        #expect(try SafeTensorsFile(path: path).tensor("a").dtype == .bf16)
        #expect(try SafeTensorsFile(path: path).tensor("b").floats() == [4, 5])

        let store = try SafeTensorsStore(path: fixtures.appendingPathComponent("tiny-qwen2").path)
        try SafeTensorsWriter.writeSharded(store.tensors.map { TensorToWrite(copying: $0) }, toFolder: dir + "/model", maxShardSize: 4000)
        let sharded = try SafeTensorsStore(path: dir + "/model")
        try SafeTensorsWriter.writeSharded(sharded.tensors.map { TensorToWrite(copying: $0) }, toFolder: dir + "/model", maxShardSize: 9000)
        let again = try SafeTensorsStore(path: dir + "/model")
        #expect(again.files.count < sharded.files.count)
        for t in store.tensors { #expect(again[t.name]!.byteArray() == t.byteArray()) }
    }
}
