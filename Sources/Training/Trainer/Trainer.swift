import Foundation
import QwenCore
import Qwen2
import Tokenizer
import Distributed

/// Where the trainer finds things the config does not name.
public struct TrainerOptions: Sendable {
    /// The folder of `Templates/NAME.j2` for `template_name`.
    public var templatesFolder: String?
    /// The tokenised-dataset cache folder; nil: no cache.
    public var cacheDirectory: String?
    /// The ranks of the run (mpirun): one process unless given.
    public var communicator: Communicator

    public init(templatesFolder: String? = nil, cacheDirectory: String? = nil,
                communicator: Communicator = SingleProcessCommunicator()) {
        self.templatesFolder = templatesFolder
        self.cacheDirectory = cacheDirectory
        self.communicator = communicator
    }
}

/// A training run: `init` loads the model, tokenises the data, builds the trainable state (and
/// restores a checkpoint when resuming); `train` runs the loop. Progress goes to `events`, never
/// to the console.
///
///     let trainer = try Trainer(config: cfg, options: .init(templatesFolder: "Templates")) { event in … }
///     let summary = try trainer.train()
///
/// Step s (0-based) of the run uses micro-batches [g·j, g·j+g) of epoch s / stepsPerEpoch, with
/// j = s mod stepsPerEpoch (the epoch's last step may have fewer), dropout stream = the global
/// micro-batch index and LR `scheduler.learningRate(afterSteps: s)`. Everything depends only on
/// s and the seeds, so a resumed run repeats the run that never stopped bit for bit.
public final class Trainer {
    public let config: TrainingConfig
    public let outputDir: String
    public let modelFolder: String
    public let modelConfig: Qwen2Config
    public let mode: TrainingMode
    public let state: TrainableState
    public let plan: TrainingPlan
    let events: (TrainerEvent) -> Void
    let base: WeightProvider
    let pass: Qwen2TrainingPass
    let optimizer: AdamW
    let scheduler: LRScheduler
    let loader: DataLoader
    let evalData: TokenizedDataset?
    let loraDropout: Double
    var progress: TrainerProgressState
    var epochPlans: [Int: [[Int]]] = [:]
    /// report_to tensorboard: every trainer_log.jsonl entry also goes here as scalars.
    var tensorBoard: TensorBoardWriter?
    /// The ranks of the run; rank 0 alone reports and writes (see DataParallel.swift).
    let comm: Communicator
    let zero: ZeROEngine
    let zeroSettings: ZeROSettings
    /// A log append failed and was reported (once per run).
    var logWriteFailed = false
    /// Stage 3: the fingerprint of the initial trainable weights that the ranks compare
    /// (DataParallel.swift): the whole adapter (LoRA), or this rank's slice and, read from its own
    /// model file, the next rank's (full fine-tuning).
    var initialWeights: (own: UInt64, next: UInt64) = (0, 0)
    /// task_type dpo: the reference and the loss (nil for sft / pretrain).
    var dpo: DPOContext?
    var evalLoader: DataLoader?

