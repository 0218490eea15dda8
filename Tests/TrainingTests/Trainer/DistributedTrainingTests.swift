import Foundation
import Testing
import SafeTensors
@testable import Training
import Qwen2

// `mpirun -np N qwenft train` against one process at the global batch N·b, on the tiny model:
// per-step losses, grad norms and the final adapter / weights within 1e-5 relative, at ZeRO
// stages 0, 1 and 2, on a dataset that divides evenly and one that does not; resume at the same
// and at another world size; faults. Each run takes a second or two; they need Open MPI's
// mpirun and the built qwenft binary (swift build --build-tests puts it beside this bundle).

/// mpirun, and the qwenft binary beside this test bundle; nil (tests return) when either is missing.
enum MPIRun {
    static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static var qwenft: String? {
        if let p = ProcessInfo.processInfo.environment["QWENFT_BIN"] { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<6 {
            dir = dir.deletingLastPathComponent()
            let c = dir.appendingPathComponent("qwenft").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue { return c }
        }
        return nil
    }

    /// True inside a rank (this bundle run by mpirun): the launching tests stay out.
    static var insideRank: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    struct Result { var status: Int32; var output: String }

    /// `mpirun -np N qwenft train --config CONFIG ARGS…` (np 0: qwenft alone), killed after 120 s.
    /// `signal` (with `after`): sent to mpirun once the run's trainer_log.jsonl has a line.
    static func train(np: Int, config: String, _ args: [String], env: [String: String] = [:], mpmd: [String]? = nil,
                      workingDirectories: (String, String)? = nil, signal: (Int32, log: String)? = nil) throws -> Result {
        let bin = try #require(qwenft, "qwenft binary not found beside the test bundle; run swift build --build-tests")
        let p = Process()
        var argv = ["train", "--config", config, "--threads", "1"] + args
        if np == 0 {
            p.executableURL = URL(fileURLWithPath: bin)
        } else {
            p.executableURL = URL(fileURLWithPath: try #require(mpirun, "mpirun not found: install openmpi-bin"))
            let wdir = { (d: String?) in d.map { ["-wdir", $0] } ?? [] }
            argv = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "\(np)"] + wdir(workingDirectories?.0) + [bin] + argv
            if let extra = mpmd {
                argv += [":", "--allow-run-as-root", "-np", "1"] + wdir(workingDirectories?.1) + [bin] + ["train", "--config", config, "--threads", "1"] + extra
            }
        }
        p.arguments = argv
        p.environment = ProcessInfo.processInfo.environment.merging(["QWENFT_CACHE": "none"].merging(env) { $1 }) { $1 }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        // The test runner's threads block some signals and children inherit the mask: let
        // mpirun receive SIGUSR1 and the SIGTERM of the time limit.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGUSR1, SIGTERM, SIGINT] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        try p.run()
        nonisolated(unsafe) var data = Data()
        let reader = Thread { data = out.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let deadline = Date().addingTimeInterval(120)
        var signalled = false
        while p.isRunning && Date() < deadline {
            if let (sig, log) = signal, !signalled, let t = try? String(contentsOfFile: log, encoding: .utf8), !t.isEmpty {
                usleep(300_000)
                kill(p.processIdentifier, sig)
                signalled = true
            }
            usleep(20_000)
        }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}

/// A config file over the trainer fixture's tiny model; `records` of its samples (9: uneven).
struct MPISetup {
    let dir: String
    let config: String

    init(records: Int = 9, _ extra: [(String, JSONValue)] = []) throws {
        let f = try TrainerFixture.folders()
        dir = try trainerTempDir()
        let data = dir + "/data.jsonl"
        let lines = (0..<records).map { TrainerFixture.records[$0 % TrainerFixture.records.count] }
        try (lines.joined(separator: "\n") + "\n").write(toFile: data, atomically: true, encoding: .utf8)
        var pairs: [(String, JSONValue)] = [
            ("model_name_or_path", .string(f.model)), ("train_file", .string(data)), ("output_dir", .string(dir + "/out")),
            ("train_mode", .string("lora")), ("lora_rank", .int(4)), ("lora_alpha", .int(8)), ("lora_dropout", .double(0)),
            ("lora_target_modules", .string("all-linear")), ("per_device_train_batch_size", .int(2)),
            ("num_train_epochs", .int(2)), ("learning_rate", .double(1e-2)), ("lr_scheduler_type", .string("cosine")),
            ("warmup_steps", .int(1)), ("logging_steps", .int(1)), ("save_steps", .int(1000)), ("max_seq_length", .int(64)),
            ("seed", .int(5)), ("weight_decay", .double(0.01)),
        ]
        for (k, v) in extra {
            if let i = pairs.firstIndex(where: { $0.0 == k }) { pairs[i].1 = v } else { pairs.append((k, v)) }
        }
        config = dir + "/train.json"
        try JSONValue.object(pairs).prettyText.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func out(_ name: String) -> String { dir + "/" + name }
}

/// (loss, grad_norm) of every logged step.
func loggedSteps(_ outputDir: String) throws -> [Int: (loss: Double, norm: Double)] {
    let text = try String(contentsOfFile: outputDir + "/trainer_log.jsonl", encoding: .utf8)
    var out: [Int: (Double, Double)] = [:]
    for line in text.split(separator: "\n") {
        let v = try JSONValue.parse(String(line))
        if let s = v["step"]?.doubleValue, let l = v["loss"]?.doubleValue, let g = v["grad_norm"]?.doubleValue {
            out[Int(s)] = (l, g)
        }
    }
    return out
}

/// Expects equal step counts, losses and grad norms within `tol` relative, and every tensor of
/// `file` within `tol` of the tensor's largest magnitude (names in `skip` left out).
func expectSameTraining(_ a: String, _ b: String, file: String, tol: Double = 1e-5, elementTol: Double? = nil,
                        skip: (String) -> Bool = { _ in false }, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let la = try loggedSteps(a), lb = try loggedSteps(b)
    #expect(!la.isEmpty && la.keys.sorted() == lb.keys.sorted(), "steps \(la.keys.sorted()) vs \(lb.keys.sorted())", sourceLocation: sourceLocation)
    for (s, x) in la {
        guard let y = lb[s] else { continue }
        #expect(abs(x.loss - y.loss) <= tol * abs(x.loss), "step \(s) loss \(x.loss) vs \(y.loss)", sourceLocation: sourceLocation)
        #expect(abs(x.norm - y.norm) <= tol * abs(x.norm), "step \(s) grad_norm \(x.norm) vs \(y.norm)", sourceLocation: sourceLocation)
    }
    let fa = try SafeTensorsFile(path: a + "/" + file), fb = try SafeTensorsFile(path: b + "/" + file)
    #expect(fa.names.sorted() == fb.names.sorted(), sourceLocation: sourceLocation)
    for name in fa.names where !skip(name) {
        guard let tb = fb[name] else { continue }
        let x = try fa.tensor(name).floats(), y = try tb.floats()
        // Relative to the tensor's norm (‖Δ‖₂ ≤ tol·‖w‖₂), and no element off by more than 4·tol of the
        // largest magnitude: Adam's m/√v turns fp32 summation-order noise in near-zero gradients
        // into update differences of about tol × lr, which a purely elementwise bound would flag.
        let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let dNorm = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        let scale = x.reduce(Float(0)) { max($0, abs($1)) }
        let diff = zip(x, y).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(dNorm <= tol * max(norm, 1e-30), "\(name): ‖Δ‖ \(dNorm), ‖w‖ \(norm)", sourceLocation: sourceLocation)
        #expect(Double(diff) <= (elementTol ?? 4 * tol) * Double(max(scale, 1e-30)), "\(name): max |Δ| \(diff), max |w| \(scale)", sourceLocation: sourceLocation)
    }
}

@Suite(.serialized) struct DistributedTrainingTests {
    /// LoRA, np 2/3/4 against np 1 at the global batch, even and uneven datasets, stages 0–2.
    @Test func loraEqualsOneProcessAtTheGlobalBatch() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        // Even: 8 samples, global batch 4 → 2 full micro-batches an epoch.
        let even = try MPISetup(records: 8)
        #expect(try MPIRun.train(np: 0, config: even.config, ["--output_dir", even.out("np1"), "--per_device_train_batch_size", "4"]).status == 0)
        // With the dataset cache on: rank 0 builds it, rank 1 reads it.
        let r2 = try MPIRun.train(np: 2, config: even.config, ["--output_dir", even.out("np2")], env: ["QWENFT_CACHE": even.out("cache")])
        #expect(r2.status == 0, "\(r2.output)")
        try expectSameTraining(even.out("np1"), even.out("np2"), file: "adapter_model.safetensors")
        // Uneven: 9 samples. Global batch 6 → 6 + 3: np 3's last micro-batch leaves rank 2 empty.
        let odd = try MPISetup(records: 9)
        #expect(try MPIRun.train(np: 0, config: odd.config, ["--output_dir", odd.out("np1b6"), "--per_device_train_batch_size", "6"]).status == 0)
        let r3 = try MPIRun.train(np: 3, config: odd.config, ["--output_dir", odd.out("np3"), "--zero_stage", "1"])
        #expect(r3.status == 0, "\(r3.output)")
        try expectSameTraining(odd.out("np1b6"), odd.out("np3"), file: "adapter_model.safetensors")
        // Global batch 4 → 4 + 4 + 1: three of four ranks are empty at each epoch's end. Stages 0, 1, 2.
        #expect(try MPIRun.train(np: 0, config: odd.config, ["--output_dir", odd.out("np1b4"), "--per_device_train_batch_size", "4"]).status == 0)
        for stage in 0...2 {
            let r = try MPIRun.train(np: 4, config: odd.config, ["--output_dir", odd.out("np4z\(stage)"), "--per_device_train_batch_size", "1",
                                                                 "--zero_stage", "\(stage)"])
            #expect(r.status == 0, "\(r.output)")
            try expectSameTraining(odd.out("np1b4"), odd.out("np4z\(stage)"), file: "adapter_model.safetensors")
        }
        #expect(FileManager.default.fileExists(atPath: odd.out("np4z2") + "/adapter_config.json"))
    }

    /// Full fine-tuning with accumulation: np 2 × batch 1 × accumulation 2 at stage 2 against
    /// np 1 × batch 2 × accumulation 2. k_proj.bias is left out of the weight comparison: its
    /// gradient is zero in exact arithmetic (a key bias adds the same score to every key of a
    /// query, which softmax ignores), so AdamW turns rounding noise into lr-sized steps whose
    /// sign no two summation orders share (PyTorch shows the same).
    @Test func fullFineTuningEqualsOneProcess() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let s = try MPISetup(records: 9, [("train_mode", .string("full")), ("learning_rate", .double(1e-3)),
                                          ("gradient_accumulation_steps", .int(2)), ("num_train_epochs", .int(1))])
        #expect(try MPIRun.train(np: 0, config: s.config, ["--output_dir", s.out("np1")]).status == 0)
        let r = try MPIRun.train(np: 2, config: s.config, ["--output_dir", s.out("np2"), "--per_device_train_batch_size", "1", "--zero_stage", "2"])
        #expect(r.status == 0, "\(r.output)")
        try expectSameTraining(s.out("np1"), s.out("np2"), file: "model.safetensors", skip: { $0.hasSuffix("k_proj.bias") })
    }

    /// ZeRO-3 (trainable parameters and the LoRA base partitioned, each layer gathered when the
    /// pass reaches it) trains what stages 0–2 and one process train: np 4 and np 3 on 9 samples
    /// (uneven: ranks with no rows run the idle batch and still join every gather), LoRA and full
    /// fine-tuning, every tensor partitioned (persistence threshold 0, so the layers' flat ranges
    /// cross the rank slices unevenly) and with DeepSpeed's default threshold, with and without
    /// gradient checkpointing (which gathers each layer again in backward).
    @Test func stage3EqualsTheOtherStages() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let odd = try MPISetup(records: 9)
        let ds = odd.out("zero3.json")
        try #"{"gradient_clipping": 1.0, "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}}"#.write(toFile: ds, atomically: true, encoding: .utf8)
        #expect(try MPIRun.train(np: 0, config: odd.config, ["--output_dir", odd.out("np1b4"), "--per_device_train_batch_size", "4"]).status == 0)
        let z2 = try MPIRun.train(np: 4, config: odd.config, ["--output_dir", odd.out("z2"), "--per_device_train_batch_size", "1", "--zero_stage", "2"])
        #expect(z2.status == 0, "\(z2.output)")
        let z3 = try MPIRun.train(np: 4, config: odd.config, ["--output_dir", odd.out("z3"), "--per_device_train_batch_size", "1", "--deepspeed", ds])
        #expect(z3.status == 0, "\(z3.output)")
        #expect(!z3.output.contains("runs as stage 2") && z3.output.contains("ZeRO stage 3 over 4 ranks"), "\(z3.output)")
        try expectSameTraining(odd.out("np1b4"), odd.out("z3"), file: "adapter_model.safetensors")
        try expectSameTraining(odd.out("z2"), odd.out("z3"), file: "adapter_model.safetensors")
        #expect(try MPIRun.train(np: 0, config: odd.config, ["--output_dir", odd.out("np1b6"), "--per_device_train_batch_size", "6"]).status == 0)
        let z3b = try MPIRun.train(np: 3, config: odd.config, ["--output_dir", odd.out("z3b"), "--zero_stage", "3", "--gradient_checkpointing", "true"])
        #expect(z3b.status == 0, "\(z3b.output)")
        // An element whose gradient is about zero gets Adam updates set by fp32 noise more than by
        // the gradient: with the lm_head's d hidden summed chunk by chunk, one of
        // the 512 elements of layer 0's down_proj lora_A lands at 4.8e-5 of the tensor's largest
        // value (losses equal to 5e-9 relative, ‖Δ‖ ≤ 4e-6 ‖w‖), so elementwise 2e-4 here.
        try expectSameTraining(odd.out("np1b6"), odd.out("z3b"), file: "adapter_model.safetensors", elementTol: 2e-4)

        let full = try MPISetup(records: 9, [("train_mode", .string("full")), ("learning_rate", .double(1e-3)),
                                             ("gradient_accumulation_steps", .int(2)), ("num_train_epochs", .int(1))])
        #expect(try MPIRun.train(np: 0, config: full.config, ["--output_dir", full.out("np1"), "--per_device_train_batch_size", "4"]).status == 0)
        for (name, args) in [("z3", ["--deepspeed", ds]), ("z3ck", ["--zero_stage", "3", "--gradient_checkpointing", "true"])] {
            let r = try MPIRun.train(np: 4, config: full.config, ["--output_dir", full.out(name), "--per_device_train_batch_size", "1"] + args)
            #expect(r.status == 0, "\(r.output)")
            try expectSameTraining(full.out("np1"), full.out(name), file: "model.safetensors", skip: { $0.hasSuffix("k_proj.bias") })
        }
    }

    /// Stage 3 never gathers the embedding or lm_head whole: the lookup gathers the rows its
    /// tokens use, the head one vocab chunk at a time (at most a layer's elements), and full
    /// fine-tuning reduces their gradients chunk by chunk. The run's largest gather (printed at the
    /// end) stays far below the (V,C) embedding — 38.9 MB here, which the gather of the whole
    /// matrix would show — while the numbers equal one process's: full fine-tuning on an untied
    /// model (embedding and lm_head two tensors; np 2, and np 3 with a small prefetch bucket, so
    /// 594 head chunks of 256 rows, an uneven split and ranks with no rows) and LoRA over a base
    /// split in its stored dtype (np 4).
    @Test func stage3GathersTheVocabularyInPieces() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let dir = try trainerTempDir()
        var c = Qwen2Preset.tiny.config
        c.tieWordEmbeddings = false
        try initializeModelFolder(config: c, tokenizer: try trainerVocabulary(), out: dir + "/untied", seed: 4)
        let full = try MPISetup(records: 9, [("model_name_or_path", .string(dir + "/untied")), ("train_mode", .string("full")),
                                             ("learning_rate", .double(1e-3)), ("num_train_epochs", .int(1))])
        let embeddingBytes = Double(c.vocabSize * c.hiddenSize * 4) / 1e6
        func largestGather(_ output: String) -> Double? {
            guard let r = output.range(of: "largest gather ") else { return nil }
            return Double(output[r.upperBound...].prefix { $0.isNumber || $0 == "." })
        }
        #expect(try MPIRun.train(np: 0, config: full.config, ["--output_dir", full.out("np1"), "--per_device_train_batch_size", "6"]).status == 0)
        let ds = full.out("zero3.json")
        try #"{"gradient_clipping": 1.0, "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0, "stage3_prefetch_bucket_size": 16384}}"#
            .write(toFile: ds, atomically: true, encoding: .utf8)
        for (name, np, args) in [("z3", 2, ["--per_device_train_batch_size", "3", "--zero_stage", "3"]),
                                 ("z3small", 3, ["--per_device_train_batch_size", "2", "--deepspeed", ds])] {
            let r = try MPIRun.train(np: np, config: full.config, ["--output_dir", full.out(name)] + args)
            #expect(r.status == 0, "\(r.output)")
            try expectSameTraining(full.out("np1"), full.out(name), file: "model.safetensors", skip: { $0.hasSuffix("k_proj.bias") })
            let largest = try #require(largestGather(r.output), "no largest gather in \(r.output)")
            #expect(largest > 0 && largest < embeddingBytes / 8, "largest gather \(largest) MB, embedding \(embeddingBytes) MB")
        }
        let lora = try MPISetup(records: 9)
        #expect(try MPIRun.train(np: 0, config: lora.config, ["--output_dir", lora.out("np1"), "--per_device_train_batch_size", "4"]).status == 0)
        let r = try MPIRun.train(np: 4, config: lora.config, ["--output_dir", lora.out("z3"), "--per_device_train_batch_size", "1", "--deepspeed", ds])
        #expect(r.status == 0, "\(r.output)")
        try expectSameTraining(lora.out("np1"), lora.out("z3"), file: "adapter_model.safetensors")
        let largest = try #require(largestGather(r.output), "no largest gather in \(r.output)")
        #expect(largest > 0 && largest < embeddingBytes / 8, "largest gather \(largest) MB, embedding \(embeddingBytes) MB")
    }

