import Foundation
import QwenCore
import Qwen2
import Distributed

// ZeRO stage 3: the parameters are partitioned as well as the gradients and optimizer state.
//
// Trainable parameters (full fine-tuning's f32 weights, or a LoRA adapter) stay in the flat
// buffer of the other stages, but a rank keeps only its slice (`ParameterLayout.shardRange`)
// resident: the buffer is reserved, the rank fills its slice, and the model reads the weights
// through `ZeRO3Weights`, which all-gathers a layer's range when the pass acquires the layer and
// hands the range's pages back (madvise) when it releases it; the final norm (the ranges outside
// the layers) likewise around the embedding lookup and the head, while the embedding and lm_head
// are read in pieces, never whole (ZeRO3Vocab.swift).
// The optimizer updates the slice; nothing is gathered after the step. Tensors with fewer
// elements than stage3_param_persistence_threshold keep their pages (they are still refreshed
// by each gather). A LoRA run's frozen base is partitioned in its stored dtype by
// `ShardedBaseWeights`. The pass calls acquire/release in the same order on every rank (forward,
// the checkpointing recomputation and backward acquire each layer once per direction); a rank
// with no rows in a micro-batch runs an unlabelled one-token batch, which adds nothing to any
// gradient, so that it joins the same gathers. When a layer is acquired, the first
// stage3_prefetch_bucket_size elements of the layer the pass will acquire next (judged from the
// direction it moves in) start gathering (MPI_Iallgatherv); the acquire of that layer waits for
// them and gathers the rest.

extension ZeROEngine {
    /// Largest piece of one gather in floats (its byte counts are Int32).
    static let gatherPiece = 1 << 28

    /// A micro-batch that scores nothing: what a rank with no rows runs at stage 3.
    static let idleBatch = TrainingBatch(ids: [0], labels: [Int32(ignoreIndex)], B: 1, T: 1)

    /// Stage 3: params[range] on every rank (`mainOnly`: on rank 0), each slice's part from its owner.
    func gatherParameters(_ range: Range<Int>, _ state: TrainableState, mainOnly: Bool = false) throws {
        let n = comm.size, slice = storageCount / n
        guard n > 1, !range.isEmpty else { return }
        var lo = range.lowerBound
        largestGatherBytes = max(largestGatherBytes, range.count * MemoryLayout<Float>.size)
        try timed {
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + Self.gatherPiece)
                let counts = (0..<n).map { r in max(0, min(hi, (r + 1) * slice) - max(lo, r * slice)) * MemoryLayout<Float>.size }
                let at = UnsafeMutableRawPointer(state.hostParams + lo)
                if mainOnly { try comm.gather(at, byteCounts: counts, root: 0) } else { try comm.allGather(at, byteCounts: counts) }
                bytesCommunicated += (hi - lo) * (n - 1) / n * MemoryLayout<Float>.size
                lo = hi
            }
        }
    }

    /// Stage 3: starts gathering params[range] (at most gatherPiece elements) without waiting.
    func startGatherParameters(_ range: Range<Int>, _ state: TrainableState) throws -> PendingCollective {
        let n = comm.size, slice = storageCount / n
        precondition(range.count <= Self.gatherPiece, "a prefetch is one collective")
        let counts = (0..<n).map { r in max(0, min(range.upperBound, (r + 1) * slice) - max(range.lowerBound, r * slice)) * MemoryLayout<Float>.size }
        bytesCommunicated += range.count * (n - 1) / n * MemoryLayout<Float>.size
        largestGatherBytes = max(largestGatherBytes, range.count * MemoryLayout<Float>.size)
        return try timed { try comm.startAllGather(UnsafeMutableRawPointer(state.hostParams + range.lowerBound), byteCounts: counts) }
    }

    /// The layer the pass acquires after `l`, judged from the direction it moves in (up after
    /// a lower layer or at the start, down otherwise); nil past either end. Every rank judges
    /// alike, so every rank starts the same prefetches.
    func layerAfter(_ l: Int, previous: Int?, count: Int) -> Int? {
        guard prefetchBucket > 0 else { return nil }
        let next = (previous ?? -1) < l ? l + 1 : l - 1
        return (0..<count).contains(next) ? next : nil
    }

    /// Stage 3: hands back the pages of params[range] outside this rank's slice and outside the
    /// persistent tensors.
    func releaseParameters(_ range: Range<Int>, _ state: TrainableState) {
        guard comm.size > 1 else { return }
        for p in Self.subtracting([optimizerRange] + persistentRanges, from: range) { state.releaseParameters(p) }
    }

    /// Stage 3: every parameter on rank 0 alone, while rank 0 saves, then back to slices. No
    /// rank other than 0 ever holds them whole: evaluation gathers layer by layer, as training does.
    func withWholeParametersOnMain<R>(_ state: TrainableState, _ body: () throws -> R) throws -> R {
        guard stage == 3, comm.size > 1 else { return try body() }
        let largest = largestGatherBytes  // what training holds, not the save
        defer { largestGatherBytes = largest }
        try gatherParameters(0 ..< storageCount, state, mainOnly: true)
        defer { releaseParameters(0 ..< storageCount, state) }
        return try body()
    }

    /// Stage 3: the tensors under `threshold` elements keep their pages on every rank.
    func setPersistent(_ layout: ParameterLayout, threshold: Int) {
        persistentRanges = layout.entries.filter { $0.count < threshold }.map(\.range)
    }
}

