import Foundation
import Qwen2
import Testing
@testable import Training

/// A size-limited tmpfs mounted for one test: the only way to make a real "no space left on
/// device" happen at a chosen moment. Needs root (CAP_SYS_ADMIN); `mount` returns nil elsewhere.
final class SmallDisk {
    let path: String
    private var mounted = true

    private init(path: String) { self.path = path }

    /// Mounts a tmpfs of `bytes` at a fresh folder, or nil where mounting is not allowed.
    static func mount(bytes: Int) throws -> SmallDisk? {
        guard geteuid() == 0 else { return nil }
        let path = try trainerTempDir() + "/disk"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard run(["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path]) else { return nil }
        return SmallDisk(path: path)
    }

    /// Whether this process may mount a tmpfs (tried once, on a 1 MiB one).
    static let allowed: Bool = {
        guard let probe = try? mount(bytes: 1 << 20) else { return false }
        probe.unmount()
        return true
    }()

    /// Changes the size limit in place (files stay); the new size must hold what is stored.
    func resize(_ bytes: Int) -> Bool { Self.run(["-o", "remount,size=\(bytes)", path]) }

    /// Bytes in use, as the file system counts them (whole pages).
    var used: Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return Int(s.f_blocks - s.f_bfree) * Int(s.f_frsize)
    }

    func unmount() {
        guard mounted else { return }
        mounted = false
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = [path]
        try? p.run()
        p.waitUntilExit()
    }

    deinit { unmount() }

    private static func run(_ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}

/// Bytes of the regular files under `folder`.
private func folderBytes(_ folder: String) -> Int {
    let fm = FileManager.default
    var total = 0
    for name in (fm.subpaths(atPath: folder) ?? []) {
        let attrs = try? fm.attributesOfItem(atPath: (folder as NSString).appendingPathComponent(name))
        if attrs?[.type] as? FileAttributeType == .typeRegular { total += (attrs?[.size] as? Int) ?? 0 }
    }
    return total
}

@Suite(.serialized) struct FullDiskTests {
    static let steps = 3

    /// The adapter of the same run on a roomy disk, made once.
    nonisolated(unsafe) static var straightAdapter: Data?

    static func straight() throws -> Data {
        if let a = straightAdapter { return a }
        let out = try trainerTempDir() + "/run"
        _ = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(steps)), ("save_steps", .int(1))])).train()
        let a = try fileBytes(out + "/adapter_model.safetensors")
        straightAdapter = a
        return a
    }

    /// output_dir on a disk that fills while checkpoint-2 is written, with `room` of a checkpoint's
    /// size left free (0: the first file fails; 0.5: a later one does): the run stops with an
    /// error that says "No space left" and names checkpoint-2; checkpoint-1 stays complete and
    /// loadable; nothing named checkpoint-2 (nor its temporary folder) is left; once there is
    /// room again, resume_from_checkpoint continues from checkpoint-1 to the same adapter, byte
    /// for byte, as a run that never ran out of space.
    @Test(.enabled(if: SmallDisk.allowed, "mounting a tmpfs needs root (CAP_SYS_ADMIN): the full-disk test is skipped"),
          arguments: [0.0, 0.5])
    func fullDiskDuringSecondCheckpoint(room: Double) throws {
        guard let disk = try SmallDisk.mount(bytes: 256 << 20) else {
            try Test.cancel("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): the full-disk test did not run")
        }
        defer { disk.unmount() }
        let out = disk.path + "/run"
        let config = try TrainerFixture.config(output: out, [("max_steps", .int(Self.steps)), ("save_steps", .int(1))])
        var warnings: [String] = []
        let trainer = try Trainer(config: config) { e in
            switch e {
            case let .checkpoint(path, 1):
                // Leave `room` of a checkpoint free (tmpfs counts whole pages: at least one stays free).
                _ = disk.resize(disk.used + Int(Double(folderBytes(path)) * room))
            case let .warning(w):
                warnings.append(w)
            default: break
            }
        }
        var message = ""
        do {
            _ = try trainer.train()
            Issue.record("the run should stop at checkpoint-2")
        } catch {
            message = "\(error)"
        }
        #expect(message.contains("No space left on device"), "\(message)")
        #expect(message.contains(out + "/checkpoint-2"), "\(message)")
        #expect(message.contains("--resume_from_checkpoint"), "\(message)")

        let names = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(!names.contains { $0.contains("checkpoint-2") }, "\(names.sorted())")
        #expect(Checkpoints.list(in: out).map(\.step) == [1])
        let f = try TrainerFixture.folders()
        let cfg = try Qwen2Config.load(URL(fileURLWithPath: f.model + "/config.json"))
        _ = try ModelFolder.loadAdapter(out + "/checkpoint-1", config: cfg)
        let state = try JSONValue.parse(String(contentsOfFile: out + "/checkpoint-1/trainer_state.json", encoding: .utf8))
        #expect(state["global_step"] == .int(1))

        #expect(disk.resize(256 << 20))
        let resumed = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(Self.steps)), ("save_steps", .int(1)),
                                                                                  ("resume_from_checkpoint", .bool(true))]))
        #expect(resumed.plan.startStep == 1)
        let r = try resumed.train()
        #expect(r.globalStep == Self.steps && !r.interrupted)
        #expect(Checkpoints.list(in: out).map(\.step) == [1, 2, 3])
        #expect(try fileBytes(out + "/adapter_model.safetensors") == Self.straight())
        #expect(warnings.isEmpty, "\(warnings)")
    }

    /// A trainer_log.jsonl that cannot be appended to (here /dev/full, which is always full) is
    /// one warning naming the file, not a crash; the run goes on and its history is complete in
    /// trainer_state.json. Needs no root.
    @Test func failedLogAppendIsOneWarning() throws {
        let out = try trainerTempDir() + "/run"
        var warnings: [String] = []
        let trainer = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(2)), ("save_steps", .int(100))])) { e in
            if case let .warning(w) = e { warnings.append(w) }
        }
        try FileManager.default.removeItem(atPath: out + "/trainer_log.jsonl")
        try FileManager.default.createSymbolicLink(atPath: out + "/trainer_log.jsonl", withDestinationPath: "/dev/full")
        let r = try trainer.train()
        #expect(r.globalStep == 2)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains(out + "/trainer_log.jsonl: No space left on device") == true, "\(warnings)")
        let state = try JSONValue.parse(String(contentsOfFile: out + "/trainer_state.json", encoding: .utf8))
        guard case let .array(history)? = state["log_history"] else { Issue.record("no log_history"); return }
        #expect(history.count == 3)  // two steps and the summary
    }
}
