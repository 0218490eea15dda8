import Foundation
import Qwen2
import QwenCore
import SafeTensors
import Testing
@testable import Training

@Suite(.serialized) struct TrainerTests {
    /// 6 steps straight vs 3 steps, stop, resume for 3: the same per-step losses and the same
    /// final adapter, byte for byte (LoRA dropout on, accumulation 2, warmup + cosine).
    @Test func resumeIsBitIdentical() throws {
        let straight = try trainerTempDir() + "/run"
        let r1 = try Trainer(config: try TrainerFixture.config(output: straight)).train()
        #expect(r1.globalStep == 6 && !r1.interrupted)

        let split = try trainerTempDir() + "/run"
        var steps = 0
        let first = try Trainer(config: try TrainerFixture.config(output: split, [("save_steps", .int(100))])) { e in
            if case .step = e { steps += 1 }
        }
        let r2 = try first.train(shouldStop: { steps >= 3 })
        #expect(r2.interrupted && r2.globalStep == 3)
        #expect(FileManager.default.fileExists(atPath: split + "/checkpoint-3/optimizer.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: split + "/adapter_model.safetensors"))
        let resumed = try Trainer(config: try TrainerFixture.config(output: split, [("resume_from_checkpoint", .bool(true))]))
        #expect(resumed.plan.startStep == 3)
        let r3 = try resumed.train()
        #expect(r3.globalStep == 6)

        #expect(try fileBytes(straight + "/adapter_model.safetensors") == fileBytes(split + "/adapter_model.safetensors"))
        let a = try loggedLosses(straight), b = try loggedLosses(split)
        #expect(a.count == 6)
        #expect(a == b)
    }

