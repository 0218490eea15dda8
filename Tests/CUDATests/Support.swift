import CUDA
import Foundation
import TestSupport

/// The NVRTC folders Scripts/fetch-nvrtc.sh fills (Scripts/test.sh runs it, so CI has both):
/// QWENFT_TEST_NVRTC13 / QWENFT_TEST_NVRTC12 when set, else .cache/nvrtc/13 and /12 of this
/// checkout. nil when the folder holds no libnvrtc.
func nvrtcFolder(_ major: Int) -> String? {
    let dir = nvrtcFolderPath(major)
    return FileManager.default.fileExists(atPath: dir + "/libnvrtc.so.\(major)") ? dir : nil
}

func nvrtcFolderPath(_ major: Int) -> String {
    if let fromEnv = ProcessInfo.processInfo.environment["QWENFT_TEST_NVRTC\(major)"], !fromEnv.isEmpty { return fromEnv }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return packageRoot.appendingPathComponent(".cache/nvrtc/\(major)").path
}

/// Whether the NVRTC tests run: the folder holds NVRTC, or QWENFT_TEST_NVRTC<major> names one
/// (as Scripts/test.sh does; a missing library then fails the tests instead of skipping them).
/// Without either they are skipped, with the reason in the test's trait.
func nvrtcExpected(_ major: Int) -> Bool {
    nvrtcFolder(major) != nil || ProcessInfo.processInfo.environment["QWENFT_TEST_NVRTC\(major)"].map { !$0.isEmpty } == true
}

/// NVRTC loaded from exactly one folder (no loader path, no wheels).
func nvrtc(_ major: Int) throws -> NVRTCLibrary {
    guard let dir = nvrtcFolder(major) else {
        throw SkipReason("no libnvrtc.so.\(major) in \(nvrtcFolderPath(major)): run Scripts/fetch-nvrtc.sh")
    }
    return try NVRTCLibrary.load(CUDALibrarySearch(libraryDirs: [dir], wheelLibraryDirs: [], includeSonames: false))
}

struct SkipReason: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh empty folder under the temporary directory.
func temporaryFolder(_ name: String) throws -> URL {
    try Scratch.folder("qwenft-cuda-\(name)")
}

func touch(_ url: URL, _ contents: String = "") throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(contents.utf8).write(to: url)
}
