import CUDA
import Foundation

/// The NVRTC folders Scripts/fetch-nvrtc.sh fills (Scripts/test.sh runs it, so CI has both):
/// QWENFT_TEST_NVRTC13 / QWENFT_TEST_NVRTC12 when set, else .cache/nvrtc/13 and /12 of this
/// checkout. nil when the folder holds no libnvrtc (the tests that need it are then skipped, with
/// the reason in the test's name).
func nvrtcFolder(_ major: Int) -> String? {
    let fromEnv = ProcessInfo.processInfo.environment["QWENFT_TEST_NVRTC\(major)"]
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let dir = fromEnv ?? packageRoot.appendingPathComponent(".cache/nvrtc/\(major)").path
    return FileManager.default.fileExists(atPath: dir + "/libnvrtc.so.\(major)") ? dir : nil
}

/// NVRTC loaded from exactly one folder (no loader path, no wheels).
func nvrtc(_ major: Int) throws -> NVRTCLibrary {
    guard let dir = nvrtcFolder(major) else { throw SkipReason("no NVRTC \(major): run Scripts/fetch-nvrtc.sh") }
    return try NVRTCLibrary.load(CUDALibrarySearch(libraryDirs: [dir], wheelLibraryDirs: [], includeSonames: false))
}

struct SkipReason: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh empty folder under the temporary directory.
func temporaryFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("qwenft-cuda-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func touch(_ url: URL, _ contents: String = "") throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(contents.utf8).write(to: url)
}
