import Foundation
import QwenCore
import Qwen2

/// What one optimizer step did.
struct StepResult {
    var loss: Double
    var gradNorm: Double
    /// Non-padding tokens processed.
    var tokens: Int
    var skipped: Bool
    /// task_type dpo: each micro-batch's metrics.
    var dpoMetrics: [DPOMetrics] = []
}

extension Trainer {
    /// Consecutive NaN/Inf steps after which the run stops.
    static let divergenceLimit = 3

    /// Runs from the current step to the end (or until `shouldStop` says so after a step, which
    /// then saves a checkpoint). Writes the final adapter or model into output_dir.
    public func train(shouldStop: () -> Bool = { false }) throws -> TrainingSummary {
        let total = plan.totalSteps
        events(.started(plan))
        comm.setCollectiveTimeout(seconds: config.ddpTimeout)
        let logEvery = config.interval(.logging, totalSteps: total) ?? 0
        var evalEvery = evalData == nil ? nil : config.interval(.evaluation, totalSteps: total)
        if evalData != nil, evalEvery == nil, config.evalStrategy == .no, let e = config.evalSteps {
            // eval_file with eval_steps but no eval_strategy: evaluate at eval_steps, as meant.
            evalEvery = e < 1 ? max(1, Int((Double(total) * e).rounded(.up))) : Int(e)
            events(.note("eval_file and eval_steps are set: evaluating every \(evalEvery!) steps (eval_strategy \"steps\")"))
        }
        let saveEvery = config.interval(.saving, totalSteps: total)
        let started = DispatchTime.now().uptimeNanoseconds
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }

        var lossSinceLog = 0.0, stepsSinceLog = 0, tokensSinceLog = 0, lastLogTime = 0.0
        var dpoSinceLog: [DPOMetrics] = []
        var lossSum = 0.0, stepsRun = 0, tokensRun = 0
        var consecutiveBad = 0
        var lastSaved = -1
        var lastEvalMetric: Double?
        var interrupted = false
        var profiledWall = 0.0, profiledSteps = 0

