import ArgumentParser
import Foundation
import Training
import Distributed
import QwenCore

/// Set by SIGINT/SIGTERM: the run finishes its step, saves a checkpoint and exits.
nonisolated(unsafe) private var trainStopRequested: Int32 = 0

/// `qwenft train`: the loop of the Training library, with its progress drawn on the console.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune a Qwen2 model (LoRA or full) from a JSON training config.",
        discussion: """
            Keys are transformers' TrainingArguments / Firefly's train_args names (see Configs/README.md). \
            Any key can be overridden after the config: qwenft train --config c.json --learning_rate 1e-4 --max_steps 50 \
            (--device cpu|cuda[:N] sets the device key; this build runs on the CPU only). \
            Writes output_dir/training_config.json (the resolved config), trainer_log.jsonl, checkpoint-N/ folders, \
            and the final PEFT adapter (or the full model). Ctrl-C saves a checkpoint and stops; \
            --resume_from_checkpoint true continues from the latest.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Training config (JSON).")
    var config: String

    @Argument(parsing: .allUnrecognized, help: "--KEY VALUE overrides of config keys.")
    var overrides: [String] = []

    func run() throws {
        global.apply()
        // Under mpirun / srun: one rank of a job (MPI is initialised only then). Threads default
        // to this rank's share of the cores (Launch.defaultThreads) unless --threads or QWENFT_THREADS.
        let comm = try makeCommunicator()
        if comm.size > 1, global.threads == nil, ProcessInfo.processInfo.environment["QWENFT_THREADS"] == nil {
            Threading.configure(threads: Launch.defaultThreads())
        }
        guard let mpi = comm as? MPICommunicator else { return try train(comm) }
        // An error on one rank would leave the others waiting in a collective: say which rank
        // failed and why, then end every rank (MPI_Abort), never exit 0 alone.
        do { try train(comm) } catch {
            let text = String(describing: error)
            FileHandle.standardError.write(Data("qwenft: error: rank \(comm.rank) of \(comm.size): \(text)\n".utf8))
            mpi.abort(status: 1)
        }
    }

    private func train(_ comm: Communicator) throws {
        let main = comm.isMain
        let cfg = try TrainingConfig.load(path: config, overrides: try TrainingConfig.parseOverrides(overrides), worldSize: comm.size)
        if main {
            print("qwenft train: resolved config")
            print(cfg.resolvedJSON().prettyText)
            for note in cfg.notes { print("note: \(note)") }
            if comm.size > 1 { print("note: \(comm.size) ranks, \(Threading.count) compute threads each") }
        }

        // A parent may have left these blocked (the mask is inherited): unblock them so Ctrl-C
        // and `kill` reach the handler.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in trainStopRequested = 1; signal(SIGINT, SIG_DFL) }
        signal(SIGTERM) { _ in trainStopRequested = 1; signal(SIGTERM, SIG_DFL) }
        // mpirun forwards SIGUSR1 to every rank without killing them (its SIGTERM/SIGINT kill the
        // ranks a second later): the clean way to stop a job whose steps take longer.
        signal(SIGUSR1) { _ in trainStopRequested = 1 }
        let console = TrainConsole(terminal: isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb")
        let options = TrainerOptions(templatesFolder: Self.templatesFolder(), cacheDirectory: Self.cacheDirectory(), communicator: comm)
        let trainer = try Trainer(config: cfg, options: options) { console.handle($0) }
        let summary = try trainer.train(shouldStop: { trainStopRequested != 0 })
        if summary.interrupted || !main { return }
        print(String(format: "done: %d steps in %.1f s, mean loss %.6f, %.0f tokens/s; saved %@",
                     summary.globalStep, summary.seconds, summary.meanLoss, summary.tokensPerSecond, summary.outputPath ?? ""))
    }

    /// Templates/ for template_name: $QWENFT_TEMPLATES, ./Templates, or beside the binary up the tree.
    static func templatesFolder() -> String? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["QWENFT_TEMPLATES"], !env.isEmpty { return env }
        var candidates = [fm.currentDirectoryPath + "/Templates"]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir.appendingPathComponent("Templates").path)
            dir = dir.deletingLastPathComponent()
        }
        return candidates.first { var d: ObjCBool = false; return fm.fileExists(atPath: $0, isDirectory: &d) && d.boolValue }
    }

    /// The tokenised-dataset cache: $QWENFT_CACHE ("none" turns it off), else ~/.cache/qwenft/datasets.
    static func cacheDirectory() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let c = env["QWENFT_CACHE"], !c.isEmpty { return c == "none" ? nil : c }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache")
        return base + "/qwenft/datasets"
    }
}

/// Draws trainer events: log lines on stdout, warnings on stderr, and on a terminal a progress
/// line with ETA on stderr, redrawn in place.
final class TrainConsole {
    let terminal: Bool
    private var barShown = false

    init(terminal: Bool) { self.terminal = terminal }

    func handle(_ event: TrainerEvent) {
        switch event {
        case let .note(s): line("\(s)")
        case let .warning(s): clearBar(); FileHandle.standardError.write(Data("qwenft: warning: \(s)\n".utf8))
        case let .preprocessing(p):
            if terminal { bar(String(format: "tokenising %d/%d records, %d tokens", p.recordsDone, p.recordsTotal, p.tokens)) }
        case let .started(plan):
            line("training: \(plan.mode); \(plan.trainableParameters) trainable parameters; \(plan.totalSteps) steps "
                + "(\(plan.stepsPerEpoch) per epoch: \(plan.microBatchesPerEpoch) micro-batches, accumulation \(plan.gradientAccumulationSteps))"
                + (plan.startStep > 0 ? "; starting at step \(plan.startStep)" : ""))
        case let .step(s):
            guard terminal else { return }
            let width = 24
            let filled = s.totalSteps > 0 ? width * s.step / s.totalSteps : width
            bar("[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
                + String(format: "%d/%d loss %.4f elapsed %@ eta %@", s.step, s.totalSteps, s.loss, Self.clock(s.elapsed), Self.clock(s.eta)))
        case let .log(r):
            line(String(format: "step %d  loss %.6f  learning_rate %.6e  grad_norm %.6f  epoch %.2f  tokens/s %.1f",
                        r.step, r.loss, r.learningRate, r.gradNorm, r.epoch, r.tokensPerSecond)
                 + r.extra.map { String(format: "  %@ %.4f", $0.0, $0.1) }.joined())
        case let .evaluation(e) where !e.extra.isEmpty:
            line(String(format: "eval  step %d  eval_loss %.6f", e.step, e.loss)
                 + e.extra.map { String(format: "  eval_%@ %.4f", $0.0, $0.1) }.joined() + String(format: "  (%.1f s)", e.seconds))
        case let .evaluation(e):
            line(String(format: "eval  step %d  eval_loss %.6f  eval_token_accuracy %.4f  tokens %d  (%.1f s)",
                        e.step, e.loss, e.tokenAccuracy, e.tokens, e.seconds))
        case let .checkpoint(path, _): line("saved \(path)")
        case .finished: clearBar()
        }
    }

    private func line(_ s: String) {
        clearBar()
        print(s)
        fflush(stdout)
    }

    private func bar(_ s: String) {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(s)".utf8))
        barShown = true
    }

    private func clearBar() {
        if barShown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)); barShown = false }
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
