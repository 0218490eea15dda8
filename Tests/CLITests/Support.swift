import Foundation
import Testing
import TestSupport

/// What one run of the `qwenft` binary gave.
struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutData: Data
}

/// The built `qwenft`: `QWENFT_BIN` when set, else the binary beside this test bundle
/// (`swift build --build-tests` puts both in the same folder).
func qwenftBinary() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["QWENFT_BIN"] {
        return URL(fileURLWithPath: path)
    }
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    for _ in 0..<6 {
        dir = dir.deletingLastPathComponent()
        let candidate = dir.appendingPathComponent("qwenft")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDir), !isDir.boolValue {
            return candidate
        }
    }
    throw CLITestError("qwenft binary not found near \(CommandLine.arguments[0]); set QWENFT_BIN")
}

struct CLITestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs `qwenft args…`, feeding `stdin` if given, and collects its output.
@discardableResult
func runQwenft(_ args: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws -> RunResult {
    let process = Process()
    process.executableURL = try qwenftBinary()
    process.arguments = args
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe(), err = Pipe(), inp = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inp
    try process.run()
    // Read both pipes concurrently so a chatty child never blocks on a full pipe.
    nonisolated(unsafe) var errData = Data()
    let errThread = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    errThread.start()
    if let stdin { inp.fileHandleForWriting.write(stdin) }
    try? inp.fileHandleForWriting.close()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while errThread.isExecuting || !errThread.isFinished { usleep(1000) }
    return RunResult(status: process.terminationStatus,
                     stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData, as: UTF8.self),
                     stdoutData: outData)
}

/// A fresh temporary folder for one test.
func makeTempDir() throws -> URL {
    try Scratch.folder("qwenft-test")
}

/// The folder of committed fixtures for the CLI tests.
let cliFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

@Suite struct CLIBasics {
    @Test func helpListsTheProgram() throws {
        let r = try runQwenft(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("qwenft"))
    }

    @Test func unknownSubcommandIsAnErrorWithStatusOne() throws {
        let r = try runQwenft(["no-such-command"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("qwenft: error:"))
    }
}
