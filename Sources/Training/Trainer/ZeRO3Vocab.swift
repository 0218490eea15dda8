import Foundation
import QwenCore
import Qwen2
import Distributed

// ZeRO-3's embedding and lm_head: (V,C) matrices far larger than a layer (545 MB in f32 for
// Qwen2's 151,936 × 896, 43 % of a 12-layer 0.5B model), split over the ranks like every other
// tensor but never gathered whole (the pass side is SplitVocabulary.swift):
//
// - The lookup gathers only the rows its tokens use: the ranks all-gather their token ids, each
//   takes the same sorted set U of distinct ids, and one all-gather brings U's rows (every rank
//   sending the part of them it holds) into a (|U|,C) table that the tokens index by position.
// - The head runs over vocab chunks of at most one layer's elements (and at most
//   stage3_prefetch_bucket_size): a chunk is gathered into one reused buffer when the logits need
//   it and again for d hidden (forward in ascending, backward in descending order, so the chunk
//   at each turn is not gathered twice).
// - Full fine-tuning: the gradient of each head chunk is reduce-scattered into the rank's slice
//   sum as soon as its product is done, from a chunk-sized buffer; the lookup's gradient likewise
//   from a (|U|,C) one. The (V,C) gradient never exists, nor does the flat buffer's range for it.
//
// A row's bytes may cross a slice boundary: whatever the split, the bytes of sorted rows that
// rank r holds follow those of rank r−1 in the packed buffer, so one all-gather (or
// reduce-scatter) with per-rank counts moves them.

/// A (rows, cols) matrix whose bytes the ranks hold in contiguous, ascending pieces.
struct RowPartition {
    let rows: Int
    let cols: Int
    let dtype: DType
    /// Byte range of the matrix each rank holds (possibly empty).
    let pieces: [Range<Int>]
    /// This rank's piece.
    let own: UnsafeRawPointer
    /// Full fine-tuning: the flat index of the matrix's first element in the trainable buffers.
    let flatOffset: Int?

    var rowBytes: Int { cols * dtype.elementSize }

    /// A tensor of the flat f32 buffers, split by the ranks' equal slices of `slice` elements.
    init(entry e: ParameterEntry, rows: Int, cols: Int, params: UnsafeMutablePointer<Float>, slice: Int, ranks: Int, rank: Int) {
        self.rows = rows
        self.cols = cols
        dtype = .f32
        flatOffset = e.offset
        pieces = (0..<ranks).map { r in
            let lo = min(e.count, max(0, r * slice - e.offset)), hi = min(e.count, max(0, (r + 1) * slice - e.offset))
            return lo * 4 ..< max(lo, hi) * 4
        }
        own = UnsafeRawPointer(params + e.offset) + pieces[rank].lowerBound
    }

    /// A matrix in its stored dtype split by ShardedBaseWeights (frozen: no flat offset).
    init(rows: Int, cols: Int, dtype: DType, pieces: [Range<Int>], own: UnsafeRawPointer) {
        self.rows = rows
        self.cols = cols
        self.dtype = dtype
        self.pieces = pieces
        self.own = own
        flatOffset = nil
    }

    /// For `rows` (ascending) packed one after another: the bytes each rank holds, and `mine`
    /// called with (packed byte offset, matrix byte range) for each part this rank holds.
    func split(_ rows: ArraySlice<Int>, rank: Int, mine: (Int, Range<Int>) -> Void) -> [Int] {
        let n = pieces.count, rb = rowBytes
        var counts = [Int](repeating: 0, count: n)
        var r = 0
        for (k, u) in rows.enumerated() {
            let lo = u * rb, hi = lo + rb
            while r < n - 1, pieces[r].upperBound <= lo { r += 1 }
            var q = r
            while q < n, pieces[q].lowerBound < hi {
                let a = max(lo, pieces[q].lowerBound), b = min(hi, pieces[q].upperBound)
                if a < b {
                    counts[q] += b - a
                    if q == rank { mine(k * rb + a - lo, a ..< b) }
                }
                q += 1
            }
        }
        return counts
    }
}

extension ZeROEngine {
    /// Each rank's `local`, on every rank (one all-reduce).
    func allValues(_ local: Int) throws -> [Int] {
        var v = [Double](repeating: 0, count: comm.size)
        v[comm.rank] = Double(local)
        return try sum(v).map { Int($0) }
    }

    /// Rows per collective: its byte counts are Int32.
    private func rowsPerCall(_ rowBytes: Int) -> Int { max(1, (1 << 30) / max(1, rowBytes)) }

