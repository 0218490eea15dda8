import Foundation
import QwenCore
import Qwen2
import SafeTensors
import Distributed

// output_dir/checkpoint-N: everything a run needs to continue bit for bit.
//
//   adapter_config.json, adapter_model.safetensors   LoRA (PEFT format)      or
//   config.json, model.safetensors (+ index)         full fine-tuning, f32 master weights
//   optimizer.safetensors     AdamW exp_avg.<name>, exp_avg_sq.<name> (f32); under ZeRO 1/2
//                             one optimizer-rank<r>.safetensors per rank (OptimizerShards.swift)
//   scheduler.json            last_epoch (scheduler steps taken), base LR, schedule
//   rng_state.json            seed, data seed, the next micro-batch's dropout stream
//   trainer_state.json        global_step, epoch, log_history, best checkpoint (transformers' keys)
//   tokenizer files
//
// Written into a hidden temporary folder and renamed, so a crash never leaves a half checkpoint
// under a name that looks complete. Under mpirun rank 0 writes everything but the optimizer
// shards, every rank writes its shard, and rank 0 renames only after a barrier.

/// The counters a checkpoint restores besides tensors.
public struct TrainerProgressState: Sendable {
    public var globalStep: Int
    public var optimizerSteps: Int
    public var skippedSteps: Int
    public var logHistory: [JSONValue]
    public var bestMetric: Double?
    public var bestCheckpoint: String?
}

public enum Checkpoints {
    public static let prefix = "checkpoint-"

