import Foundation
import QwenCore
import Distributed

// Data parallelism and ZeRO stages 0–3 over the flat trainable buffers (see ParameterLayout):
//
//   stage 0  gradients all-reduced (in buckets); every rank runs AdamW over the whole buffer
//   stage 1  gradients all-reduced; AdamW m, v exist for this rank's 1/N slice only, the rank
//            updates that slice of the parameters, then the parameters are all-gathered
//   stage 2  as 1, but the gradients are reduce-scattered layer by layer as the backward pass
//            completes them (in buckets of at most reduce_bucket_size): each rank adds its part
//            of every micro-batch's sums into its slice, and the layer's pages of the full
//            gradient buffer are handed back, so that buffer is never whole; the clipping norm
//            is the all-reduced sum of the slices' squared norms
//   stage 3  as 2, and the parameters are partitioned too (ZeRO3.swift): a rank keeps its slice
//            of the flat buffer and the model reads each layer through a WeightProvider that
//            all-gathers it on acquire and hands its pages back on release; a LoRA run's frozen
//            base is partitioned the same way in its stored dtype (ShardedBaseWeights)
//
// Slices are the equal, aligned ranges of `ParameterLayout.shardRange(rank:worldSize:)`. The
// numbers are the same at every stage: the update of an element depends only on its own
// gradient, m and v, and the global norm.

/// The ZeRO settings of a run: from `zero_stage`, else the DeepSpeed config's zero_optimization.
public struct ZeROSettings: Sendable, Equatable {
    /// The stage asked for (0…3).
    public var requestedStage: Int
    /// The stage run: the one asked for, except that one process is stage 0.
    public var stage: Int
    /// Stage 3: tensors with fewer elements than this stay whole on every rank
    /// (stage3_param_persistence_threshold; DeepSpeed's default 1e5, "auto" 10 × hidden size as
    /// transformers fills it in: nil here, resolved by `persistenceThreshold(hiddenSize:)`).
    public var persistenceThreshold: Int? = 100_000
    /// Elements per reduce-scatter (stage 2) and per all-reduce (stages 0, 1).
    public var reduceBucketSize: Int
    /// Stage 3: elements gathered ahead of the pass (the next layer, while this one computes) and
    /// the most elements of one embedding / lm_head chunk (stage3_prefetch_bucket_size; DeepSpeed's
    /// default 5e7; "auto" 0.9 × hidden² as transformers fills it in: nil here, resolved by
    /// `prefetchBucketSize(hiddenSize:)`; 0: no prefetch).
    public var prefetchBucketSize: Int? = 50_000_000
    /// Lines for the log: what the DeepSpeed keys mean here, once.
    public var notes: [String] = []
    public var warnings: [String] = []

    /// DeepSpeed's defaults: reduce_bucket_size and allreduce_bucket_size 5e8 elements.
    public static let defaultBucket = 500_000_000

    /// The persistence threshold in elements for a model of hidden size `hiddenSize`.
    public func persistenceThreshold(hiddenSize: Int) -> Int { persistenceThreshold ?? 10 * hiddenSize }

    /// The prefetch bucket in elements for a model of hidden size `hiddenSize`.
    public func prefetchBucketSize(hiddenSize: Int) -> Int { prefetchBucketSize ?? (9 * hiddenSize * hiddenSize) / 10 }

    /// ZeRO keys that change nothing in this implementation (each listed once when present).
    static let inertKeys = ["overlap_comm", "contiguous_gradients", "allgather_partitions", "allgather_bucket_size",
                            "reduce_scatter", "round_robin_gradients", "sub_group_size",
                            "stage3_max_live_parameters", "stage3_max_reuse_distance",
                            "stage3_gather_16bit_weights_on_model_save", "stage3_gather_fp16_weights_on_model_save",
                            "elastic_checkpoint", "ignore_unused_parameters", "load_from_fp32_weights", "cpu_offload",
                            "zero_hpz_partition_size", "zero_quantized_weights", "zero_quantized_gradients",
                            "mics_shard_size", "memory_efficient_linear", "use_multi_rank_bucket_allreduce"]

