import Foundation
import Testing
@testable import SafeTensors
import QwenCore
import TestSupport

/// Committed fixtures (Scripts/fixtures/safetensors_interop.py).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A fresh temporary folder for one test.
func makeTempDir() throws -> String {
    try Scratch.folder("qwenft-st").path
}

func readBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
    while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}

/// A safetensors file from a header text and a data buffer: the length prefix is the header's.
func rawFile(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var n = lengthOverride ?? UInt64(h.count)
    var out: [UInt8] = []
    for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
    return out + h + data
}

/// One tensor described by all_dtypes.json.
struct DescribedTensor {
    var name: String
    var dtype: String
    var shape: [Int]
    var bytes: [UInt8]
    var f32Bits: [UInt32]?
}

func loadDescription() throws -> [DescribedTensor] {
    let data = try Data(contentsOf: fixtures.appendingPathComponent("python/all_dtypes.json"))
    let items = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    return try items.map { item in
        DescribedTensor(
            name: try #require(item["name"] as? String),
            dtype: try #require(item["dtype"] as? String),
            shape: try #require(item["shape"] as? [Int]),
            bytes: hexBytes(try #require(item["hex"] as? String)),
            f32Bits: (item["f32_bits"] as? [Int])?.map { UInt32($0) })
    }
}

/// Where the interop check wants our files (see Scripts/fixtures/safetensors_interop.py), if set.
let interopOut: String? = ProcessInfo.processInfo.environment["QWENFT_INTEROP_OUT"]

/// Expects `body` to throw a SafeTensorsError whose description contains every fragment.
func expectError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let e as SafeTensorsError {
        for f in fragments {
            #expect(e.description.contains(f), "\"\(e.description)\" lacks \"\(f)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}