    /// checkpoint-N folders of `outputDir`, sorted by N.
    public static func list(in outputDir: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDir)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix(prefix), let n = Int(name.dropFirst(prefix.count)) else { return nil }
            let path = (outputDir as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("trainer_state.json")) else { return nil }
            return (n, path)
        }.sorted { $0.0 < $1.0 }.map { (step: $0.0, path: $0.1) }
    }

    /// The folder `resume_from_checkpoint` names: the latest of output_dir, or the given path.
    public static func resolve(_ resume: TrainingConfig.Resume, outputDir: String) throws -> String? {
        switch resume {
        case .no: return nil
        case .latest:
            guard let last = list(in: outputDir).last else {
                throw TrainingError.noCheckpoint(path: outputDir, message: "no checkpoint-N folder with a trainer_state.json; train without resume_from_checkpoint first")
            }
            return last.path
        case let .path(p):
            guard FileManager.default.fileExists(atPath: (p as NSString).appendingPathComponent("trainer_state.json")) else {
                throw TrainingError.noCheckpoint(path: p, message: "not a checkpoint folder (no trainer_state.json)")
            }
            return p
        }
    }

    /// Writes checkpoint-`step` atomically. `writeWeights` puts the adapter or model into the folder.
    static func save(outputDir: String, step: Int, state: TrainableState, optimizer: AdamW, scheduler: LRScheduler,
                     progress: TrainerProgressState, trainerState: JSONValue, rng: JSONValue, modelFolder: String,
                     comm: Communicator = SingleProcessCommunicator(), shardedOptimizer: Bool = false,
                     writeWeights: (String) throws -> Void) throws -> String {
        let final = (outputDir as NSString).appendingPathComponent("\(prefix)\(step)")
        let tmp = (outputDir as NSString).appendingPathComponent(".\(prefix)\(step).tmp")
        let fm = FileManager.default
        let main = comm.isMain
        if main {
            try? fm.removeItem(atPath: tmp)
            try ModelFiles.makeFolder(tmp)
        }
        try comm.barrier()
        do {
            if shardedOptimizer {
                try OptimizerShards.write(optimizer, layout: state.layout, rank: comm.rank, worldSize: comm.size, folder: tmp)
            } else if main {
                try OptimizerShards.writeWhole(optimizer, layout: state.layout, folder: tmp)
            }
            if main {
                try writeWeights(tmp)
                let sched = JSONValue.object([("last_epoch", .int(progress.globalStep)), ("base_lr", .double(scheduler.baseLR)),
                                              ("schedule", .string(String(describing: scheduler.schedule))),
                                              ("optimizer_steps", .int(optimizer.stepCount))])
                try ModelFiles.writeText(sched.prettyText + "\n", to: (tmp as NSString).appendingPathComponent("scheduler.json"))
                try ModelFiles.writeText(rng.prettyText + "\n", to: (tmp as NSString).appendingPathComponent("rng_state.json"))
                try ModelFiles.copyTokenizerFiles(from: modelFolder, to: tmp)
            }
            // Every rank's shard is on disk before the folder gets its final name.
            try comm.barrier()
            if main {
                // trainer_state.json last: its presence marks a complete checkpoint.
                try ModelFiles.writeText(trainerState.prettyText + "\n", to: (tmp as NSString).appendingPathComponent("trainer_state.json"))
                if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
                try fm.moveItem(atPath: tmp, toPath: final)
            }
        } catch let e as DistributedError {
            throw e
        } catch {
            if main { try? fm.removeItem(atPath: tmp) }
            throw saveFailure(error, tmp: tmp, final: final, outputDir: outputDir)
        }
        return final
    }

    /// A failed save (a full disk, most often) as an error naming the file as it would have
    /// been in checkpoint-N, saying that nothing of it was kept and where a rerun continues from.
    static func saveFailure(_ error: Error, tmp: String, final: String, outputDir: String) -> TrainingError {
        guard case let .writeFailed(path, message) = ModelFiles.writeFailure(final, error) else {
            return ModelFiles.writeFailure(final, error)
        }
        let shown = path.hasPrefix(tmp) ? final + path.dropFirst(tmp.count) : path
        let name = (final as NSString).lastPathComponent
        let next = list(in: outputDir).last.map {
            "continue from \(($0.path as NSString).lastPathComponent) with --resume_from_checkpoint true"
        } ?? "run again"
        return .writeFailed(path: shown, message: "\(message); \(name) was not saved (its partial files were removed). "
            + "Free space on that disk (or fix the folder's permissions), then \(next).")
    }

    /// Deletes the oldest checkpoints beyond `limit`, never `keep` (the best one).
    static func rotate(outputDir: String, limit: Int?, keep: String?) -> [String] {
        guard let limit, limit > 0 else { return [] }
        var all = list(in: outputDir)
        var removed: [String] = []
        let keepName = keep.map { ($0 as NSString).lastPathComponent }
        while all.count > limit {
            guard let i = all.firstIndex(where: { ($0.path as NSString).lastPathComponent != keepName }) else { break }
            try? FileManager.default.removeItem(atPath: all[i].path)
            removed.append(all[i].path)
            all.remove(at: i)
        }
        return removed
    }

    /// Loads parameters from a checkpoint's adapter or model tensors into `state`, every entry by
    /// name with its shape checked.
    static func loadParameters(from folder: String, into state: TrainableState, full: Bool) throws {
        let file = full ? folder : (folder as NSString).appendingPathComponent("adapter_model.safetensors")
        let store: SafeTensorsStore
        do { store = try SafeTensorsStore(path: file) } catch {
            throw TrainingError.badCheckpoint(path: folder, message: "cannot read its weights: \(error)")
        }
        for e in state.layout.entries {
            guard let view = store[e.name] else {
                throw TrainingError.badCheckpoint(path: folder, message: "has no tensor \(e.name); it was saved by a run with other LoRA targets, rank or mode")
            }
            guard view.shape == e.shape else {
                throw TrainingError.badCheckpoint(path: folder, message: "tensor \(e.name) has shape \(view.shape), this run needs \(e.shape)")
            }
            do { try view.copyFloats(into: state.param(e)) } catch {
                throw TrainingError.badCheckpoint(path: folder, message: "tensor \(e.name): \(error)")
            }
        }
    }

    /// Loads AdamW's moments (of this optimizer's range) and step count, from the whole-tensor
    /// file or from the shards of a run at any world size.
    static func loadOptimizer(from folder: String, into optimizer: AdamW, layout: ParameterLayout) throws {
        try OptimizerShards.load(from: folder, into: optimizer, layout: layout)
    }

    /// Reads trainer_state.json.
    static func loadProgress(from folder: String) throws -> TrainerProgressState {
        let path = (folder as NSString).appendingPathComponent("trainer_state.json")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let root = try? JSONValue.parse(text) else {
            throw TrainingError.badCheckpoint(path: folder, message: "trainer_state.json is missing or not JSON")
        }
        guard let step = root["global_step"]?.doubleValue else {
            throw TrainingError.badCheckpoint(path: folder, message: "trainer_state.json has no global_step")
        }
        var history: [JSONValue] = []
        if case let .array(items)? = root["log_history"] { history = items }
        var best: Double?
        if let b = root["best_metric"]?.doubleValue { best = b }
        var bestPath: String?
        if case let .string(p)? = root["best_model_checkpoint"] { bestPath = p }
        var optimizerSteps = Int(step), skipped = 0
        if let q = root["qwenft"] {
            if let n = q["optimizer_steps"]?.doubleValue { optimizerSteps = Int(n) }
            if let n = q["skipped_steps"]?.doubleValue { skipped = Int(n) }
        }
        return TrainerProgressState(globalStep: Int(step), optimizerSteps: optimizerSteps, skippedSteps: skipped,
                                    logHistory: history, bestMetric: best, bestCheckpoint: bestPath)
    }
}
