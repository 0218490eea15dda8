import Foundation
import QwenCore
import Distributed
import Qwen2

// How the trainer runs as one rank of N (mpirun -np N qwenft train):
//
// - The loader plans global micro-batches of N·b rows (b = per_device_train_batch_size), in the
//   single-process order; rank r takes rows [r·b, (r+1)·b) of each. Global micro-batch k is then
//   single-process micro-batch k at batch N·b. A rank whose share of the last, short micro-batch
//   is empty runs an empty, zero-weight micro-batch: it still joins every collective.
// - Rank 0 alone prints, logs and writes; it tokenises first (filling the dataset cache), the
//   others then read the cache.
// - Every rank checks that it sees rank 0's config, data and model (hashes broadcast from rank 0).

extension Communicator {
    /// Runs `body` on rank 0, then (after a barrier) on the other ranks: rank 0 fills a cache
    /// that the others then read, instead of N processes racing to build it.
    func mainFirst(_ body: () throws -> Void) throws {
        if size == 1 { try body(); return }
        if isMain { try body() }
        try barrier()
        if !isMain { try body() }
    }
}

extension Trainer {
    /// Rows [rank·b, (rank+1)·b) of a global micro-batch; nil when this rank's share is empty.
    func rankShare(of rows: [Int]) -> [Int]? {
        let b = config.perDeviceTrainBatchSize
        let lo = min(rows.count, comm.rank * b), hi = min(rows.count, lo + b)
        return lo < hi ? Array(rows[lo..<hi]) : nil
    }

    /// Stops with an error naming what differs when this rank's config, data or model differs
    /// from rank 0's (a different file on one host, another model version…).
    func checkRanksAgree(train: TokenizedDataset) throws {
        guard comm.size > 1 else { return }
        var h: [UInt64] = [
            Fingerprint.of(Data(config.resolvedJSON().compactText.utf8)),
            Fingerprint.of(train.ids, train.labels, train.starts.map { Int64($0) }),
            // ZeRO-3, full fine-tuning: ranks hold different slices, compared below instead.
            (zero.stage == 3 ? (mode == .full ? UInt64(state.storageCount) : initialWeights.own) : Fingerprint.of(state.hostParams, count: state.storageCount))
                ^ Fingerprint.of(Data(((try? String(contentsOfFile: modelFolder + "/config.json", encoding: .utf8)) ?? "").utf8)),
        ]
        let mine = h
        try h.withUnsafeMutableBytes { p in try comm.broadcast(p.baseAddress!, byteCount: p.count, root: 0) }
        let names = ["the training config (after --KEY overrides)", "the tokenised training data (train_file, template, tokenizer)",
                     "the model (config.json and initial trainable weights)"]
        for i in 0..<3 where h[i] != mine[i] {
            throw TrainerError.ranksDisagree(rank: comm.rank, what: names[i])
        }
        guard zero.stage == 3, mode == .full else { return }
        // Rank r's slice as r holds it against the same slice as rank r−1 read it from its file.
        var all = [UInt64](repeating: 0, count: 2 * comm.size)
        all[2 * comm.rank] = initialWeights.own
        all[2 * comm.rank + 1] = initialWeights.next
        try all.withUnsafeMutableBytes { p in try comm.allGather(p.baseAddress!, byteCounts: Array(repeating: 16, count: comm.size)) }
        let previous = (comm.rank + comm.size - 1) % comm.size
        if all[2 * previous + 1] != initialWeights.own {
            throw TrainerError.ranksDisagree(rank: comm.rank, what: "the model (its slice of the initial weights differs from rank \(previous)'s reading of it)")
        }
    }

    /// Stage 3, before the slices are released: LoRA, the whole adapter's fingerprint (every
    /// rank holds it now); full fine-tuning, this rank's slice's and the next rank's slice's as
    /// this rank's model file gives it (filled into the buffer, fingerprinted, released).
    static func sliceFingerprints(_ loaded: WeightProvider, state: TrainableState, zero: ZeROEngine, mode: TrainingMode) throws -> (own: UInt64, next: UInt64) {
        let comm = zero.comm
        guard comm.size > 1 else { return (0, 0) }
        guard mode == .full else {
            // The entries only: the reserved buffer's padding is not written.
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for e in state.layout.entries { h = Fingerprint.of(UnsafeRawPointer(state.param(e)), bytes: e.count * 4, seed: h) }
            return (h, 0)
        }
        let own = zero.optimizerRange
        let next = state.layout.shardRange(rank: (comm.rank + 1) % comm.size, worldSize: comm.size)
        let mine = Fingerprint.of(state.hostParams + own.lowerBound, count: own.count)
        (state.hostParams + next.lowerBound).update(repeating: 0, count: next.count)
        try TrainableParameters.copyWeights(from: loaded, into: state, range: next)
        let theirs = Fingerprint.of(state.hostParams + next.lowerBound, count: next.count)
        zero.releaseParameters(next, state)
        return (mine, theirs)
    }

    /// True on every rank when any rank asked to stop (Ctrl-C, SIGTERM): all stop at one step.
    func anyRankStops(_ local: Bool) throws -> Bool {
        guard comm.size > 1 else { return local }
        return try zero.sum([local ? 1 : 0])[0] > 0
    }

    /// Test hooks for the fault tests: QWENFT_TEST_FAULT="RANK:STEP:fail|stop|slow" makes that
    /// rank throw (as a bad file would) or SIGSTOP itself (as a hung rank) when it starts that
    /// step, or take 2 s longer over every step from then on (a long step, for the signal test).
    func injectFault(step: Int) throws {
        guard comm.size > 1, let spec = ProcessInfo.processInfo.environment["QWENFT_TEST_FAULT"] else { return }
        let parts = spec.split(separator: ":")
        guard parts.count == 3, Int(parts[0]) == comm.rank, let at = Int(parts[1]) else { return }
        switch parts[2] {
        case "slow" where step >= at: usleep(2_000_000)
        case "stop" where step == at: raise(SIGSTOP)
        case "fail" where step == at: throw TrainerError.injectedFault(rank: comm.rank, step: step)
        default: break
        }
    }
}

/// FNV-1a over 64-bit words, for comparing what ranks see (not for security).
enum Fingerprint {
    static func of(_ p: UnsafeRawPointer, bytes n: Int, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = seed
        let words = n / 8
        for i in 0..<words { h = (h ^ p.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x100_0000_01b3 }
        for i in (words * 8)..<n { h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* 0x100_0000_01b3 }
        return h ^ UInt64(n)
    }

    static func of(_ d: Data) -> UInt64 { d.withUnsafeBytes { of($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, bytes: $0.count) } }

    static func of(_ p: UnsafePointer<Float>, count: Int) -> UInt64 { of(UnsafeRawPointer(p), bytes: count * 4) }

    static func of(_ a: [Int32], _ b: [Int32], _ c: [Int64]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        a.withUnsafeBytes { h = of($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, bytes: $0.count, seed: h) }
        b.withUnsafeBytes { h = of($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, bytes: $0.count, seed: h) }
        c.withUnsafeBytes { h = of($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, bytes: $0.count, seed: h) }
        return h
    }
}
