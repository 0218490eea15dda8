/// One micro-batch for the model's forward/backward: B rows of T tokens, row-major (B, T).
///
/// - `inputIds`: token ids; padding (right) with `padId`.
/// - `labels`: unshifted, as transformers' (the loss predicts labels[b, t] from position t−1 and
///   ignores −100): padding and prompt tokens are −100. With packing, the first token of every
///   packed sample is −100 too, so no prediction crosses from one sample into the next.
/// - `positionIds`: 0, 1, 2… restarting at every packed sample (RoPE positions); 0 on padding.
/// - `segmentIds`: 1, 2, 3… the packed sample each token belongs to within its row, 0 on padding.
///   Attention must be causal AND within one segment: token t attends to token s iff s ≤ t and
///   segmentIds[b, s] == segmentIds[b, t] (and != 0). Without packing every row has one segment,
///   so this is the ordinary causal mask plus "ignore padding" (right padding never comes before
///   a real token, so plain causal attention gives the same result for the real tokens).
/// - `sampleIndices`: which dataset samples the rows hold (per row, in order).
public struct MicroBatch: Sendable, Equatable {
    public var batchSize: Int
    public var sequenceLength: Int
    public var inputIds: [Int32]
    public var labels: [Int32]
    public var positionIds: [Int32]
    public var segmentIds: [Int32]
    public var sampleIndices: [[Int]]
    /// Tokens that are not padding.
    public var tokenCount: Int
    /// Labels that are not −100 after the shift (what the loss averages over): labels[b, t] for
    /// t ≥ 1 — the first column is never predicted.
    public var targetCount: Int
    /// True when rows hold several samples (attention must respect `segmentIds`).
    public var isPacked: Bool

    /// Segment boundaries of row b as [start, end) ranges, for kernels that run attention per
    /// sample (varlen / cu_seqlens style).
    public func segments(row b: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let base = b * sequenceLength
        var t = 0
        while t < sequenceLength {
            let s = segmentIds[base + t]
            if s == 0 { break }
            var e = t + 1
            while e < sequenceLength && segmentIds[base + e] == s { e += 1 }
            out.append(t..<e)
            t = e
        }
        return out
    }
}

/// How a dataset is cut into micro-batches.
public struct BatchingOptions: Sendable {
    public var batchSize: Int
    /// Concatenate samples into rows of up to `maxSeqLength` tokens (see `MicroBatch`).
    public var packing: Bool
    public var maxSeqLength: Int
    /// Put samples of similar length together (transformers' LengthGroupedSampler: shuffled
    /// mega-batches of 50 batches, each sorted by length, longest batch first).
    public var groupByLength: Bool
    public var shuffle: Bool
    public var seed: UInt64
    /// Drop a last batch smaller than `batchSize` (transformers' dataloader_drop_last).
    public var dropLast: Bool
    public var padId: Int32
    /// task_type dpo: a row is a preference pair (samples 2i, 2i+1) and a batch of P pairs is
    /// 2P sequences, the P chosen then the P rejected (TRL's order).
    public var preference = false

    public init(batchSize: Int, maxSeqLength: Int, packing: Bool = false, groupByLength: Bool = false, shuffle: Bool = true,
                seed: UInt64 = 42, dropLast: Bool = false, padId: Int32 = 151643) {
        self.batchSize = batchSize
        self.packing = packing
        self.maxSeqLength = maxSeqLength
        self.groupByLength = groupByLength
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.padId = padId
    }

    /// per_device_train_batch_size, max_seq_length, packing, group_by_length, shuffle and
    /// data_seed (else seed) of a training config.
    public init(config: TrainingConfig, padId: Int32) {
        self.init(batchSize: config.perDeviceTrainBatchSize, maxSeqLength: config.maxSeqLength, packing: config.packing,
                  groupByLength: config.groupByLength, shuffle: config.shuffle,
                  seed: UInt64(truncatingIfNeeded: config.dataSeed ?? config.seed), padId: padId)
        preference = config.taskType == "dpo"
    }
}

/// Micro-batches of a tokenised dataset, epoch by epoch. The order of epoch e depends only on
/// (seed, e): a resumed run sees the same batches as one that never stopped.
///
///     let loader = try DataLoader(dataset: data, options: BatchingOptions(config: cfg, padId: pad))
///     for epoch in 0..<epochs { for k in 0..<loader.batchesPerEpoch { let mb = loader.batch(k, epoch: epoch) … } }
public final class DataLoader: @unchecked Sendable {
    public let dataset: TokenizedDataset
    public let options: BatchingOptions
    /// Rows: the samples each holds (one sample each without packing). Packing is done once,
    /// in a seeded order, so every epoch has the same number of batches.
    public let rows: [[Int]]
    private let rowLengths: [Int]