/// Stage 3's view of the trainable parameters: `inner` (views into the flat buffer for full
/// fine-tuning, the frozen base for LoRA) with each layer's range of the flat buffer gathered
/// while the layer is acquired, and the ranges outside the layers while the shared tensors are.
/// The embedding and lm_head are read in pieces through `splitVocabulary` (ZeRO3Vocab.swift):
/// the flat buffer's (full fine-tuning) or ShardedBaseWeights' (LoRA) split of them.
final class ZeRO3Weights: SplitVocabularyWeights {
    let inner: WeightProvider
    let zero: ZeROEngine
    let state: TrainableState
    let vocabulary: ZeRO3Vocabulary?

    /// `chunkElements`: the most elements of one lm_head chunk.
    init(inner: WeightProvider, zero: ZeROEngine, state: TrainableState, chunkElements: Int) throws {
        self.inner = inner
        self.zero = zero
        self.state = state
        let c = inner.config, n = zero.comm.size, rank = zero.comm.rank
        var vocabulary: ZeRO3Vocabulary?
        if !zero.layerRanges.isEmpty, n > 1 {
            if let sharded = inner as? ShardedBaseWeights {
                if let e = sharded.embeddingPartition, let h = c.tieWordEmbeddings ? e : sharded.lmHeadPartition {
                    vocabulary = ZeRO3Vocabulary(zero: zero, embedding: e, head: h, chunkElements: chunkElements, memory: state.backend)
                }
            } else if inner is ParameterWeights {
                let slice = zero.storageCount / n
                func part(_ name: String) throws -> RowPartition {
                    RowPartition(entry: try state.layout.require(name), rows: c.vocabSize, cols: c.hiddenSize,
                                 params: state.hostParams, slice: slice, ranks: n, rank: rank)
                }
                let e = try part("model.embed_tokens.weight")
                let h = c.tieWordEmbeddings ? e : try part("lm_head.weight")
                vocabulary = ZeRO3Vocabulary(zero: zero, embedding: e, head: h, chunkElements: chunkElements, memory: state.backend)
                zero.vocabRanges = try (c.tieWordEmbeddings ? ["model.embed_tokens.weight"] : ["model.embed_tokens.weight", "lm_head.weight"])
                    .map { try state.layout.require($0).range }
            }
        }
        self.vocabulary = vocabulary
    }

    var splitVocabulary: SplitVocabulary? { vocabulary }

    var config: Qwen2Config { inner.config }
    var embedding: WeightMatrix { inner.embedding }
    var lmHead: WeightMatrix { inner.lmHead }
    var finalNorm: UnsafePointer<Float> { inner.finalNorm }
    var residentBytes: Int { inner.residentBytes }

    /// Layer ranges exist for the layouts qwenft builds; without them everything is gathered
    /// with the shared tensors and kept.
    private var perLayer: Bool { !zero.layerRanges.isEmpty }

    /// The layer whose first elements are being gathered ahead, and the last layer acquired.
    private var prefetched: (layer: Int, range: Range<Int>, pending: PendingCollective)?
    private var previous: Int?