    public init(config: TrainingConfig, worldSize: Int) throws {
        let zero = config.deepspeed?.resolved["zero_optimization"]
        var dsStage = config.deepspeed?.zeroStage
        if let z = zero, case .object = z {} else if zero != nil, zero != .null {
            throw TrainingError.wrongConfigType(key: "deepspeed.zero_optimization", source: config.deepspeed?.source ?? "deepspeed",
                                               expected: "an object", got: zero?.kindName ?? "null")
        }
        if zero == nil { dsStage = config.deepspeed == nil ? nil : dsStage }
        if let s = config.zeroStage, let d = dsStage, s != d {
            throw TrainingError.badConfigValue(key: "zero_stage", source: "config",
                                               message: "is \(s), but the DeepSpeed config's zero_optimization.stage is \(d); keep one")
        }
        let requested = config.zeroStage ?? dsStage ?? 0
        guard (0...3).contains(requested) else {
            throw TrainingError.badConfigValue(key: "zero_stage", source: "config", message: "must be 0, 1, 2 or 3, got \(requested)")
        }
        requestedStage = requested
        stage = worldSize == 1 ? 0 : requested
        reduceBucketSize = Self.defaultBucket
        if let z = zero {
            func bucket(_ key: String) throws -> Int? {
                guard let v = z[key], v != .null, v != .string("auto") else { return nil }
                var x: Double?
                if let n = v.doubleValue { x = n }
                if case let .string(s) = v { x = Double(s) }
                guard let n = x, n >= 1, n < 1e15 else {
                    throw TrainingError.badConfigValue(key: "deepspeed.zero_optimization.\(key)", source: config.deepspeed?.source ?? "deepspeed",
                                                       message: "must be a positive element count, got \(v.compactText)")
                }
                return Int(n)
            }
            if let v = z["stage3_param_persistence_threshold"], v != .null {
                if v == .string("auto") {
                    persistenceThreshold = nil
                } else if v.doubleValue == 0 {
                    persistenceThreshold = 0
                } else {
                    persistenceThreshold = try bucket("stage3_param_persistence_threshold")
                }
            }
            if let v = z["stage3_prefetch_bucket_size"], v != .null {
                if v == .string("auto") {
                    prefetchBucketSize = nil
                } else if v.doubleValue == 0 {
                    prefetchBucketSize = 0
                } else {
                    prefetchBucketSize = try bucket("stage3_prefetch_bucket_size")
                }
            }
            reduceBucketSize = try bucket(requested == 2 || requested == 3 ? "reduce_bucket_size" : "allreduce_bucket_size")
                ?? bucket("reduce_bucket_size") ?? Self.defaultBucket
            let ds = config.deepspeed
            for (key, device) in [("offload_optimizer", ds?.offloadOptimizer), ("offload_param", ds?.offloadParam)] {
                switch device {
                case .cpu?:
                    notes.append("zero_optimization.\(key) device cpu: on the CPU backend this state already lives in host memory; nothing moves")
                case .nvme?:
                    throw TrainingError.badConfigValue(key: "deepspeed.zero_optimization.\(key).device", source: ds?.source ?? "deepspeed",
                                                       message: "\"nvme\" offload is not available in qwenft; use \"cpu\" (the CPU backend keeps this state in host memory) or \"none\"")
                default: break
                }
            }
            if case let .object(pairs) = z {
                let inert = pairs.map(\.0).filter { Self.inertKeys.contains($0) }
                if !inert.isEmpty {
                    notes.append("zero_optimization keys with no effect here: " + inert.joined(separator: ", ")
                                 + (requested == 3 ? " (stage 3 gathers each layer when the pass reaches it, the next one prefetched)"
                                                   : " (reduction runs as the backward pass completes each layer; parameters stay whole on every rank)"))
                }
            }
        }
        if worldSize > 1 {
            notes.append("ZeRO stage \(stage) over \(worldSize) ranks" + (requested != stage ? " (asked for \(requested))" : ""))
        }
    }
}