    /// QLoRA at stage 3: the NF4 base is partitioned too (each rank keeps 1/N of every layer's
    /// codes and absmax, gathered byte for byte when the pass reaches the layer), and trains what
    /// one process trains at the global batch: np 2 and np 3 (uneven blob slices, a rank with no
    /// rows at an epoch's end), every tensor partitioned. Rank 0 reports its NF4 share.
    @Test func stage3PartitionsTheQLoRABase() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let s = try MPISetup(records: 9, [("train_mode", .string("qlora"))])
        let ds = s.out("zero3.json")
        try #"{"zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}}"#.write(toFile: ds, atomically: true, encoding: .utf8)
        func nf4Share(_ output: String) -> (resident: Double, total: Double)? {
            guard let r = output.range(of: "NF4 projections: ") else { return nil }
            let words = output[r.upperBound...].split(separator: " ")
            guard words.count > 2, let a = Double(words[0]), let b = Double(words[2]) else { return nil }
            return (a, b)
        }
        for (np, b) in [(2, 2), (3, 2)] {
            let one = "np1b\(np * b)", name = "z3np\(np)"
            #expect(try MPIRun.train(np: 0, config: s.config, ["--output_dir", s.out(one), "--per_device_train_batch_size", "\(np * b)"]).status == 0)
            let r = try MPIRun.train(np: np, config: s.config, ["--output_dir", s.out(name), "--per_device_train_batch_size", "\(b)", "--deepspeed", ds])
            #expect(r.status == 0, "\(r.output)")
            // One element of layer 1's v_proj lora_A, whose gradient is about zero, takes Adam
            // updates set by fp32 summation noise: 1.3e-5 of ‖w‖ at np 2 here, 5e-5 of the
            // tensor's largest value at stage 2 too (nothing partitioned), so 2e-5 and 2e-4 elementwise.
            try expectSameTraining(s.out(one), s.out(name), file: "adapter_model.safetensors", tol: 2e-5, elementTol: 2e-4)
            #expect(FileManager.default.fileExists(atPath: s.out(name) + "/qlora_base.json"))
            // Bit for bit what stage 3 trains with the NF4 base whole on every rank (DeepSpeed's
            // default persistence threshold keeps the tiny model's matrices whole): the bytes are
            // gathered, never re-quantised.
            let whole = try MPIRun.train(np: np, config: s.config, ["--output_dir", s.out(name + "whole"), "--per_device_train_batch_size", "\(b)", "--zero_stage", "3"])
            #expect(whole.status == 0, "\(whole.output)")
            #expect(!whole.output.contains("NF4 projections: "), "\(whole.output)")
            let adapter = "/adapter_model.safetensors"
            #expect(FileManager.default.contents(atPath: s.out(name) + adapter) == FileManager.default.contents(atPath: s.out(name + "whole") + adapter))
            let a = try loggedSteps(s.out(name)), w = try loggedSteps(s.out(name + "whole"))
            #expect(a.count == w.count && a.allSatisfy { w[$0.key]?.loss == $0.value.loss && w[$0.key]?.norm == $0.value.norm })
            let share = try #require(nf4Share(r.output), "no NF4 share in \(r.output)")
            // Rank 0's piece of each layer's blob: ⌈blob/N⌉ rounded up to 64 bytes, less padding.
            let layers = Double(Qwen2Preset.tiny.config.numHiddenLayers)
            #expect(share.total > 0 && abs(share.resident - share.total / Double(np)) <= 64 * 15 * layers,
                    "NF4 resident \(share.resident) of \(share.total) bytes at np \(np)")
        }
    }

    /// Evaluation at stage 3 runs the training pass's forward (each layer gathered when reached,
    /// the vocabulary in pieces), the ranks sharing the records: eval loss equals one process's
    /// within 1e-5 (LoRA np 2, full fine-tuning np 3 on the untied model), and the largest gather
    /// of the run, evaluation included, stays far below the embedding.
    @Test func stage3EvaluatesLayerByLayer() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let dir = try trainerTempDir()
        var c = Qwen2Preset.tiny.config
        c.tieWordEmbeddings = false
        try initializeModelFolder(config: c, tokenizer: try trainerVocabulary(), out: dir + "/untied", seed: 4)
        let embeddingBytes = Double(c.vocabSize * c.hiddenSize * 4) / 1e6
        func evalLosses(_ out: String) throws -> [Int: Double] {
            var found: [Int: Double] = [:]
            for line in try String(contentsOfFile: out + "/trainer_log.jsonl", encoding: .utf8).split(separator: "\n") {
                let v = try JSONValue.parse(String(line))
                if let step = v["step"]?.doubleValue, let l = v["eval_loss"]?.doubleValue { found[Int(step)] = l }
            }
            return found
        }
        let lora = try MPISetup(records: 9)
        let evalFile = lora.dir + "/data.jsonl"
        let eval: [(String, JSONValue)] = [("eval_file", .string(evalFile)), ("eval_strategy", .string("steps")), ("eval_steps", .int(2))]
        let loraEval = try MPISetup(records: 9, eval)
        let full = try MPISetup(records: 9, eval + [("model_name_or_path", .string(dir + "/untied")), ("train_mode", .string("full")),
                                                     ("learning_rate", .double(1e-3)), ("num_train_epochs", .int(1))])
        for (setup, np, b, args) in [(loraEval, 2, 2, ["--zero_stage", "3"]), (full, 3, 2, ["--zero_stage", "3"])] {
            #expect(try MPIRun.train(np: 0, config: setup.config, ["--output_dir", setup.out("np1"), "--per_device_train_batch_size", "\(np * b)"]).status == 0)
            let r = try MPIRun.train(np: np, config: setup.config, ["--output_dir", setup.out("z3"), "--per_device_train_batch_size", "\(b)"] + args)
            #expect(r.status == 0, "\(r.output)")
            let one = try evalLosses(setup.out("np1")), split = try evalLosses(setup.out("z3"))
            #expect(!one.isEmpty && one.keys.sorted() == split.keys.sorted(), "eval steps \(one.keys.sorted()) vs \(split.keys.sorted())")
            for (step, l) in one {
                let m = try #require(split[step])
                #expect(abs(l - m) <= 1e-5 * abs(l), "step \(step) eval_loss \(l) vs \(m) at np \(np)")
            }
            guard let at = r.output.range(of: "largest gather ") else { Issue.record("no largest gather in \(r.output)"); continue }
            let largest = try #require(Double(r.output[at.upperBound...].prefix { $0.isNumber || $0 == "." }))
            #expect(largest > 0 && largest < embeddingBytes / 8, "largest gather \(largest) MB, embedding \(embeddingBytes) MB")
        }
    }

    /// At stage 3 the ranks hold different slices, so the model check compares each rank's slice of
    /// the initial weights with the same slice as the previous rank read it from its own file
    /// (full fine-tuning; a LoRA run compares its whole initial adapter, which every rank holds at
    /// first): a rank given other weights under the same config.json (another seed) is named.
    @Test func stage3RanksCheckTheirSlicesOfTheModel() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        // The same relative model path from two working directories: one config, two models.
        let dir = try trainerTempDir()
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/a/model", withDestinationPath: try TrainerFixture.folders().model)
        try initializeModelFolder(config: Qwen2Preset.tiny.config, tokenizer: try trainerVocabulary(), out: dir + "/b/model", seed: 9)
        let s = try MPISetup(records: 8, [("train_mode", .string("full")), ("max_steps", .int(1)), ("model_name_or_path", .string("model"))])
        let same = try MPIRun.train(np: 1, config: s.config, ["--output_dir", s.out("same"), "--zero_stage", "3"],
                                    mpmd: ["--output_dir", s.out("same"), "--zero_stage", "3"], workingDirectories: (dir + "/a", dir + "/a"))
        #expect(same.status == 0, "\(same.output)")
        let mixed = try MPIRun.train(np: 1, config: s.config, ["--output_dir", s.out("mixed"), "--zero_stage", "3"],
                                     mpmd: ["--output_dir", s.out("mixed"), "--zero_stage", "3"], workingDirectories: (dir + "/a", dir + "/b"))
        #expect(mixed.status != 0)
        #expect(mixed.output.contains("its slice of the initial weights differs from rank"), "\(mixed.output)")
    }

    /// A checkpoint of np 2 at stage 2 (one optimizer file per rank) resumes bit for bit at np 2,
    /// and at np 4 (stage 1) and then np 1 within 1e-5 of the run that never stopped.
    @Test func resumesAtTheSameAndAtOtherWorldSizes() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let s = try MPISetup(records: 8, [("save_steps", .int(2)), ("zero_stage", .int(2))])
        let whole = try MPIRun.train(np: 2, config: s.config, ["--output_dir", s.out("whole")])
        #expect(whole.status == 0, "\(whole.output)")
        let ckpt = s.out("whole") + "/checkpoint-2"
        #expect(FileManager.default.fileExists(atPath: ckpt + "/optimizer-rank1.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: ckpt + "/optimizer.safetensors"))
        func resume(_ from: String, into name: String, np: Int, _ args: [String]) throws {
            try FileManager.default.createDirectory(atPath: s.out(name), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: from, toPath: s.out(name) + "/" + (from as NSString).lastPathComponent)
            let r = try MPIRun.train(np: np, config: s.config, ["--output_dir", s.out(name), "--resume_from_checkpoint", "true"] + args)
            #expect(r.status == 0, "\(r.output)")
        }
        try resume(ckpt, into: "same", np: 2, [])
        #expect(try fileBytes(s.out("whole") + "/adapter_model.safetensors") == fileBytes(s.out("same") + "/adapter_model.safetensors"))
        try resume(ckpt, into: "np4", np: 4, ["--per_device_train_batch_size", "1", "--zero_stage", "1"])
        try resume(s.out("np4") + "/checkpoint-4", into: "np1", np: 0, ["--per_device_train_batch_size", "4"])
        try expectSameTraining(s.out("whole"), s.out("np4"), file: "adapter_model.safetensors")
        try expectSameTraining(s.out("whole"), s.out("np1"), file: "adapter_model.safetensors")
    }

    /// An error on one rank ends every rank, naming the rank; a rank that stops (SIGSTOP) makes the
    /// others' collective time out after ddp_timeout, naming the collective and the step.
    @Test func aFailingOrHungRankEndsTheJob() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let s = try MPISetup(records: 8)
        let failed = try MPIRun.train(np: 2, config: s.config, ["--output_dir", s.out("fail")], env: ["QWENFT_TEST_FAULT": "1:2:fail"])
        #expect(failed.status != 0)
        #expect(failed.output.contains("qwenft: error: rank 1 of 2: rank 1 failed at step 2"), "\(failed.output)")
        let hung = try MPIRun.train(np: 2, config: s.config, ["--output_dir", s.out("hung"), "--ddp_timeout", "2"],
                                    env: ["QWENFT_TEST_FAULT": "1:2:stop"])
        #expect(hung.status != 0)
        #expect(hung.output.contains("rank 0 of 2: MPI_Allreduce has waited") && hung.output.contains("at step 2, longer than ddp_timeout (2 s)"),
                "\(hung.output)")
        // A rank that sees another config than rank 0 (MPMD launch with one override) stops with it named.
        let mixed = try MPIRun.train(np: 1, config: s.config, ["--output_dir", s.out("mixed")],
                                     mpmd: ["--output_dir", s.out("mixed"), "--learning_rate", "0.02"])
        #expect(mixed.status != 0)
        #expect(mixed.output.contains("rank 1 sees other the training config"), "\(mixed.output)")
    }

    /// SIGUSR1 to mpirun (forwarded to every rank): all finish the same step, one checkpoint, exit 0.
    @Test func usr1StopsEveryRankAtOneStep() throws {
        guard !MPIRun.insideRank, MPIRun.mpirun != nil else { return }
        let s = try MPISetup(records: 8, [("max_steps", .int(400))])
        let r = try MPIRun.train(np: 2, config: s.config, ["--output_dir", s.out("o")], env: ["QWENFT_TEST_FAULT": "0:2:slow"],
                                 signal: (SIGUSR1, log: s.out("o") + "/trainer_log.jsonl"))
        #expect(r.status == 0, "\(r.output)")
        let names = try FileManager.default.contentsOfDirectory(atPath: s.out("o"))
        #expect(names.filter { $0.hasPrefix("checkpoint-") }.count == 1, "\(names)")
        #expect(!names.contains("adapter_model.safetensors") && !names.contains { $0.hasPrefix(".checkpoint-") })
        #expect(r.output.contains("checkpoint saved"))
    }
}

