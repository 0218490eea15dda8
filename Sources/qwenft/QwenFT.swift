import ArgumentParser
import Foundation
import QwenCore

@main
struct QwenFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qwenft",
        abstract: "Fine-tune, run and inspect Qwen2-family language models.",
        version: "0.1.0",
        subcommands: [
            InspectCommand.self,
            TokenizeCommand.self,
            TemplateCommand.self,
            InitCommand.self,
            GenerateCommand.self,
            ChatCommand.self,
            EvalCommand.self,
            TrainCommand.self,
            MergeCommand.self,
            QuantizeCommand.self,
            EnvCommand.self,
        ])

    /// Runs the command; every error ends as `qwenft: error: …` on stderr with exit status 1
    /// (help and version requests print to stdout and exit 0).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("qwenft: error: \(describe(error))\n".utf8))
            Foundation.exit(1)
        }
    }

    /// ArgumentParser's message for a usage error (without its "Error: " prefix), or the
    /// library error's own description.
    private static func describe(_ error: Error) -> String {
        var s = fullMessage(for: error)
        if s.hasPrefix("Error: ") { s.removeFirst("Error: ".count) }
        return s.isEmpty ? String(describing: error) : s
    }
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Compute threads (BLAS and kernels). Default: QWENFT_THREADS or the core count.")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Applies the thread count to our loops and to OpenBLAS.
    func apply() { Threading.configure(threads: threads) }
}

/// An error of the command-line layer: bad flags combinations, unreadable inputs.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
