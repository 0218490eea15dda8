import Foundation
import Testing
@testable import SafeTensors
import QwenCore

/// Every malformed file is a `SafeTensorsError` naming the file (and tensor), never a crash.
@Suite struct BadFileTests {
    let good = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}"#
    let goodData = [UInt8](repeating: 0, count: 12)

    /// Writes `bytes` as bad.safetensors in a fresh folder and expects opening it to fail with
    /// a message holding the file name and each fragment.
    func expectBad(_ bytes: [UInt8], _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = try makeTempDir() + "/bad.safetensors"
        try writeBytes(bytes, to: path)
        expectError(["bad.safetensors"] + fragments, sourceLocation: sourceLocation) { _ = try SafeTensorsFile(path: path) }
        expectError(["bad.safetensors"] + fragments, sourceLocation: sourceLocation) { _ = try SafeTensorsStore(path: path) }
    }

    @Test func theGoodFileIsGood() throws {
        let path = try makeTempDir() + "/good.safetensors"
        try writeBytes(rawFile(header: good, data: goodData), to: path)
        #expect(try SafeTensorsFile(path: path).names == ["a", "b"])
    }

    @Test func truncated() throws {
        try expectBad([], ["truncated", "0 bytes"])
        try expectBad([8, 0, 0], ["truncated", "3 bytes"])
        try expectBad([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], ["header length is 0"])
        // The data buffer cut short: the last tensor's range now reaches past the end.
        let full = rawFile(header: good, data: goodData)
        try expectBad(Array(full.dropLast(2)), ["'b'", "data_offsets [8, 12]", "10-byte data buffer"])
    }

    @Test func headerLengthPastTheEnd() throws {
        try expectBad(rawFile(header: good, data: goodData, lengthOverride: 10_000), ["header length 10000", "past the end"])
        try expectBad(rawFile(header: good, data: [], lengthOverride: UInt64.max), ["exceeds the 100 MB limit"])
        try expectBad(rawFile(header: good, data: [], lengthOverride: 100_000_001), ["100 MB"])
    }

    @Test func badJSON() throws {
        try expectBad(rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"#, data: goodData), ["not valid JSON", "header byte"])
        try expectBad(rawFile(header: #"{"a":1,"a":2}"#, data: []), ["not valid JSON", "duplicate key \"a\""])
        try expectBad(rawFile(header: "[1,2]", data: []), ["the header is an array, expected a JSON object"])
        try expectBad(rawFile(header: String(repeating: "[", count: 100_000), data: []), ["nested deeper"])
        try expectBad(rawFile(header: "{}x", data: []), ["unexpected text"])
        var invalidUTF8 = Array(#"{"x":1}"#.utf8)
        invalidUTF8[2] = 0xFF  // a key that is not UTF-8
        var bytes: [UInt8] = []
        var n = UInt64(invalidUTF8.count)
        for _ in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
        try expectBad(bytes + invalidUTF8, ["not valid JSON"])
    }

    @Test func unknownDType() throws {
        let h = #"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#
        try expectBad(rawFile(header: h, data: [0, 0]), ["'w'", "unknown dtype \"F8_E4M3\"", "BF16"])
        let h2 = #"{"w":{"dtype":7,"shape":[2],"data_offsets":[0,2]}}"#
        try expectBad(rawFile(header: h2, data: [0, 0]), ["'w'", "\"dtype\" is a number"])
    }

    @Test func shapeSizeMismatch() throws {
        let h = #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        try expectBad(rawFile(header: h, data: goodData.prefix(8) + []), ["'w'", "shape [3] of F32 needs 12 bytes", "span 8"])
        let huge = #"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#
        try expectBad(rawFile(header: huge, data: Array(goodData.prefix(8))), ["'w'", "span 8"])
        let negative = #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#
        try expectBad(rawFile(header: negative, data: []), ["'w'", "non-negative integers", "-1"])
        let fractional = #"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}"#
        try expectBad(rawFile(header: fractional, data: []), ["'w'", "1.5"])
        let noShape = #"{"w":{"dtype":"F32","data_offsets":[0,0]}}"#
        try expectBad(rawFile(header: noShape, data: []), ["'w'", "\"shape\" is missing"])
    }

    @Test func rangeOutsideTheBuffer() throws {
        let h = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        try expectBad(rawFile(header: h, data: goodData), ["'w'", "[0, 16]", "12-byte data buffer"])
        let reversed = #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#
        try expectBad(rawFile(header: reversed, data: goodData), ["'w'", "0 ≤ begin ≤ end", "[8,4]"])
        let three = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#
        try expectBad(rawFile(header: three, data: goodData), ["'w'", "data_offsets"])
    }

    @Test func overlappingRanges() throws {
        let h = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        try expectBad(rawFile(header: h, data: goodData), ["'a'", "'b'", "overlapping"])
        let empty = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#
        try expectBad(rawFile(header: empty, data: goodData), ["'z'", "overlapping"])
    }

    @Test func gapsAndTrailingBytes() throws {
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        try expectBad(rawFile(header: gap, data: goodData), ["bytes 4..<8", "belong to no tensor"])
        let trailing = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        try expectBad(rawFile(header: trailing, data: goodData), ["bytes 8..<12"])
    }

    @Test func badMetadata() throws {
        let h = #"{"__metadata__":{"format":1}}"#
        try expectBad(rawFile(header: h, data: []), ["__metadata__ key 'format'", "a number, expected a string"])
        try expectBad(rawFile(header: #"{"__metadata__":"pt"}"#, data: []), ["__metadata__", "a string, expected an object"])
    }

    @Test func entryNotAnObject() throws {
        try expectBad(rawFile(header: #"{"w":[1,2]}"#, data: []), ["'w'", "entry is an array"])
    }

    @Test func notARegularFile() throws {
        let dir = try makeTempDir()
        expectError([dir, "not a regular file"]) { _ = try SafeTensorsFile(path: dir) }
        expectError(["/no/such.safetensors", "no such file"]) { _ = try SafeTensorsFile(path: "/no/such.safetensors") }
    }

    /// Every prefix of a valid file and many random corruptions either open or throw; none crash.
    @Test func truncationsAndCorruptionsNeverCrash() throws {
        let dir = try makeTempDir()
        let full = rawFile(header: good, data: goodData)
        for cut in 0..<full.count {
            let path = dir + "/cut.safetensors"
            try writeBytes(Array(full.prefix(cut)), to: path)
            #expect(throws: SafeTensorsError.self) { _ = try SafeTensorsFile(path: path) }
        }
        var rng = SystemRandomNumberGenerator()
        var opened = 0
        for _ in 0..<400 {
            var bytes = full
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let path = dir + "/fuzz.safetensors"
            try writeBytes(bytes, to: path)
            do {
                let f = try SafeTensorsFile(path: path)
                for t in f.tensors where t.dtype.isFloatStorage { _ = try t.floats() }
                opened += 1
            } catch {
                // typed throws: only SafeTensorsError can arrive here
            }
        }
        #expect(opened < 400)
    }
}