/// The collectives of one optimizer step at a ZeRO stage, over a run's flat buffers.
final class ZeROEngine {
    let comm: Communicator
    let stage: Int
    /// Length of the params/grads buffers: `layout.storageCount(worldSize:)`.
    let storageCount: Int
    /// This rank's slice of the flat buffers: the optimizer's range (the whole layout at stage 0).
    let optimizerRange: Range<Int>
    /// The part of the gradients this rank holds summed after `reduceGradients`.
    let gradientRange: Range<Int>
    let bucket: Int
    /// Stage 2: this rank's slice of the step's summed gradients.
    var shardSum: AlignedBuffer<Float>?
    /// Stage 2: the flat range of each layer's gradients (empty when a layer's entries are not
    /// contiguous: then everything is reduced after each micro-batch), and the ranges outside
    /// every layer (embedding, final norm, lm_head, padding).
    let layerRanges: [Range<Int>]
    let restRanges: [Range<Int>]
    /// Bytes this rank sent in collectives, and seconds spent in them, since the start.
    var bytesCommunicated = 0
    var commSeconds = 0.0
    /// Stage 3: the flat ranges whose pages a rank keeps although they are outside its slice
    /// (tensors under the persistence threshold), sorted.
    var persistentRanges: [Range<Int>] = []
    /// Stage 3, full fine-tuning: the embedding's and lm_head's flat ranges, which the pass
    /// gathers and reduces in chunks itself (ZeRO3Vocabulary); the rest ranges leave them out.
    var vocabRanges: [Range<Int>] = []
    /// Stage 3: the most bytes one gather brought into a buffer (a layer, a vocab chunk, the
    /// lookup's rows): what the pass ever holds gathered at once.
    var largestGatherBytes = 0
    /// Stage 3: elements of the next layer gathered while this one computes (0: none).
    var prefetchBucket = 0

    init(comm: Communicator, layout: ParameterLayout, settings: ZeROSettings) {
        self.comm = comm
        let n = comm.size
        stage = n == 1 ? 0 : settings.stage
        storageCount = layout.storageCount(worldSize: n)
        optimizerRange = stage == 0 ? 0 ..< layout.count : layout.shardRange(rank: comm.rank, worldSize: n)
        gradientRange = stage >= 2 ? optimizerRange : 0 ..< storageCount
        bucket = max(ParameterLayout.alignment * n, settings.reduceBucketSize)
        (layerRanges, restRanges) = Self.layerRanges(layout, storageCount: storageCount)
    }

    /// Entries named "….layers.<l>.…" grouped by l, when each layer's entries are contiguous.
    static func layerRanges(_ layout: ParameterLayout, storageCount: Int) -> ([Range<Int>], [Range<Int>]) {
        var layerOf: [Int?] = []
        for e in layout.entries {
            var l: Int?
            if let r = e.name.range(of: "layers.") {
                let digits = e.name[r.upperBound...].prefix { $0.isNumber }
                if !digits.isEmpty, e.name[r.upperBound...].dropFirst(digits.count).hasPrefix(".") { l = Int(digits) }
            }
            layerOf.append(l)
        }
        var ranges: [Range<Int>] = []
        var i = 0
        let entries = layout.entries
        while i < entries.count {
            guard let l = layerOf[i] else { i += 1; continue }
            guard l == ranges.count else { return ([], [0 ..< storageCount]) }
            var j = i
            while j + 1 < entries.count, layerOf[j + 1] == l { j += 1 }
            ranges.append(entries[i].offset ..< entries[j].offset + entries[j].count)
            i = j + 1
        }
        if Set(layerOf.compactMap { $0 }).count != ranges.count { return ([], [0 ..< storageCount]) }
        var rest: [Range<Int>] = []
        var at = 0
        for r in ranges {
            if at < r.lowerBound { rest.append(at ..< r.lowerBound) }
            at = r.upperBound
        }
        if at < storageCount { rest.append(at ..< storageCount) }
        return (ranges, rest)
    }