    /// dst (rows.count, cols) = the rows of m in `rows` (ascending, distinct), from their owners.
    func gatherRows(_ m: RowPartition, _ rows: [Int], into dst: UnsafeMutableRawPointer) throws {
        let rb = m.rowBytes, mine = m.pieces[comm.rank], n = comm.size
        largestGatherBytes = max(largestGatherBytes, rows.count * rb)
        var k0 = 0
        try timed {
            while k0 < rows.count {
                let k1 = min(rows.count, k0 + rowsPerCall(rb))
                let base = dst + k0 * rb
                let counts = m.split(rows[k0..<k1], rank: comm.rank) { at, src in
                    (base + at).copyMemory(from: m.own + (src.lowerBound - mine.lowerBound), byteCount: src.count)
                }
                if n > 1 { try comm.allGather(base, byteCounts: counts) }
                bytesCommunicated += (k1 - k0) * rb * (n - 1) / n
                k0 = k1
            }
        }
    }

    /// Full fine-tuning: `grads` (rows.count, cols) holds this rank's gradient of m's `rows`
    /// (ascending, distinct); each rank adds the sum over ranks of the part it holds into its
    /// slice sum. `grads` is overwritten.
    func reduceRows(_ m: RowPartition, _ rows: [Int], _ grads: UnsafeMutablePointer<Float>) throws {
        guard let flat = m.flatOffset, let sum = shardSum?.pointer else { return }
        let C = m.cols, lo = optimizerRange.lowerBound
        var k0 = 0
        try timed {
            while k0 < rows.count {
                let k1 = min(rows.count, k0 + rowsPerCall(m.rowBytes))
                let base = grads + k0 * C
                var own: [Range<Int>] = []  // flat element ranges, in packed order
                let counts = m.split(rows[k0..<k1], rank: comm.rank) { _, src in own.append(flat + src.lowerBound / 4 ..< flat + src.upperBound / 4) }
                try comm.reduceScatterSum(UnsafePointer(base), base, counts: counts.map { $0 / 4 })
                var s = 0  // this rank's sums, at the start of the buffer, in packed order
                for r in own {
                    let dst = sum + (r.lowerBound - lo)
                    for i in 0..<r.count { dst[i] += base[s + i] }
                    s += r.count
                }
                bytesCommunicated += ((k1 - k0) * C - s) * MemoryLayout<Float>.size
                k0 = k1
            }
        }
    }
}

/// ZeRO-3's split embedding and lm_head (the same matrix when tied), read by the pass through
/// `SplitVocabulary`. Buffers are reused and their pages handed back at `release()`.
final class ZeRO3Vocabulary: SplitVocabulary {
    let zero: ZeROEngine
    let embedding: RowPartition
    let head: RowPartition
    let headChunks: [Range<Int>]
    /// Where the gradient, scratch and token-row buffers live: the trainer's backend. MPI reduces
    /// the gradients in place, so ZeRO-3 needs backend memory the host can address.
    let memory: any Backend
    /// The gathered rows, as frozen weights are (`WeightMatrix`: host memory).
    private let chunkBuffer: AlignedBuffer<UInt8>
    private var held: Int?
    private var gradBuffer: DeviceBuffer<Float>?
    private var scratchBuffer: DeviceBuffer<Float>?
    /// The last lookup: its distinct ids, the table of their rows, each token's row in it.
    private var distinct: [Int] = []
    private var table = AlignedBuffer<UInt8>(uninitializedCount: 0)
    private var tableGrad: DeviceBuffer<Float>?
    private var tokenRows: DeviceBuffer<Int32>?

    /// `chunkElements`: the most elements of one head chunk (at least one row).
    init(zero: ZeROEngine, embedding: RowPartition, head: RowPartition, chunkElements: Int, memory: any Backend) {
        self.zero = zero
        self.memory = memory
        self.embedding = embedding
        self.head = head
        let per = max(1, min(head.rows, chunkElements / max(1, head.cols)))
        let count = (head.rows + per - 1) / per
        let even = (head.rows + count - 1) / count  // equal chunks, not per + a short last one
        headChunks = stride(from: 0, to: head.rows, by: even).map { $0 ..< min(head.rows, $0 + even) }
        chunkBuffer = AlignedBuffer(uninitializedCount: even * head.rowBytes)
    }

    private static func grow<T>(_ b: inout AlignedBuffer<T>, _ count: Int) {
        if b.count < count { b = AlignedBuffer(uninitializedCount: count) }
    }