    public init(dataset: TokenizedDataset, options: BatchingOptions) throws {
        guard options.batchSize >= 1 else {
            throw TrainingError.badOption(name: "per_device_train_batch_size", message: "must be at least 1, got \(options.batchSize)")
        }
        guard options.maxSeqLength >= 2 else {
            throw TrainingError.badOption(name: "max_seq_length", message: "must be at least 2, got \(options.maxSeqLength)")
        }
        self.dataset = dataset
        self.options = options
        var rows: [[Int]] = []
        if options.preference {
            guard !options.packing else { throw DatasetError.badOption(name: "packing", message: "cannot be used with task_type dpo") }
            rows = (0..<dataset.count / 2).map { [2 * $0, 2 * $0 + 1] }
        } else if options.packing {
            var order = Array(0..<dataset.count)
            if options.shuffle { var g = SeededGenerator(seed: options.seed, stream: 0x7061636B); g.shuffle(&order) }
            var current: [Int] = [], used = 0
            for i in order {
                let n = min(dataset.length(i), options.maxSeqLength)
                if used + n > options.maxSeqLength && !current.isEmpty {
                    rows.append(current)
                    current = []
                    used = 0
                }
                current.append(i)
                used += n
            }
            if !current.isEmpty { rows.append(current) }
        } else {
            rows = (0..<dataset.count).map { [$0] }
        }
        self.rows = rows
        rowLengths = options.preference
            ? rows.map { r in r.map { min(dataset.length($0), options.maxSeqLength) }.max() ?? 0 }
            : rows.map { r in r.reduce(0) { $0 + min(dataset.length($1), options.maxSeqLength) } }
    }

    /// Micro-batches in one epoch.
    public var batchesPerEpoch: Int {
        options.dropLast ? rows.count / options.batchSize : (rows.count + options.batchSize - 1) / options.batchSize
    }

    /// The rows of each batch of epoch `epoch`, in order.
    public func plan(epoch: Int) -> [[Int]] {
        var order = Array(0..<rows.count)
        let b = options.batchSize
        if options.shuffle {
            var g = SeededGenerator(seed: options.seed, stream: UInt64(epoch))
            g.shuffle(&order)
        }
        if options.groupByLength {
            let mega = b * 50
            var grouped: [Int] = []
            var start = 0
            while start < order.count {
                let part = order[start..<min(start + mega, order.count)].sorted {
                    rowLengths[$0] != rowLengths[$1] ? rowLengths[$0] > rowLengths[$1] : $0 < $1
                }
                grouped += part
                start += mega
            }
            order = grouped
        }
        var batches: [[Int]] = stride(from: 0, to: order.count, by: b).map { Array(order[$0..<min($0 + b, order.count)]) }
        if options.dropLast, let last = batches.last, last.count < b { batches.removeLast() }
        if options.groupByLength, batches.count > 1 {
            // The longest batch first, as transformers does: an out-of-memory shows at step 1.
            let longest = batches.indices.max { batches[$0].map { rowLengths[$0] }.max()! < batches[$1].map { rowLengths[$0] }.max()! }!
            batches.swapAt(0, longest)
        }
        return batches
    }

    /// All micro-batches of an epoch.
    public func batches(epoch: Int) -> [MicroBatch] { plan(epoch: epoch).map(makeBatch) }

    /// Micro-batch k of epoch e (plan once with `plan(epoch:)` when iterating).
    public func batch(_ k: Int, epoch: Int) -> MicroBatch { makeBatch(plan(epoch: epoch)[k]) }

    /// Pads the rows to the longest among them (dynamic padding) and fills the arrays.
    public func makeBatch(_ rowIndices: [Int]) -> MicroBatch {
        if options.preference { return makePreferenceBatch(rowIndices.map { rows[$0] }) }
        let B = rowIndices.count
        let T = max(1, rowIndices.map { rowLengths[$0] }.max() ?? 1)
        var ids = [Int32](repeating: options.padId, count: B * T)
        var labels = [Int32](repeating: -100, count: B * T)
        var positions = [Int32](repeating: 0, count: B * T)
        var segments = [Int32](repeating: 0, count: B * T)
        var tokens = 0, targets = 0
        for (b, r) in rowIndices.enumerated() {
            var t = 0
            for (s, i) in rows[r].enumerated() {
                let n = min(dataset.length(i), options.maxSeqLength)
                let src = dataset.starts[i]
                for j in 0..<n {
                    ids[b * T + t + j] = dataset.ids[src + j]
                    labels[b * T + t + j] = (j == 0 && rows[r].count > 1) ? -100 : dataset.labels[src + j]
                    positions[b * T + t + j] = Int32(j)
                    segments[b * T + t + j] = Int32(s + 1)
                }
                t += n
            }
            tokens += t
            for j in 1..<max(1, t) where labels[b * T + j] != -100 { targets += 1 }
        }
        return MicroBatch(batchSize: B, sequenceLength: T, inputIds: ids, labels: labels, positionIds: positions,
                          segmentIds: segments, sampleIndices: rowIndices.map { rows[$0] }, tokenCount: tokens,
                          targetCount: targets, isPacked: options.packing)
    }
}

/// xoshiro256** seeded by SplitMix64 from (seed, stream): the same numbers on every platform
/// (Swift's own shuffle and SystemRandomNumberGenerator are not reproducible).
public struct SeededGenerator: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64, stream: UInt64 = 0) {
        var x = seed ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ 0x6A09_E667_F3BC_C908
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    /// An integer in 0..<n without modulo bias (Lemire's method).
    public mutating func below(_ n: Int) -> Int {
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Fisher–Yates with `below`, so the order is fixed for a seed on every platform.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, below(i + 1))
        }
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