    func timed<R>(_ body: () throws -> R) rethrows -> R {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { commSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        return try body()
    }

    /// Zeroes the gradients for a step (stage 2: hands their pages back, clears the slice sum).
    func beginStep(_ state: TrainableState) {
        guard stage >= 2 else { state.zeroGrads(); return }
        state.releaseGradients(0 ..< storageCount)
        if shardSum == nil { shardSum = AlignedBuffer(count: optimizerRange.count) }
        shardSum!.pointer.update(repeating: 0, count: optimizerRange.count)
    }

    /// Stage 2, after micro-batch k's backward (or, on a rank with no rows for it, instead of
    /// it): the layers this rank's pass did not reduce as it went, then the rest.
    func finishMicroBatch(_ state: TrainableState, ranPass: Bool) throws {
        guard stage >= 2 else { return }
        if !ranPass || layerRanges.isEmpty {
            for l in layerRanges.indices.reversed() { try reduce(layerRanges[l], state) }
        }
        for r in restRanges { for p in Self.subtracting(vocabRanges, from: r) { try reduce(p, state) } }
    }

    /// `range` without the parts in `holes`, in order.
    static func subtracting(_ holes: [Range<Int>], from range: Range<Int>) -> [Range<Int>] {
        var pieces = [range]
        for hole in holes where hole.overlaps(range) {
            pieces = pieces.flatMap { p -> [Range<Int>] in
                guard p.overlaps(hole) else { return [p] }
                return [p.lowerBound ..< max(p.lowerBound, hole.lowerBound), min(p.upperBound, hole.upperBound) ..< p.upperBound].filter { !$0.isEmpty }
            }
        }
        return pieces
    }

    /// Stage 2, from the pass: layer l's gradients are complete.
    func layerDone(_ l: Int, _ state: TrainableState) throws { try reduce(layerRanges[l], state) }

    /// Stage 2: each rank's part of grads[range] summed over ranks and added into its slice
    /// sum; the range's memory is then released.
    private func reduce(_ range: Range<Int>, _ state: TrainableState) throws {
        let n = comm.size, grads = state.hostGrads
        let sum = shardSum!.pointer, mine = optimizerRange
        let slice = storageCount / n
        var lo = range.lowerBound
        try timed {
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + bucket)
                let counts = (0..<n).map { r in max(0, min(hi, (r + 1) * slice) - max(lo, r * slice)) }
                try comm.reduceScatterSum(UnsafePointer(grads + lo), grads + lo, counts: counts)
                let own = counts[comm.rank]
                if own > 0 {
                    let dst = sum + (max(lo, mine.lowerBound) - mine.lowerBound), src = grads + lo
                    for i in 0..<own { dst[i] += src[i] }
                }
                bytesCommunicated += (hi - lo - own) * MemoryLayout<Float>.size
                lo = hi
            }
        }
        state.releaseGradients(range)
    }

    /// Σ over ranks of the gradients: all of them (stages 0, 1), or (stage 2, already reduced)
    /// this rank's slice sum copied into its part of the gradient buffer.
    func reduceGradients(_ grads: UnsafeMutablePointer<Float>) throws {
        let n = comm.size
        guard n > 1 else { return }
        if stage >= 2 {
            (grads + optimizerRange.lowerBound).update(from: shardSum!.pointer, count: optimizerRange.count)
            // Its pages go back until the next step zeroes it: slice sum and gradients never both stay.
            TrainableState.dropPages(UnsafeMutableRawPointer(shardSum!.pointer), UnsafeMutableRawPointer(shardSum!.pointer + optimizerRange.count))
            return
        }
        try timed {
            var lo = 0
            while lo < storageCount {
                let c = min(bucket, storageCount - lo)
                try comm.allReduceSum(grads + lo, count: c)
                lo += c
            }
            bytesCommunicated += 2 * storageCount * (n - 1) / n * MemoryLayout<Float>.size
        }
    }

    /// Stages 2 and 3, after the update: the slice's gradients are not needed until the next
    /// step writes them, so their pages go back (the save and evaluation that may follow run
    /// without them).
    func endStep(_ state: TrainableState) {
        if stage >= 2 { state.releaseGradients(optimizerRange) }
    }

    /// Σ g² over every gradient of the step, the same on every rank.
    func squaredNorm(_ grads: DevicePointer<Float>, backend: any TrainingBackend) throws -> Double {
        let local = backend.gradSquaredNorm(grads, range: gradientRange)
        guard stage >= 2 else { return local }
        return try timed { try comm.allReduceSum(local) }
    }

    /// After this rank updated its slice: every rank gets every slice (stages 1, 2).
    func gatherParameters(_ params: UnsafeMutablePointer<Float>) throws {
        let n = comm.size
        guard n > 1, stage == 1 || stage == 2 else { return }
        try timed {
            let slice = storageCount / n
            try comm.allGather(UnsafePointer(params + comm.rank * slice), params, chunkCount: slice)
        }
        bytesCommunicated += storageCount * (n - 1) / n * MemoryLayout<Float>.size
    }

    /// Σ over ranks of small Double values (token counts, loss sums): one collective.
    func sum(_ values: [Double]) throws -> [Double] {
        guard comm.size > 1 else { return values }
        var v = values
        try timed {
            try v.withUnsafeMutableBufferPointer { p in try comm.allReduceSum(p.baseAddress!, count: p.count) }
        }
        return v
    }
}