    public init(config: TrainingConfig, options: TrainerOptions = .init(),
                events: @escaping (TrainerEvent) -> Void = { _ in }) throws {
        self.config = config
        let backend = try Backends.make(config.device)
        comm = options.communicator
        // Rank 0 alone reports: the other ranks' events go nowhere.
        let events: (TrainerEvent) -> Void = options.communicator.isMain ? events : { _ in }
        self.events = events
        outputDir = config.outputDir
        modelFolder = config.modelNameOrPath
        zeroSettings = try ZeROSettings(config: config, worldSize: comm.size)
        let resumeFrom = try Trainer.prepareOutputDir(config, comm: comm)

        let quantization = try config.quantization()
        // ZeRO-3 ranks read only their share of a mapped model file.
        let stage3 = comm.size > 1 && zeroSettings.stage == 3
        var lastShown = -1
        let folder = try ModelFolder(path: modelFolder, adapter: nil, loadIn4bit: quantization, touch: !stage3) { done, total in
            let pct = done * 100 / max(1, total)
            if total >= 64, pct / 10 != lastShown / 10 || done == total {
                lastShown = pct
                events(.note("quantising the base to NF4: \(done)/\(total) matrices"))
            }
        }
        modelConfig = folder.config
        if let n = config.recomputeNumLayers, n > modelConfig.numHiddenLayers {
            throw TrainingError.badConfigValue(key: "recompute_num_layers", source: "config",
                                               message: "is \(n) but \(modelFolder) has \(modelConfig.numHiddenLayers) layers; use 0…\(modelConfig.numHiddenLayers), or null for all of them")
        }
        let loaded = folder.model.weights
        if let q = folder.quantization {
            events(.note("base weights: \(q)"))
            if let d = config.quantizationComputeDType {
                events(.note("bnb_4bit_compute_dtype \(d): on the CPU the 4-bit products run in float32 (bitsandbytes' float32 compute mode)"))
            }
        }

        // Data.
        let template = try ChatTemplateSource.resolve(templateName: config.templateName, templatesFolder: options.templatesFolder,
                                                      tokenizerConfig: folder.tokenizerConfig)
        let dataOptions = try DatasetOptions(config: config, cacheDirectory: options.cacheDirectory)
        func load(_ file: String) throws -> TokenizedDataset {
            try TokenizedDataset.load(files: [file], tokenizer: folder.tokenizer, tokenizerConfig: folder.tokenizerConfig,
                                      template: template, options: dataOptions) { events(.preprocessing($0)) }
        }
        // Rank 0 tokenises and fills the cache; the others wait, then read it.
        var train: TokenizedDataset?, evalSet: TokenizedDataset?
        try comm.mainFirst {
            train = try load(config.trainFile)
            evalSet = try config.evalFile.map { try load($0) }
        }
        guard let train else { throw TrainerError.unsupported(key: "train_file", message: "no dataset was loaded") }
        evalData = evalSet
        train.report.summary.forEach { events(.note($0)) }
        events(.note("template: \(template.origin)"))
        if let e = evalData { e.report.summary.forEach { events(.note("eval " + $0)) } }
        let padId = Int32(folder.tokenizerConfig.padToken.flatMap { folder.tokenizer.id(forToken: $0) }
            ?? folder.tokenizerConfig.eosToken.flatMap { folder.tokenizer.id(forToken: $0) } ?? 151_643)
        // The loader plans global micro-batches of N·b rows; each rank takes its b (DataParallel.swift).
        var batching = BatchingOptions(config: config, padId: padId)
        batching.batchSize *= comm.size
        loader = try DataLoader(dataset: train, options: batching)

        // What is trained.
        loraDropout = config.loraDropout
        switch config.trainMode {
        case .full:
            if loaded is NF4Weights {
                throw TrainingError.badConfigValue(key: "train_mode", source: "config",
                                                   message: "\"full\" cannot train the 4-bit base of \(modelFolder); use \"qlora\" (LoRA over it) or a 16-bit model")
            }
            mode = .full
        case .lora, .qlora:
            if let path = config.adapterNameOrPath {
                let adapter = try ModelFolder.loadAdapter(path, config: modelConfig)
                let targets = Projection.allCases.filter { p in adapter.layers.contains { $0[p] != nil } }.map(\.rawValue)
                let spec = try LoRASpec(rank: adapter.rank, alpha: adapter.alpha, dropout: Float(config.trainingLoRADropout),
                                        useRSLoRA: adapter.useRSLoRA, targetModules: targets)
                events(.note("continuing the adapter \(path): r \(spec.rank), alpha \(spec.alpha), \(targets.joined(separator: ", "))"))
                mode = .lora(spec)
            } else {
                mode = .lora(try LoRASpec(config: config))
            }
        }
        let layout: ParameterLayout
        switch mode {
        case .full: layout = try TrainableParameters.fullLayout(config: modelConfig)
        case .lora(let spec): layout = try TrainableParameters.loraLayout(config: modelConfig, spec: spec)
        }
        // ZeRO-2 never holds the whole gradient buffer: its pages stay untouched until written;
        // ZeRO-3 neither the whole parameter buffer (ZeRO3.swift).
        state = TrainableState(layout: layout, worldSize: comm.size, residentGradients: comm.size == 1 || zeroSettings.stage < 2,
                               residentParameters: !stage3, backend: backend)
        zero = ZeROEngine(comm: comm, layout: layout, settings: zeroSettings)
        let threshold = zeroSettings.persistenceThreshold(hiddenSize: modelConfig.hiddenSize)
        if stage3 {
            zero.setPersistent(layout, threshold: threshold)
            zero.prefetchBucket = zeroSettings.prefetchBucketSize(hiddenSize: modelConfig.hiddenSize)
            backend.fill(state.params.pointer + zero.optimizerRange.lowerBound, count: zero.optimizerRange.count, value: 0)
        }
        switch mode {
        case .full where stage3:
            try TrainableParameters.copyWeights(from: loaded, into: state, range: zero.optimizerRange)
            TrainableParameters.releaseMappedMatrices(of: loaded)
            base = loaded
        case .full:
            try TrainableParameters.copyWeights(from: loaded, into: state)
            base = loaded
        case .lora(let spec):
            base = stage3 ? try ShardedBaseWeights(loaded, zero: zero, threshold: threshold) : loaded
            if let path = config.adapterNameOrPath {
                try TrainableParameters.loadLoRA(state, from: try ModelFolder.loadAdapter(path, config: modelConfig),
                                                 config: modelConfig, spec: spec, source: path)
            } else {
                try TrainableParameters.initializeLoRA(state, config: modelConfig, spec: spec, seed: UInt64(truncatingIfNeeded: config.seed))
            }
        }
        let initial = stage3 ? try Trainer.sliceFingerprints(loaded, state: state, zero: zero, mode: mode) : (own: UInt64(0), next: UInt64(0))
        if stage3 { zero.releaseParameters(0 ..< state.storageCount, state) }
        // The check read the next rank's slice from the mapped file: its pages go back too (they
        // stayed resident to the end, where rank 0 gathers the whole model to save it).
        if stage3, mode == .full { TrainableParameters.releaseMappedMatrices(of: loaded) }
        initialWeights = initial
        pass = try Qwen2TrainingPass(base: base, mode: mode, state: state, gradientCheckpointing: config.gradientCheckpointing,
                                     recomputedLayers: config.recomputeNumLayers, dropoutSeed: UInt64(truncatingIfNeeded: config.seed), backend: backend)
        if stage3 {
            // lm_head chunks: no more elements than a layer's projections, nor than the prefetch bucket.
            let c = modelConfig
            let layer = Projection.allCases.reduce(0) { $0 + $1.shape(c).rows * $1.shape(c).cols }
            let bucket = zero.prefetchBucket
            pass.weights = try ZeRO3Weights(inner: pass.weights, zero: zero, state: state, chunkElements: bucket > 0 ? min(bucket, layer) : layer)
        }
        optimizer = AdamW(layout: layout, hyper: config.effectiveAdamW, range: zero.optimizerRange, backend: backend)
        zeroSettings.notes.forEach { events(.note($0)) }
        if config.gradientCheckpointing {
            events(.note(Trainer.checkpointingNote(config: config, model: modelConfig, mode: mode, recomputed: pass.recomputedLayers)))
        }
        if stage3 {
            let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1e6) }
            var kept = zero.optimizerRange.count
            for r in zero.persistentRanges { kept += r.clamped(to: 0 ..< zero.storageCount).count - r.clamped(to: zero.optimizerRange).count }
            var line = "ZeRO-3 on rank 0: \(mb(kept * 4)) of the \(mb(state.storageCount * 4)) trainable weights kept (tensors under \(threshold) elements whole)"
            if let sharded = base as? ShardedBaseWeights {
                line += "; base weights resident \(mb(sharded.residentBytes)) of \(mb(loaded.residentBytes)) (its share of every layer and of the embedding, plus \(zero.prefetchBucket > 0 ? "two layer buffers: the gathered layer and the prefetched one" : "one gathered layer"))"
                if sharded.nf4Bytes.total > 0 {
                    line += "; NF4 projections: \(sharded.nf4Bytes.resident) of \(sharded.nf4Bytes.total) bytes (codes and absmax) resident"
                }
            }
            events(.note(line))
        }
        zeroSettings.warnings.forEach { events(.warning($0)) }
        if config.taskType == "dpo" {
            guard comm.size == 1 else {
                throw TrainingError.unsupported(key: "task_type", message: "dpo runs in one process for now; start it without mpirun (or with -np 1)")
            }
            // Before a checkpoint is restored: the reference is the policy before training.
            var evalOptions = BatchingOptions(config: config, padId: padId)
            evalOptions.batchSize = config.perDeviceEvalBatchSize
            evalOptions.shuffle = false
            evalLoader = try evalData.map { try DataLoader(dataset: $0, options: evalOptions) }
            dpo = try DPOContext(config: config, mode: mode, pass: pass, train: loader, eval: evalLoader, events: events)
        }

        // Steps and schedule.
        let g = config.gradientAccumulationSteps
        let micro = loader.batchesPerEpoch
        let totalSteps = config.totalOptimizerSteps(batchesPerEpoch: micro)
        scheduler = try config.learningRateScheduler(totalSteps: totalSteps)
        progress = TrainerProgressState(globalStep: 0, optimizerSteps: 0, skippedSteps: 0, logHistory: [], bestMetric: nil, bestCheckpoint: nil)
        if let from = resumeFrom {
            try Checkpoints.loadParameters(from: from, into: state, full: mode == .full)
            if stage3 { zero.releaseParameters(0 ..< state.storageCount, state) }
            try Checkpoints.loadOptimizer(from: from, into: optimizer, layout: layout)
            progress = try Checkpoints.loadProgress(from: from)
            events(.note("resuming from \(from) at step \(progress.globalStep)"))
        }
        plan = TrainingPlan(totalSteps: totalSteps, stepsPerEpoch: max(1, (micro + g - 1) / g), microBatchesPerEpoch: micro,
                            gradientAccumulationSteps: g, trainableParameters: layout.parameterCount,
                            startStep: progress.globalStep, mode: Trainer.describe(mode))
        try checkRanksAgree(train: train)
        if config.bf16 || config.fp16 {
            events(.note("\(config.bf16 ? "bf16" : "fp16"): the base stays in its stored dtype; compute and trainable weights are f32"))
        }
        if config.reportTo.contains("tensorboard") && comm.isMain {
            let folder = config.loggingDir ?? Trainer.defaultLoggingDir(outputDir: outputDir)
            tensorBoard = try TensorBoardWriter(folder: folder)
            events(.note("TensorBoard event file: \(tensorBoard?.path ?? folder) (tensorboard --logdir \(folder))"))
        }
        if comm.isMain {
            try ModelFiles.writeText(config.resolvedJSON().prettyText + "\n",
                                     to: (outputDir as NSString).appendingPathComponent("training_config.json"))
        }
        try rewriteLog()
    }

    /// What gradient checkpointing keeps, so a user can choose recompute_num_layers: the
    /// activations one micro-batch of max_seq_length-token rows keeps from forward to backward,
    /// for the setting chosen, for every layer recomputed and for none, and per layer between.
    static func checkpointingNote(config: TrainingConfig, model c: Qwen2Config, mode: TrainingMode, recomputed k: Int) -> String {
        let L = c.numHiddenLayers, B = config.perDeviceTrainBatchSize, T = config.maxSeqLength
        var lora: LoRASpec?
        if case .lora(let spec) = mode { lora = spec }
        func kept(_ k: Int) -> Int {
            Qwen2TrainingPass.savedActivationBytes(config: c, B: B, T: T, lora: lora, gradientCheckpointing: true, recomputedLayers: k)
        }
        func gb(_ bytes: Int) -> String { String(format: "%.2f GB", Double(bytes) / 1e9) }
        return "gradient checkpointing: \(k) of \(L) layers recomputed in backward (the last layer never is: its activations are "
            + "still there); activations kept for \(B) × \(T) tokens: \(gb(kept(k))) (recompute_num_layers null: \(gb(kept(L))), "
            + "0: \(gb(kept(0))); each layer fewer recomputed \(gb(kept(max(0, L - 2)) - kept(L - 1))) more)"
    }

    static func describe(_ mode: TrainingMode) -> String {
        switch mode {
        case .full: return "full fine-tuning"
        case .lora(let s):
            return "LoRA r \(s.rank), alpha \(s.alpha)\(s.useRSLoRA ? " (rsLoRA)" : ""), dropout \(s.dropout), on \(s.targets.map(\.rawValue).joined(separator: ", "))"
        }
    }

    /// Rank 0 prepares output_dir (`prepareOutputDir`), then every rank finds the checkpoint.
    static func prepareOutputDir(_ config: TrainingConfig, comm: Communicator) throws -> String? {
        var resume: String?
        if comm.isMain { resume = try prepareOutputDir(config) }
        try comm.barrier()
        if !comm.isMain { resume = try Checkpoints.resolve(config.resumeFromCheckpoint, outputDir: config.outputDir) }
        return resume
    }

    /// Creates output_dir, refuses one that holds another run (unless resuming or overwriting),
    /// and returns the checkpoint to resume from.
    static func prepareOutputDir(_ config: TrainingConfig) throws -> String? {
        let dir = config.outputDir
        let fm = FileManager.default
        let resume = try Checkpoints.resolve(config.resumeFromCheckpoint, outputDir: dir)
        if resume == nil, fm.fileExists(atPath: dir) {
            let names = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            let marks = names.filter { $0.hasPrefix(Checkpoints.prefix) || ["adapter_model.safetensors", "trainer_state.json", "trainer_log.jsonl"].contains($0) }.sorted()
            if !marks.isEmpty {
                guard config.overwriteOutputDir else {
                    throw TrainingError.outputDirInUse(path: dir, found: marks.prefix(3).joined(separator: ", "))
                }
                for name in marks where name.hasPrefix(Checkpoints.prefix) || name == "trainer_log.jsonl" {
                    try? fm.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
                }
            }
        }
        try ModelFiles.makeFolder(dir)
        return resume
    }

    var logPath: String { (outputDir as NSString).appendingPathComponent("trainer_log.jsonl") }

    /// trainer_log.jsonl from the restored history (empty for a fresh run): a resumed run's log
    /// reads as one run's.
    func rewriteLog() throws {
        guard comm.isMain else { return }
        let text = progress.logHistory.map { $0.compactText + "\n" }.joined()
        try ModelFiles.writeText(text, to: logPath)
    }

    /// transformers' default logging_dir: output_dir/runs/<Mon DD_HH-MM-SS>_<host>.
    static func defaultLoggingDir(outputDir: String) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "MMMdd_HH-mm-ss"
        let name = f.string(from: Date()) + "_" + ProcessInfo.processInfo.hostName
        return ((outputDir as NSString).appendingPathComponent("runs") as NSString).appendingPathComponent(name)
    }

    /// Records `entry` in the history (which checkpoints keep) and appends it to trainer_log.jsonl
    /// and TensorBoard. A failed append (a full disk) is a warning, once: the history still has
    /// the entry and a resumed run rewrites the log from it; the next checkpoint stops the run.
    func appendLog(_ entry: JSONValue) {
        tensorBoard?.log(entry)
        progress.logHistory.append(entry)
        guard comm.isMain else { return }
        var failure: String?
        do { try ModelFiles.append(Array((entry.compactText + "\n").utf8), to: logPath) } catch { failure = "\(error)" }
        if failure == nil, let tb = tensorBoard, let e = tb.writeError { failure = "cannot write \(tb.path): \(e)" }
        if let failure, !logWriteFailed {
            logWriteFailed = true
            events(.warning("\(failure); the log goes on in memory and in the checkpoints' trainer_state.json"))
        }
    }
}