    func acquireLayer(_ index: Int) throws -> LayerWeights {
        if perLayer {
            let range = zero.layerRanges[index]
            var rest = range
            if let p = try finishPrefetch(keeping: index) { rest = p.upperBound ..< range.upperBound }
            if !rest.isEmpty { try zero.gatherParameters(rest, state) }
            if let next = zero.layerAfter(index, previous: previous, count: zero.layerRanges.count) {
                let r = zero.layerRanges[next], n = min(r.count, zero.prefetchBucket, ZeROEngine.gatherPiece)
                if n > 0 {
                    let ahead = r.lowerBound ..< r.lowerBound + n
                    prefetched = (next, ahead, try zero.startGatherParameters(ahead, state))
                }
            }
            previous = index
        }
        return try inner.acquireLayer(index)
    }

    /// Waits for the prefetch in flight; returns its range when it was layer `keep`'s, else
    /// hands its pages back.
    private func finishPrefetch(keeping keep: Int?) throws -> Range<Int>? {
        guard let p = prefetched else { return nil }
        prefetched = nil
        try zero.timed { try p.pending.wait() }
        if p.layer == keep { return p.range }
        zero.releaseParameters(p.range, state)
        return nil
    }

    func releaseLayer(_ index: Int) {
        inner.releaseLayer(index)
        if perLayer { zero.releaseParameters(zero.layerRanges[index], state) }
    }

    /// The ranges outside the layers that acquireShared gathers: all of them, or (split
    /// vocabulary) those outside the embedding and lm_head.
    private var sharedRanges: [Range<Int>] {
        guard perLayer else { return [0 ..< zero.storageCount] }
        return zero.restRanges.flatMap { ZeROEngine.subtracting(zero.vocabRanges, from: $0) }
    }

    func acquireShared() throws {
        _ = try finishPrefetch(keeping: nil)  // none is in flight in the pass's order; never one across a step
        try (inner as? ShardedBaseWeights)?.finishPrefetch()
        for r in sharedRanges { try zero.gatherParameters(r, state) }
        // A split vocabulary is gathered in pieces by the pass; the inner provider's whole one never.
        if vocabulary == nil { try inner.acquireShared() }
    }

    func releaseShared() {
        if let v = vocabulary { v.release() } else { inner.releaseShared() }
        if perLayer { for r in sharedRanges { zero.releaseParameters(r, state) } }
    }
}

extension AdamW {
    /// Hands m and v's pages back (they read as zeros after): once training is over, before a
    /// ZeRO-3 rank 0 gathers the whole model to save it.
    func releaseMoments() {
        for b in [hostM, hostV] { TrainableState.dropPages(UnsafeMutableRawPointer(b), UnsafeMutableRawPointer(b + m.count)) }
    }
}

extension TrainableParameters {
    /// `copyWeights` for the elements of the flat buffer in `range` only (a ZeRO-3 rank's
    /// slice): the base's pages outside it are never read.
    static func copyWeights(from weights: WeightProvider, into state: TrainableState, range: Range<Int>) throws {
        let rowsPerTile = 256
        func put(_ name: String, _ m: WeightMatrix) throws {
            let e = try state.layout.require(name)
            let r = e.range.clamped(to: range)
            guard !r.isEmpty else { return }
            let a = r.lowerBound - e.offset, b = r.upperBound - e.offset, cols = m.cols
            let tile = AlignedBuffer<Float>(uninitializedCount: rowsPerTile * cols)
            var row = a / cols
            while row * cols < b {
                let rows = min(rowsPerTile, m.rows - row)
                m.widenRows(row ..< row + rows, into: tile.pointer)
                let lo = max(a, row * cols), hi = min(b, (row + rows) * cols)
                (state.hostParams + e.offset + lo).update(from: tile.pointer + (lo - row * cols), count: hi - lo)
                row += rows
            }
        }
        func put(_ name: String, _ v: UnsafePointer<Float>, _ n: Int) throws {
            let e = try state.layout.require(name)
            let r = e.range.clamped(to: range)
            guard !r.isEmpty else { return }
            (state.hostParams + r.lowerBound).update(from: v + (r.lowerBound - e.offset), count: r.count)
        }
        try forEachBaseTensor(of: weights, matrix: put, vector: put)
    }