    private func grow<T>(_ b: inout DeviceBuffer<T>?, _ count: Int) -> DeviceBuffer<T> {
        if let b, b.count >= count { return b }
        let new = memory.allocate(T.self, count: max(1, count), zeroed: false)
        b = new
        return new
    }

    /// The host address MPI reduces in place.
    private func host(_ b: DeviceBuffer<Float>) throws -> UnsafeMutablePointer<Float> {
        guard let p = memory.hostAddress(b.pointer) else {
            throw TrainingError.unsupported(key: "zero_optimization.stage",
                                            message: "ZeRO-3 needs the \(memory.name) backend's memory to be addressable by the host")
        }
        return p
    }

    func embed(out: DeviceMutablePointer<Float>, ids: DevicePointer<Int32>, N: Int, backend: any TrainingBackend) throws {
        held = nil
        let mine = backend.download(ids, count: N)
        let counts = try zero.allValues(N)
        var all = [Int32](repeating: 0, count: counts.reduce(0, +))
        let at = counts[..<zero.comm.rank].reduce(0, +)
        for i in 0..<N { all[at + i] = mine[i] }
        try zero.timed {
            try all.withUnsafeMutableBytes { p in
                if let b = p.baseAddress { try zero.comm.allGather(b, byteCounts: counts.map { $0 * 4 }) }
            }
        }
        distinct = Array(Set(all.map { Int($0) })).sorted()
        var rowOf: [Int: Int32] = [:]
        for (k, u) in distinct.enumerated() { rowOf[u] = Int32(k) }
        let rowIndex = mine.map { rowOf[Int($0)] ?? 0 }
        let tokens = grow(&tokenRows, N)
        backend.copyToDevice(tokens.pointer, from: rowIndex, count: N)
        Self.grow(&table, distinct.count * embedding.rowBytes)
        try zero.gatherRows(embedding, distinct, into: UnsafeMutableRawPointer(table.pointer))
        let m = WeightMatrix(rows: distinct.count, cols: embedding.cols, dtype: embedding.dtype, base: UnsafeRawPointer(table.pointer))
        backend.embeddingForward(out: out, ids: tokens.readOnly, table: m, N: N)
    }

    func embeddingBackward(dout: DevicePointer<Float>, N: Int, backend: any TrainingBackend) throws {
        let C = embedding.cols, count = distinct.count * C
        let g = grow(&tableGrad, count), tokens = grow(&tokenRows, N)
        backend.fill(g.pointer, count: count, value: 0)
        backend.embeddingBackward(dtable: g.pointer, dout: dout, ids: tokens.readOnly, N: N, C: C)
        try zero.reduceRows(embedding, distinct, try host(g))
        try drop(g)
    }

    func agreedChunkCount(local: Int) throws -> Int { try zero.allValues(local).max() ?? local }

    func headChunk(_ j: Int) throws -> WeightMatrix {
        let rows = headChunks[j]
        if held != j {
            held = nil
            try zero.gatherRows(head, Array(rows), into: UnsafeMutableRawPointer(chunkBuffer.pointer))
            held = j
        }
        return WeightMatrix(rows: rows.count, cols: head.cols, dtype: head.dtype, base: UnsafeRawPointer(chunkBuffer.pointer))
    }

    func headGradient(_ j: Int) throws -> DeviceMutablePointer<Float> {
        let count = headChunks[j].count * head.cols
        let g = grow(&gradBuffer, headChunks[0].count * head.cols)
        memory.fill(g.pointer, count: count, value: 0)
        return g.pointer
    }

    func headGradientDone(_ j: Int) throws {
        guard let g = gradBuffer else { return }
        try zero.reduceRows(head, Array(headChunks[j]), try host(g))
    }

    func scratch(_ count: Int) -> DeviceMutablePointer<Float> {
        grow(&scratchBuffer, count).pointer
    }

    /// After the lookup or the head: the gathered rows go stale (the optimizer moves them), so
    /// the buffers' pages go back.
    func release() {
        held = nil
        Self.drop(chunkBuffer)
        Self.drop(table)
        if let g = gradBuffer { try? drop(g) }
        if let s = scratchBuffer { try? drop(s) }
    }

    private func drop(_ b: DeviceBuffer<Float>) throws {
        let lo = UnsafeMutableRawPointer(try host(b))
        TrainableState.dropPages(lo, lo + b.count * MemoryLayout<Float>.stride)
    }

    private static func drop<T>(_ b: AlignedBuffer<T>) {
        let lo = UnsafeMutableRawPointer(b.pointer)
        TrainableState.dropPages(lo, lo + b.count * MemoryLayout<T>.stride)
    }
}
