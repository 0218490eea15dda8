import Foundation
import Testing

/// Tests/TrainingTests/Fixtures/<name>
func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
}

/// Decodes a golden JSON file written by a Scripts/fixtures/*.py generator.
func loadFixture<T: Decodable>(_ name: String, as: T.Type) throws -> T {
    let data = try Data(contentsOf: fixtureURL(name))
    return try JSONDecoder().decode(T.self, from: data)
}

/// |a - b| / max(|b|, floor)
func relativeError(_ a: Double, _ b: Double, floor: Double = 1e-30) -> Double {
    abs(a - b) / max(abs(b), floor)
}