    /// Hands back the pages of a mapped model's matrices that this process touched (the file
    /// stays; a later read pages them in again). Full fine-tuning at stage 3 reads the base once.
    static func releaseMappedMatrices(of weights: WeightProvider) {
        let c = weights.config
        var matrices = [weights.embedding]
        if !c.tieWordEmbeddings { matrices.append(weights.lmHead) }
        for l in 0..<c.numHiddenLayers {
            guard let lw = try? weights.acquireLayer(l) else { continue }
            matrices += Projection.allCases.map { lw.matrix($0) }
            weights.releaseLayer(l)
        }
        for m in matrices where m.nf4 == nil {
            let lo = UnsafeMutableRawPointer(mutating: m.base)
            TrainableState.dropPages(lo, lo + m.count * m.dtype.elementSize)
        }
    }
}

/// A LoRA run's frozen base at ZeRO stage 3: each layer's projections, in their stored dtype,
/// are packed into one byte blob of which every rank keeps an equal 1/N piece; `acquireLayer`
/// all-gathers the blob into one reused layer buffer. A QLoRA base's NF4 projections go into the
/// blob as their packed codes and their fp32 absmax (the double-quantised one as the kernels
/// read it), byte for byte, so the gathered layer dequantises to exactly the unpartitioned one.
/// The embedding (and an untied lm_head) is split the same way; ZeRO3Weights reads its rows in pieces (`embeddingPartition`), and only a
/// caller of `acquireShared` would gather it whole (its buffer is reserved, its pages untouched). Norms, biases and matrices under the persistence threshold stay whole.
/// The mapped file's pages of what is partitioned are handed back once the pieces are copied.
final class ShardedBaseWeights: WeightProvider {
    let config: Qwen2Config
    let inner: WeightProvider
    let zero: ZeROEngine

    /// A blob split over the ranks: `bytes` in all, `chunk` per rank (a multiple of 64).
    struct Split {
        let bytes: Int
        let chunk: Int
        init(bytes: Int, ranks: Int) {
            self.bytes = bytes
            chunk = ((bytes + ranks - 1) / ranks + 63) / 64 * 64
        }
        func piece(_ r: Int) -> Range<Int> { min(bytes, r * chunk) ..< min(bytes, (r + 1) * chunk) }
    }

    private var layerSplits: [Split] = []
    /// Byte offset in the layer blob of each partitioned projection (of an NF4 one's codes).
    private var offsets: [[Projection: Int]] = []
    /// Byte offset in the layer blob of an NF4 projection's fp32 absmax.
    private var absmaxOffsets: [[Projection: Int]] = []
    /// NF4 bytes (codes and absmax) of the partitioned projections: this rank's share, and all.
    private(set) var nf4Bytes: (resident: Int, total: Int) = (0, 0)
    private var layerPieces: [AlignedBuffer<UInt8>] = []
    /// Two layer buffers: layer l is gathered into buffers[l % 2], so the next layer (l ± 1)
    /// can be prefetched into the other while l computes.
    private let layerBuffers: [AlignedBuffer<UInt8>]
    private var prefetched: (layer: Int, bytes: Int, pending: PendingCollective)?
    private var previous: Int?
    /// Partitioned whole-model matrices: embedding, then an untied lm_head.
    private var sharedSplits: [Split] = []
    private var sharedPieces: [AlignedBuffer<UInt8>] = []
    private var sharedBuffers: [AlignedBuffer<UInt8>] = []
    /// The split of the embedding and of an untied lm_head (nil: whole on every rank), for
    /// ZeRO3Vocabulary, which gathers their rows in pieces.
    private(set) var embeddingPartition: RowPartition?
    private(set) var lmHeadPartition: RowPartition?
    let embedding: WeightMatrix
    let lmHead: WeightMatrix
    var finalNorm: UnsafePointer<Float> { inner.finalNorm }
    private(set) var residentBytes = 0