/// ZeRO settings from `zero_stage` and from the DeepSpeed files users bring (Configs/deepspeed).
@Suite struct ZeROSettingsTests {
    static let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Configs/deepspeed").path

    func settings(_ extra: [(String, JSONValue)], worldSize: Int = 4) throws -> ZeROSettings {
        var pairs: [(String, JSONValue)] = [("model_name_or_path", .string("m")), ("train_file", .string("d")), ("output_dir", .string("o")),
                                            ("train_mode", .string("lora"))]
        pairs += extra
        let c = try TrainingConfig.parse(.object(pairs), worldSize: worldSize)
        return try ZeROSettings(config: c, worldSize: worldSize)
    }

    @Test func theDeepSpeedFilesDriveTheirStages() throws {
        // reduce_bucket_size "auto" (zero3.json) keeps DeepSpeed's default.
        for (file, stage, bucket) in [("zero2.json", 2, 200_000_000), ("zero3.json", 3, ZeROSettings.defaultBucket), ("zero3-offload.json", 3, 1_000_000)] {
            let z = try settings([("deepspeed", .string(Self.configs + "/" + file))])
            #expect(z.requestedStage == stage && z.stage == stage, "\(file)")
            #expect(z.reduceBucketSize == bucket, "\(file): reduce_bucket_size")
        }
        let offload = try settings([("deepspeed", .string(Self.configs + "/zero3-offload.json"))])
        #expect(offload.notes.contains { $0.contains("offload_optimizer device cpu") && $0.contains("host memory") })
        #expect(offload.notes.contains { $0.contains("no effect here") && $0.contains("overlap_comm") })
        #expect(offload.warnings.isEmpty)
        #expect(offload.persistenceThreshold(hiddenSize: 64) == 1_000_000)
        #expect(try settings([("deepspeed", .string(Self.configs + "/zero3.json"))]).persistenceThreshold(hiddenSize: 64) == 640)
        #expect(try settings([("zero_stage", .int(3))]).persistenceThreshold(hiddenSize: 64) == 100_000)
        // stage3_prefetch_bucket_size: DeepSpeed's default 5e7, "auto" 0.9 × hidden², a number, 0 (no prefetch).
        #expect(try settings([("zero_stage", .int(3))]).prefetchBucketSize(hiddenSize: 64) == 50_000_000)
        #expect(try settings([("deepspeed", .string(Self.configs + "/zero3.json"))]).prefetchBucketSize(hiddenSize: 64) == 3686)
        #expect(offload.prefetchBucketSize(hiddenSize: 64) == 1_000_000)
        #expect(!offload.notes.contains { $0.contains("no effect here") && $0.contains("stage3_prefetch_bucket_size") })
        let none: JSONValue = .object([("zero_optimization", .object([("stage", .int(3)), ("stage3_prefetch_bucket_size", .int(0))]))])
        #expect(try settings([("deepspeed", none)]).prefetchBucketSize(hiddenSize: 64) == 0)
        #expect(try settings([("deepspeed", .string(Self.configs + "/zero2.json"))], worldSize: 1).stage == 0)
    }