    /// Checkpoint contents, save_total_limit, the PEFT config, trainer_state.json.
    @Test func checkpointsAndFinalAdapter() throws {
        let out = try trainerTempDir() + "/run"
        var events: [String] = []
        let trainer = try Trainer(config: try TrainerFixture.config(output: out, [("save_steps", .int(2)), ("save_total_limit", .int(2)),
                                                                                  ("eval_file", .string(try TrainerFixture.folders().data)),
                                                                                  ("eval_strategy", .string("steps")), ("eval_steps", .int(3))])) { e in
            switch e {
            case .log: events.append("log")
            case .evaluation: events.append("eval")
            case .checkpoint: events.append("save")
            default: break
            }
        }
        let summary = try trainer.train()
        #expect(summary.meanLoss.isFinite)
        #expect(events.filter { $0 == "log" }.count == 6)
        #expect(events.filter { $0 == "eval" }.count == 2)
        #expect(events.filter { $0 == "save" }.count == 3)
        #expect(Checkpoints.list(in: out).map(\.step) == [4, 6])
        for name in ["adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "scheduler.json",
                     "rng_state.json", "trainer_state.json", "tokenizer.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/checkpoint-6/" + name), "checkpoint-6/\(name)")
        }
        let peft = try JSONValue.parse(String(contentsOfFile: out + "/adapter_config.json", encoding: .utf8))
        #expect(peft["peft_type"] == .string("LORA"))
        #expect(peft["r"] == .int(4))
        #expect(peft["target_modules"] == .array(Projection.allCases.map { .string($0.rawValue) }))
        // The adapter loads back as the model's adapter with the trained values.
        let f = try TrainerFixture.folders()
        let cfg = try Qwen2Config.load(URL(fileURLWithPath: f.model + "/config.json"))
        let loaded = try ModelFolder.loadAdapter(out, config: cfg)
        guard case .lora(let spec) = trainer.mode else { Issue.record("not LoRA"); return }
        let a = try trainer.state.param(TrainableParameters.loraName(layer: 1, .down, "A"))
        #expect(Array(UnsafeBufferPointer(start: loaded.layers[1][.down]!.a.pointer, count: a.count)) == Array(a))
        #expect(loaded.scale == spec.scale)
        let state = try JSONValue.parse(String(contentsOfFile: out + "/trainer_state.json", encoding: .utf8))
        #expect(state["global_step"] == .int(6))
        let resolved = try TrainingConfig.load(path: out + "/training_config.json")
        #expect(resolved.maxSteps == 6)
        // The eval loss is logged with the step records.
        let log = try String(contentsOfFile: out + "/trainer_log.jsonl", encoding: .utf8)
        #expect(log.contains("\"eval_loss\""))
        #expect(log.contains("\"grad_norm\""))
    }

    /// Gradient accumulation: 1 micro-batch of 4 rows ≡ 2 of 2 rows (loss normalised by the
    /// step's labelled tokens), to rounding.
    @Test func accumulationMatchesOneBigBatch() throws {
        let big = try trainerTempDir() + "/run"
        let small = try trainerTempDir() + "/run"
        let common: [(String, JSONValue)] = [("max_steps", .int(2)), ("lora_dropout", .double(0)), ("shuffle", .bool(false)), ("save_steps", .int(100))]
        _ = try Trainer(config: try TrainerFixture.config(output: big, common + [("per_device_train_batch_size", .int(4)), ("gradient_accumulation_steps", .int(1))])).train()
        _ = try Trainer(config: try TrainerFixture.config(output: small, common + [("per_device_train_batch_size", .int(2)), ("gradient_accumulation_steps", .int(2))])).train()
        let a = try loggedLosses(big), b = try loggedLosses(small)
        #expect(abs(a[1]! - b[1]!) / a[1]! < 1e-5)
        #expect(abs(a[2]! - b[2]!) / a[2]! < 1e-4)
    }

    /// packing: true trains (several samples per row, attention kept within each), and
    /// report_to tensorboard writes every logged value as TensorBoard scalars in output_dir/runs/.
    @Test func packedRunTrainsAndWritesTensorBoardEvents() throws {
        let out = try trainerTempDir() + "/run"
        let f = try TrainerFixture.folders()
        var notes: [String] = []
        let trainer = try Trainer(config: try TrainerFixture.config(output: out, [
            ("packing", .bool(true)), ("per_device_train_batch_size", .int(1)), ("gradient_accumulation_steps", .int(1)),
            ("max_steps", .int(12)), ("lora_dropout", .double(0)), ("learning_rate", .double(5e-3)), ("warmup_steps", .int(0)),
            ("save_steps", .int(100)), ("max_seq_length", .int(128)), ("report_to", .string("tensorboard")),
            ("eval_file", .string(f.data)), ("eval_strategy", .string("steps")), ("eval_steps", .int(6)),
        ])) { e in
            switch e {
            case .note(let s), .warning(let s): notes.append(s)
            default: break
            }
        }
        #expect(!notes.contains { $0.contains("not written") })
        // The loader packs: fewer micro-batches than records, several segments in a row.
        #expect(trainer.plan.microBatchesPerEpoch < TrainerFixture.records.count)
        let summary = try trainer.train()
        #expect(summary.globalStep == 12)
        let losses = try loggedLosses(out)
        #expect(losses.count == 12 && losses.values.allSatisfy(\.isFinite))
        let first = (losses[1]! + losses[2]! + losses[3]!) / 3, last = (losses[10]! + losses[11]! + losses[12]!) / 3
        #expect(last < first, "packed training should lower the loss: first steps \(first), last \(last)")

        let runs = out + "/runs"
        let folders = try FileManager.default.contentsOfDirectory(atPath: runs)
        #expect(folders.count == 1)
        let folder = runs + "/" + folders[0]
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("events.out.tfevents.") }
        #expect(files.count == 1)
        let events = try tfRecords(Array(try fileBytes(folder + "/" + files[0]))).map(DecodedEvent.init)
        #expect(events.first?.fileVersion == "brain.Event:2")
        var byTag: [String: [(Int64, Float)]] = [:]
        for e in events.dropFirst() { for (tag, v) in e.scalars { byTag[tag, default: []].append((e.step, v)) } }
        for tag in ["train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "eval/loss", "eval/token_accuracy"] {
            #expect(byTag[tag] != nil, "no \(tag) in \(byTag.keys.sorted())")
        }
        #expect(byTag["train/loss"]?.map(\.0) == Array(1...12))
        #expect(byTag["train/loss"]?.map(\.1) == (1...12).map { Float(losses[$0]!) })
        #expect(byTag["eval/loss"]?.map(\.0) == [6, 12])
    }

    @Test func fullFineTuningWritesAModelFolder() throws {
        let out = try trainerTempDir() + "/run"
        let summary = try Trainer(config: try TrainerFixture.config(output: out, [("train_mode", .string("full")), ("max_steps", .int(2)),
                                                                                  ("learning_rate", .double(1e-4)), ("save_steps", .int(2))])).train()
        #expect(summary.globalStep == 2)
        for name in ["config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "checkpoint-2/model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name)")
        }
        // The written folder loads as a model; a resume from its checkpoint restores the weights.
        _ = try ModelFolder(path: out)
    }

    @Test func refusesAnOutputDirOfAnotherRun() throws {
        let out = try trainerTempDir() + "/run"
        _ = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(1))])).train()
        #expect { _ = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(1))])) } throws: {
            "\($0)".contains("already holds another run") && "\($0)".contains("overwrite_output_dir")
        }
        _ = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(1)), ("overwrite_output_dir", .bool(true))]))
        #expect { _ = try Trainer(config: try TrainerFixture.config(output: try trainerTempDir() + "/none", [("resume_from_checkpoint", .bool(true))])) } throws: {
            "\($0)".contains("no checkpoint-N folder")
        }
    }

    /// merge: W + s·B·A gives the same logits as the base with the adapter applied unmerged.
    @Test func mergedModelMatchesAdapter() throws {
        let out = try trainerTempDir() + "/run"
        _ = try Trainer(config: try TrainerFixture.config(output: out, [("max_steps", .int(2)), ("learning_rate", .double(1e-2))])).train()
        let f = try TrainerFixture.folders()
        let merged = try trainerTempDir() + "/merged"
        let report = try AdapterMerge.merge(base: f.model, adapter: out, out: merged, maxShardSize: 4_000_000)
        #expect(report.mergedPairs == 14)
        #expect(FileManager.default.fileExists(atPath: merged + "/model.safetensors.index.json"))
        let a = try ModelFolder(path: f.model, adapter: out).model
        let b = try ModelFolder(path: merged).model
        let ids: [Int32] = [9707, 11, 1879, 525, 498, 30, 151645, 198]
        let ha = try a.forward(ids: ids, B: 1, T: ids.count, cache: KVCache(config: a.config, batch: 1, capacity: ids.count))
        let la = a.logits(hidden: ha, rows: [7])
        let hb = try b.forward(ids: ids, B: 1, T: ids.count, cache: KVCache(config: b.config, batch: 1, capacity: ids.count))
        let lb = b.logits(hidden: hb, rows: [7])
        var maxDiff: Float = 0
        for i in la.indices { maxDiff = max(maxDiff, abs(la[i] - lb[i])) }
        #expect(maxDiff < 1e-4)
        #expect { _ = try AdapterMerge.merge(base: f.model, adapter: f.model, out: merged + "2") } throws: { "\($0)".contains("adapter_model.safetensors") }
    }
}