    init(_ inner: WeightProvider, zero: ZeROEngine, threshold: Int) throws {
        self.inner = inner
        self.zero = zero
        config = inner.config
        let n = zero.comm.size, rank = zero.comm.rank
        func bytes(_ m: WeightMatrix) -> Int { m.count * m.dtype.elementSize }
        var maxBlob = 64
        for l in 0..<config.numHiddenLayers {
            let lw = try inner.acquireLayer(l)
            // The blob's segments: (source, bytes, offset), each starting on 64 bytes.
            var at = 0, offs: [Projection: Int] = [:], absmaxOffs: [Projection: Int] = [:]
            var segments: [(from: UnsafeRawPointer, bytes: Int, at: Int, nf4: Bool)] = []
            func add(_ from: UnsafeRawPointer, _ count: Int, nf4: Bool) -> Int {
                segments.append((from, count, at, nf4))
                defer { at += (count + 63) / 64 * 64 }
                return at
            }
            for p in Projection.allCases where lw.matrix(p).count >= threshold {
                let m = lw.matrix(p)
                if let q = m.nf4 {
                    offs[p] = add(UnsafeRawPointer(q.packed), (m.count + 1) / 2, nf4: true)
                    absmaxOffs[p] = add(UnsafeRawPointer(q.absmax), NF4.blocks(m.count, blocksize: q.blocksize) * 4, nf4: true)
                } else {
                    offs[p] = add(m.base, bytes(m), nf4: false)
                }
            }
            let split = Split(bytes: at, ranks: n)
            let mine = split.piece(rank)
            let piece = AlignedBuffer<UInt8>(uninitializedCount: max(1, mine.count))
            for s in segments {
                let r = (s.at ..< s.at + s.bytes).clamped(to: mine)
                if !r.isEmpty {
                    UnsafeMutableRawPointer(piece.pointer + (r.lowerBound - mine.lowerBound))
                        .copyMemory(from: s.from + (r.lowerBound - s.at), byteCount: r.count)
                }
                if s.nf4 { nf4Bytes.resident += r.count; nf4Bytes.total += s.bytes }
                // The mapped file's pages, or the NF4 buffers quantised on load: nothing reads them again.
                let lo = UnsafeMutableRawPointer(mutating: s.from)
                TrainableState.dropPages(lo, lo + s.bytes)
            }
            inner.releaseLayer(l)
            layerSplits.append(split)
            offsets.append(offs)
            absmaxOffsets.append(absmaxOffs)
            layerPieces.append(piece)
            residentBytes += mine.count
            maxBlob = max(maxBlob, split.chunk * n)
        }
        layerBuffers = (0..<(zero.prefetchBucket > 0 ? 2 : 1)).map { _ in AlignedBuffer<UInt8>(uninitializedCount: maxBlob) }
        residentBytes += maxBlob * layerBuffers.count
        var shared: [WeightMatrix] = []
        for m in config.tieWordEmbeddings ? [inner.embedding] : [inner.embedding, inner.lmHead] {
            guard m.count >= threshold, m.nf4 == nil else { shared.append(m); continue }
            let split = Split(bytes: bytes(m), ranks: n)
            let mine = split.piece(rank)
            let piece = AlignedBuffer<UInt8>(uninitializedCount: max(1, mine.count))
            if !mine.isEmpty { UnsafeMutableRawPointer(piece.pointer).copyMemory(from: m.base + mine.lowerBound, byteCount: mine.count) }
            let lo = UnsafeMutableRawPointer(mutating: m.base)
            TrainableState.dropPages(lo, lo + bytes(m))
            let whole = AlignedBuffer<UInt8>(uninitializedCount: split.chunk * n)
            TrainableState.dropPages(UnsafeMutableRawPointer(whole.pointer), UnsafeMutableRawPointer(whole.pointer + split.chunk * n))
            let partition = RowPartition(rows: m.rows, cols: m.cols, dtype: m.dtype, pieces: (0..<n).map { split.piece($0) },
                                         own: UnsafeRawPointer(piece.pointer))
            if shared.isEmpty { embeddingPartition = partition } else { lmHeadPartition = partition }
            sharedSplits.append(split)
            sharedPieces.append(piece)
            sharedBuffers.append(whole)
            residentBytes += mine.count
            shared.append(WeightMatrix(rows: m.rows, cols: m.cols, dtype: m.dtype, base: UnsafeRawPointer(whole.pointer)))
        }
        embedding = shared[0]
        lmHead = config.tieWordEmbeddings ? shared[0] : shared[1]
    }

