// Where the tests write their files: one folder per test process, removed when the process
// exits. Swift Testing has no global teardown, so an atexit handler removes it; a test that
// cleans up after itself may still remove its own folder early.

import Foundation

public enum Scratch {
    /// `$TMPDIR/qwenft-tests-<pid>-<random>`, made on first use; removed at exit.
    public static let root: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("qwenft-tests-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return url
    }()

    /// A new empty folder under the root, named `prefix-<uuid>`.
    public static func folder(_ prefix: String) throws -> URL {
        let url = root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A fresh path under the root for one file, named `prefix-<uuid>suffix` (not created).
    public static func file(_ prefix: String, suffix: String = "") -> URL {
        root.appendingPathComponent("\(prefix)-\(UUID().uuidString)\(suffix)")
    }
}