        while progress.globalStep < total {
            let s = progress.globalStep
            let stepStart = now()
            let r = try runStep(s)
            if Profile.enabled {
                // QWENFT_PROFILE: sections of the steps after the first (warm-up: allocation, page faults).
                if s == plan.startStep { Profile.reset() } else { profiledWall += now() - stepStart; profiledSteps += 1 }
            }
            progress.globalStep = s + 1
            let step = s + 1
            if r.skipped {
                consecutiveBad += 1
                progress.skippedSteps += 1
                events(.warning("step \(step): loss \(r.loss), grad norm \(r.gradNorm): not finite; the update was skipped"))
                if consecutiveBad >= Trainer.divergenceLimit { throw TrainingError.diverged(step: step, count: consecutiveBad) }
            } else {
                consecutiveBad = 0
                lossSinceLog += r.loss
                stepsSinceLog += 1
                dpoSinceLog += r.dpoMetrics
                lossSum += r.loss
                stepsRun += 1
            }
            tokensSinceLog += r.tokens
            tokensRun += r.tokens
            let elapsed = now()
            let eta = elapsed / Double(step - plan.startStep) * Double(total - step)
            events(.step(StepProgress(step: step, totalSteps: total, loss: r.loss, elapsed: elapsed, eta: eta)))

            let logDue = (logEvery > 0 && step % logEvery == 0) || (config.loggingFirstStep && step == 1) || step == total
            if logDue, stepsSinceLog > 0 {
                let record = LogRecord(step: step, epoch: epoch(afterSteps: step), loss: lossSinceLog / Double(stepsSinceLog),
                                       learningRate: scheduler.learningRate(afterSteps: step), gradNorm: r.gradNorm,
                                       tokensPerSecond: Double(tokensSinceLog) / max(1e-9, elapsed - lastLogTime), elapsed: elapsed,
                                       extra: DPOMetrics.mean(dpoSinceLog)?.named ?? [])
                appendLog(record.json)
                events(.log(record))
                lossSinceLog = 0
                stepsSinceLog = 0
                dpoSinceLog = []
                tokensSinceLog = 0
                lastLogTime = elapsed
            }
            let epochEnd = step % plan.stepsPerEpoch == 0
            let evalDue = evalData != nil && ((evalEvery.map { step % $0 == 0 } ?? false) || (config.evalStrategy == .epoch && epochEnd))
            if evalDue {
                let e = try evaluate(step: step)
                appendLog(e.json)
                events(.evaluation(e))
                lastEvalMetric = metric(of: e)
            }
            let saveDue = (saveEvery.map { step % $0 == 0 } ?? false) || (config.saveStrategy == .epoch && epochEnd)
            let stop = try anyRankStops(step < total && shouldStop())
            if saveDue || stop {
                if let m = lastEvalMetric, isBetter(m, than: progress.bestMetric) {
                    progress.bestMetric = m
                    progress.bestCheckpoint = (outputDir as NSString).appendingPathComponent("\(Checkpoints.prefix)\(step)")
                }
                try saveCheckpoint(step: step)
                lastSaved = step
            }
            if stop {
                interrupted = true
                events(.note("stopped at step \(step) of \(total); checkpoint saved. Resume with --resume_from_checkpoint true"))
                break
            }
        }
        _ = lastSaved
        let seconds = now()
        let stepsDone = progress.globalStep - plan.startStep
        if comm.size > 1, stepsDone > 0 {
            // Collective time includes waiting for the slowest rank (that is what it costs the step).
            events(.note(String(format: "ZeRO stage %d over %d ranks: %.3f MB sent per step by rank 0; %.1f%% of its training time in collectives",
                                zero.stage, comm.size, Double(zero.bytesCommunicated) / Double(stepsDone) / 1e6,
                                100 * zero.commSeconds / max(seconds, 1e-9))
                                + (zero.stage == 3 ? String(format: "; largest gather %.3f MB", Double(zero.largestGatherBytes) / 1e6) : "")))
        }
        if let report = Profile.report(steps: profiledSteps, wall: profiledWall) {
            FileHandle.standardError.write(Data("QWENFT_PROFILE: seconds per step (after the first), by section\n\(report)\n".utf8))
        }
        var outputPath: String?
        if !interrupted {
            if config.loadBestModelAtEnd, let best = progress.bestCheckpoint, FileManager.default.fileExists(atPath: best) {
                try Checkpoints.loadParameters(from: best, into: state, full: mode == .full)
                if zero.stage == 3 { zero.releaseParameters(0 ..< state.storageCount, state) }
                events(.note("loaded the best checkpoint \(best) (\(metricName) \(progress.bestMetric ?? .nan))"))
            }
            // ZeRO-3: the slices gathered, so rank 0 writes the consolidated adapter or model;
            // training is over, so AdamW's m and v (not part of the final output) go first.
            if zero.stage == 3 { optimizer.releaseMoments() }
            try zero.withWholeParametersOnMain(state) { if comm.isMain { try saveFinal() } }
            outputPath = outputDir
        }
        let summary = TrainingSummary(globalStep: progress.globalStep, totalSteps: total,
                                      meanLoss: stepsRun > 0 ? lossSum / Double(stepsRun) : .nan, seconds: seconds,
                                      tokensPerSecond: Double(tokensRun) / max(seconds, 1e-9), outputPath: outputPath,
                                      interrupted: interrupted, skippedSteps: progress.skippedSteps)
        if !interrupted {
            appendLog(.object([("step", .int(progress.globalStep)), ("train_runtime", .double(seconds)),
                               ("train_loss", .double(summary.meanLoss)), ("train_tokens_per_second", .double(summary.tokensPerSecond))]))
            if comm.isMain {
                try ModelFiles.writeText(trainerStateJSON().prettyText + "\n", to: (outputDir as NSString).appendingPathComponent("trainer_state.json"))
            }
        }
        events(.finished(summary))
        return summary
    }

    /// The micro-batch plan of an epoch (cached: the shuffle is the same every time it is asked for).
    func epochPlan(_ epoch: Int) -> [[Int]] {
        if let p = epochPlans[epoch] { return p }
        let p = loader.plan(epoch: epoch)
        epochPlans = [epoch: p]
        return p
    }

    /// Forward/backward over step s's micro-batches (this rank's share of each), the gradient
    /// collectives of the ZeRO stage, clipping and the AdamW update.
    func runStep(_ s: Int) throws -> StepResult {
        try injectFault(step: s + 1)
        comm.setPhase("step \(s + 1)")
        let g = plan.gradientAccumulationSteps
        let epoch = s / plan.stepsPerEpoch, j = s % plan.stepsPerEpoch
        let batchesOfEpoch = epochPlan(epoch)
        let lo = j * g, hi = min(lo + g, batchesOfEpoch.count)
        if let dpo {
            // One process (checked at init): every micro-batch of the step is this rank's.
            let tokens = batchesOfEpoch[lo..<hi].reduce(0) { n, rows in
                let mb = Trainer.trainingBatch(loader.makeBatch(rows))
                return n + (mb.attentionMask?.reduce(0) { $0 + Int($1) } ?? mb.B * mb.T)
            }
            let r = try dpo.step(pass: pass, optimizer: optimizer, batches: batchesOfEpoch[lo..<hi].map { loader.makeBatch($0) },
                                 lr: scheduler.learningRate(afterSteps: s), maxGradNorm: config.effectiveMaxGradNorm,
                                 dropoutStream: UInt64(s * g))
            if !r.skipped { progress.optimizerSteps = optimizer.stepCount }
            return StepResult(loss: r.loss, gradNorm: Double(r.gradNorm), tokens: tokens, skipped: r.skipped, dpoMetrics: r.metrics)
        }
        let batches = batchesOfEpoch[lo..<hi].map { rows in rankShare(of: rows).map { Trainer.trainingBatch(loader.makeBatch($0)) } }
        let (r, tokens) = try TrainingStep.run(pass: pass, optimizer: optimizer, batches: batches, lr: scheduler.learningRate(afterSteps: s),
                                               maxGradNorm: config.effectiveMaxGradNorm, dropoutStream: UInt64(s * g), zero: zero)
        if r.labelledTokens == 0 {
            events(.warning("step \(s + 1): its micro-batches hold no labelled token; nothing to learn, the update was skipped"))
        }
        if r.skipped { return StepResult(loss: r.loss, gradNorm: Double(r.gradNorm), tokens: tokens, skipped: true) }
        progress.optimizerSteps = optimizer.stepCount
        return StepResult(loss: r.loss, gradNorm: Double(r.gradNorm), tokens: tokens, skipped: false)
    }

    /// A loader micro-batch as the training pass takes it (padding = segment 0); packed rows keep
    /// their per-sample positions and segments, so attention stays within each sample.
    static func trainingBatch(_ mb: MicroBatch) -> TrainingBatch {
        TrainingBatch(ids: mb.inputIds, labels: mb.labels, attentionMask: mb.segmentIds.map { $0 != 0 ? 1 : 0 },
                      positionIds: mb.isPacked ? mb.positionIds : nil, segmentIds: mb.isPacked ? mb.segmentIds : nil,
                      B: mb.batchSize, T: mb.sequenceLength)
    }

    /// transformers' fractional epoch after `steps` optimizer steps.
    func epoch(afterSteps steps: Int) -> Double { Double(steps) / Double(plan.stepsPerEpoch) }

    // MARK: - Evaluation

    /// Loss and token accuracy over every labelled token of eval_file (dropout off).
    public func evaluate(step: Int) throws -> EvalRecord {
        if zero.stage == 3, comm.size > 1, dpo == nil { return try evaluateSplit(step: step) }
        try base.acquireShared()
        defer { base.releaseShared() }
        return try evaluateWhole(step: step)
    }

    /// ZeRO-3 over several ranks: the training pass scores the records (its forward gathers
    /// each layer and the vocabulary in pieces, as in training, so no weight is ever whole on a
    /// rank); rank r takes records r, r+N, r+2N …, every rank runs the same number of passes
    /// (an idle one-token batch where it has none left), and the sums are all-reduced.
    func evaluateSplit(step: Int) throws -> EvalRecord {
        guard let data = evalData else { throw TrainingError.unsupported(key: "eval_file", message: "no eval_file is set") }
        let started = DispatchTime.now().uptimeNanoseconds
        let n = comm.size
        var total = TokenScores()
        for i in stride(from: comm.rank, to: (data.count + n - 1) / n * n, by: n) {
            var batch = ZeROEngine.idleBatch
            if i < data.count {
                let ids = Array(data.ids(i)), labels = Array(data.labels(i))
                if ids.count >= 2 { batch = TrainingBatch(ids: ids, labels: labels, B: 1, T: ids.count) }
            }
            total.add(try pass.score(batch))
        }
        let sums = try zero.sum([total.lossSum, Double(total.correct), Double(total.count)])
        let count = Int(sums[2]), d = Double(max(1, count))
        return EvalRecord(step: step, epoch: epoch(afterSteps: step), loss: sums[0] / d, tokenAccuracy: sums[1] / d,
                          tokens: count, seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    func evaluateWhole(step: Int) throws -> EvalRecord {
        guard let data = evalData else { throw TrainingError.unsupported(key: "eval_file", message: "no eval_file is set") }
        let started = DispatchTime.now().uptimeNanoseconds
        if let dpo, let evalLoader, let m = try dpo.evaluate(pass: pass, loader: evalLoader) {
            // metric_for_best_model "…acc…" reads rewards/accuracies.
            return EvalRecord(step: step, epoch: epoch(afterSteps: step), loss: m.loss, tokenAccuracy: m.rewardsAccuracies,
                              tokens: data.ids.count, seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9,
                              extra: m.named)
        }
        let model: Qwen2Model
        switch mode {
        case .full: model = Qwen2Model(weights: try ParameterWeights(config: modelConfig, state: state), backend: pass.backend)
        case .lora(let spec):
            model = Qwen2Model(weights: base, adapter: try TrainableParameters.makeAdapter(state, config: modelConfig, spec: spec),
                               backend: pass.backend)
        }
        var total = TokenScores()
        for i in 0..<data.count {
            let ids = Array(data.ids(i)), labels = Array(data.labels(i))
            if ids.count < 2 { continue }
            let cache = KVCache(config: modelConfig, batch: 1, capacity: ids.count, backend: model.backend)
            let hidden = try model.forward(ids: ids, B: 1, T: ids.count, cache: cache)
            total.add(model.score(hidden: hidden, targets: Array(labels.dropFirst()) + [-100]))
        }
        let n = max(1, total.count)
        return EvalRecord(step: step, epoch: epoch(afterSteps: step), loss: total.lossSum / Double(n),
                          tokenAccuracy: Double(total.correct) / Double(n), tokens: total.count,
                          seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    var metricName: String {
        let m = config.metricForBestModel ?? "loss"
        return m.hasPrefix("eval_") ? m : "eval_" + m
    }

    func metric(of e: EvalRecord) -> Double {
        metricName.contains("acc") ? e.tokenAccuracy : e.loss
    }

    func isBetter(_ m: Double, than best: Double?) -> Bool {
        guard let best else { return true }
        let greater = config.greaterIsBetter ?? metricName.contains("acc")
        return greater ? m > best : m < best
    }

    // MARK: - Saving

    func trainerStateJSON() -> JSONValue {
        .object([
            ("global_step", .int(progress.globalStep)),
            ("epoch", .double(epoch(afterSteps: progress.globalStep))),
            ("max_steps", .int(plan.totalSteps)),
            ("num_train_epochs", .double(config.numTrainEpochs)),
            ("logging_steps", .double(config.loggingSteps)),
            ("eval_steps", config.evalSteps.map { .double($0) } ?? .null),
            ("save_steps", .double(config.saveSteps)),
            ("train_batch_size", .int(config.perDeviceTrainBatchSize)),
            ("best_metric", progress.bestMetric.map { .double($0) } ?? .null),
            ("best_model_checkpoint", progress.bestCheckpoint.map { .string($0) } ?? .null),
            ("is_local_process_zero", .bool(true)),
            ("is_world_process_zero", .bool(true)),
            ("log_history", .array(progress.logHistory)),
            ("qwenft", .object([("optimizer_steps", .int(optimizer.stepCount)), ("skipped_steps", .int(progress.skippedSteps)),
                                ("mode", .string(plan.mode)), ("trainable_parameters", .int(plan.trainableParameters))])),
        ])
    }

    func writeWeights(to folder: String) throws {
        switch mode {
        case .full:
            try ModelFiles.writeFullModel(state: state, baseFolder: modelFolder, to: folder)
        case .lora(let spec):
            try ModelFiles.writePEFTAdapter(state: state, config: modelConfig, spec: spec, dropout: loraDropout,
                                            baseModel: modelFolder, to: folder)
            if let q = ((base as? ShardedBaseWeights)?.inner ?? base) as? NF4Weights { try QLoRABase.write(q, to: folder) }
        }
    }

    func saveCheckpoint(step: Int) throws {
        let rng = JSONValue.object([("seed", .int(config.seed)), ("data_seed", .int(config.dataSeed ?? config.seed)),
                                    ("dropout_seed", .int(config.seed)),
                                    ("next_micro_batch", .int(step * plan.gradientAccumulationSteps)),
                                    ("epoch", .int(step / plan.stepsPerEpoch))])
        let path = try zero.withWholeParametersOnMain(state) { try Checkpoints.save(outputDir: outputDir, step: step, state: state, optimizer: optimizer, scheduler: scheduler,
                                        progress: progress, trainerState: trainerStateJSON(), rng: rng, modelFolder: modelFolder,
                                        comm: comm, shardedOptimizer: zero.stage >= 1, writeWeights: writeWeights) }
        events(.checkpoint(path: path, step: step))
        guard comm.isMain else { return }
        for removed in Checkpoints.rotate(outputDir: outputDir, limit: config.saveTotalLimit, keep: progress.bestCheckpoint) {
            events(.note("removed \(removed) (save_total_limit \(config.saveTotalLimit ?? 0))"))
        }
    }

    /// The adapter (or model) and tokenizer files into output_dir.
    func saveFinal() throws {
        try writeWeights(to: outputDir)
        if case .lora = mode { try ModelFiles.copyTokenizerFiles(from: modelFolder, to: outputDir) }
    }
}