    /// Fills bytes `range` of `buffer` (split.chunk × N bytes: the blob), this rank's part from `piece`.
    private func gather(_ split: Split, piece: AlignedBuffer<UInt8>, into buffer: UnsafeMutablePointer<UInt8>, range: Range<Int>? = nil) throws {
        let n = zero.comm.size, rank = zero.comm.rank
        let range = range ?? 0 ..< split.bytes, mine = split.piece(rank), own = mine.clamped(to: range)
        if !own.isEmpty { (buffer + own.lowerBound).update(from: piece.pointer + (own.lowerBound - mine.lowerBound), count: own.count) }
        let window = ZeROEngine.gatherPiece * 4
        zero.largestGatherBytes = max(zero.largestGatherBytes, range.count)
        var lo = range.lowerBound
        try zero.timed {
            while lo < range.upperBound {
                let hi = min(range.upperBound, lo + window)
                try zero.comm.allGather(UnsafeMutableRawPointer(buffer + lo), byteCounts: counts(split, lo ..< hi))
                zero.bytesCommunicated += (hi - lo) * (n - 1) / n
                lo = hi
            }
        }
    }

    /// Each rank's bytes of `range` of a blob.
    private func counts(_ split: Split, _ range: Range<Int>) -> [Int] {
        (0..<zero.comm.size).map { r in split.piece(r).clamped(to: range).count }
    }

    func acquireLayer(_ index: Int) throws -> LayerWeights {
        var lw = try inner.acquireLayer(index)
        let offs = offsets[index]
        guard !offs.isEmpty else { return lw }
        let buffer = layerBuffers[index % layerBuffers.count].pointer, split = layerSplits[index]
        var done = 0
        if let p = prefetched {
            prefetched = nil
            try zero.timed { try p.pending.wait() }
            if p.layer == index { done = p.bytes }
        }
        if done < split.bytes { try gather(split, piece: layerPieces[index], into: buffer, range: done ..< split.bytes) }
        if let next = zero.layerAfter(index, previous: previous, count: layerSplits.count), !offsets[next].isEmpty {
            // The first stage3_prefetch_bucket_size elements of the next layer's blob, while this one computes
            // (NF4: half a byte an element).
            let s = layerSplits[next], bucket = lw.q.nf4 == nil ? zero.prefetchBucket * lw.q.dtype.elementSize : (zero.prefetchBucket + 1) / 2
            let bytes = min(s.bytes, bucket, ZeROEngine.gatherPiece * 4)
            let into = layerBuffers[next % layerBuffers.count].pointer, mine = s.piece(zero.comm.rank).clamped(to: 0 ..< bytes)
            if !mine.isEmpty {
                (into + mine.lowerBound).update(from: layerPieces[next].pointer + (mine.lowerBound - s.piece(zero.comm.rank).lowerBound), count: mine.count)
            }
            zero.bytesCommunicated += bytes * (zero.comm.size - 1) / zero.comm.size
            let pending = try zero.timed { try zero.comm.startAllGather(UnsafeMutableRawPointer(into), byteCounts: counts(s, 0 ..< bytes)) }
            prefetched = (next, bytes, pending)
        }
        previous = index
        let absmaxOffs = absmaxOffsets[index]
        func view(_ p: Projection) -> WeightMatrix {
            let m = lw.matrix(p)
            guard let o = offs[p] else { return m }
            if let q = m.nf4, let a = absmaxOffs[p] {
                let absmax = UnsafeRawPointer(buffer + a).assumingMemoryBound(to: Float.self)
                return WeightMatrix(rows: m.rows, cols: m.cols,
                                    nf4: NF4Layout(packed: UnsafePointer(buffer + o), absmax: absmax, blocksize: q.blocksize))
            }
            return WeightMatrix(rows: m.rows, cols: m.cols, dtype: m.dtype, base: UnsafeRawPointer(buffer + o))
        }
        lw.q = view(.q); lw.k = view(.k); lw.v = view(.v); lw.o = view(.o)
        lw.gate = view(.gate); lw.up = view(.up); lw.down = view(.down)
        return lw
    }

    func releaseLayer(_ index: Int) { inner.releaseLayer(index) }

    /// Waits for a prefetch in flight (none is in the pass's order; never one across a step).
    func finishPrefetch() throws {
        if let p = prefetched { prefetched = nil; try zero.timed { try p.pending.wait() } }
    }

    func acquireShared() throws {
        try finishPrefetch()
        for i in sharedSplits.indices { try gather(sharedSplits[i], piece: sharedPieces[i], into: sharedBuffers[i].pointer) }
    }

    func releaseShared() {
        for b in sharedBuffers { TrainableState.dropPages(UnsafeMutableRawPointer(b.pointer), UnsafeMutableRawPointer(b.pointer + b.count)) }
    }
}