    @Test func zeroStageKeyAndBadValues() throws {
        #expect(try settings([("zero_stage", .int(1))]).stage == 1)
        #expect(try settings([]).stage == 0)
        #expect(throws: TrainingError.self) { try settings([("zero_stage", .int(4))]) }
        #expect(throws: TrainingError.self) { try settings([("ddp_timeout", .int(0))]) }
        let nvme: JSONValue = .object([("zero_optimization", .object([("stage", .int(2)), ("offload_optimizer", .object([("device", .string("nvme"))]))]))])
        do { _ = try settings([("deepspeed", nvme)]); Issue.record("nvme accepted") } catch {
            #expect("\(error)".contains("nvme") && "\(error)".contains("offload_optimizer"))
        }
        let stage1: JSONValue = .object([("zero_optimization", .object([("stage", .int(1))]))])
        #expect(throws: TrainingError.self) { try settings([("deepspeed", stage1), ("zero_stage", .int(2))]) }
    }

    /// ZeRO-2 reduces layer by layer: every layer's entries form one flat range, and those
    /// ranges plus the rest cover the buffer once.
    @Test func layerRangesCoverTheBufferOnce() throws {
        let config = Qwen2Preset.tiny.config
        for layout in [try TrainableParameters.fullLayout(config: config),
                       try TrainableParameters.loraLayout(config: config, spec: LoRASpec(rank: 4, alpha: 8, targetModules: ["all-linear"]))] {
            let storage = layout.storageCount(worldSize: 3)
            let (layers, rest) = ZeROEngine.layerRanges(layout, storageCount: storage)
            #expect(layers.count == config.numHiddenLayers)
            let all = (layers + rest).sorted { $0.lowerBound < $1.lowerBound }
            #expect(all.first?.lowerBound == 0 && all.last?.upperBound == storage)
            #expect(zip(all, all.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
            for (l, r) in layers.enumerated() {
                #expect(layout.entries.filter { r.overlaps($0.range) }.allSatisfy { $0.name.contains("layers.\(l).") })
            }
        }
    }

    @Test func releasedGradientsReadAsZero() throws {
        let layout = try ParameterLayout([("a", [5000]), ("b", [3000])])
        let state = TrainableState(layout: layout, worldSize: 2, residentGradients: false)
        #expect((0..<state.storageCount).allSatisfy { state.hostGrads[$0] == 0 })
        for i in 0..<state.storageCount { state.hostGrads[i] = 1 }
        state.releaseGradients(7 ..< 6007)
        #expect((0..<state.storageCount).allSatisfy { state.hostGrads[$0] == ((7..<6007).contains($0) ? 0 : 1) })
    }
}

