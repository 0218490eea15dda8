import Foundation
import Testing
@testable import SafeTensors
import QwenCore

@Suite struct ReaderTests {
    @Test func readsEveryTensorPythonWroteWithIdenticalBytes() throws {
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        let described = try loadDescription()
        #expect(file.metadata == ["format": "pt"])
        #expect(Set(file.names) == Set(described.map(\.name)))
        for d in described {
            let t = try file.tensor(d.name)
            #expect(t.dtype.safetensorsName == d.dtype, "\(d.name)")
            #expect(t.shape == d.shape, "\(d.name)")
            #expect(t.byteArray() == d.bytes, "\(d.name)")
            #expect(t.elementCount == d.shape.reduce(1, *))
            if let bits = d.f32Bits {
                #expect(try t.floats().map(\.bitPattern) == bits, "\(d.name) widened as torch's .float()")
            }
        }
    }

    @Test func zeroDimensionalAndEmptyTensors() throws {
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        let scalar = try file.tensor("scalar.f32")
        #expect(scalar.shape == [] && scalar.elementCount == 1 && scalar.byteCount == 4)
        #expect(try scalar.floats() == [2.5])
        #expect(try file.tensor("scalar.bf16").floats() == [-1.25])
        let empty = try file.tensor("empty.bf16")
        #expect(empty.shape == [2, 0] && empty.elementCount == 0 && empty.byteCount == 0)
        #expect(try empty.floats() == [])
    }

    @Test func zeroCopyViewsPointIntoTheMapping() throws {
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        let f32 = try file.tensor("f32.matrix")
        let p = try #require(f32.f32Pointer)
        #expect(Array(UnsafeBufferPointer(start: p, count: 24)) == (try f32.floats()))
        let bf = try file.tensor("bf16.matrix")
        #expect(bf.f32Pointer == nil)
        let h = try #require(bf.halfPointer)
        #expect(floatFromBF16(h[0]) == (try bf.floats())[0])
        // Views keep the file mapped after the file object is gone.
        var view: TensorView? = nil
        do { view = try SafeTensorsFile(path: file.path).tensor("f16.matrix") }
        #expect(try view!.floats() == (try file.tensor("f16.matrix").floats()))
    }

    @Test func fileWithoutMetadata() throws {
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/no_metadata.safetensors").path)
        #expect(file.metadata == nil)
        #expect(file.names.allSatisfy { $0.hasPrefix("f") })
    }

    @Test func integerTensorsAreNotFloats() throws {
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("python/all_dtypes.safetensors").path)
        expectError(["i64.ids", "I64", "all_dtypes.safetensors"]) { _ = try file.tensor("i64.ids").floats() }
        expectError(["no tensor named 'nope'", "all_dtypes.safetensors"]) { _ = try file.tensor("nope") }
    }

    @Test func misalignedTensorsStillConvert() throws {
        // A foreign writer may leave F32 data at an odd offset: header of odd length, no padding.
        let header = #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}"#
        let floats: [Float] = [1.5, -2]
        var data: [UInt8] = [7]
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { data += $0 } }
        let dir = try makeTempDir()
        try writeBytes(rawFile(header: header, data: data), to: dir + "/m.safetensors")
        let t = try SafeTensorsFile(path: dir + "/m.safetensors").tensor("b")
        #expect(try t.floats() == floats)
    }
}

@Suite struct ShapeCheckTests {
    @Test func shapesAreCheckedByName() throws {
        let store = try SafeTensorsStore(path: fixtures.appendingPathComponent("tiny-qwen2").path)
        #expect(try store.floats("model.norm.weight", shape: [16]).count == 16)
        expectError(["model-00002-of-00002.safetensors", "'model.norm.weight'", "shape [16]", "expects [32]"]) {
            _ = try store.floats("model.norm.weight", shape: [32])
        }
    }
}
