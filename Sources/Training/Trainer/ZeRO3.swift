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
// hands the range's pages back (madvise) when it releases it; the embedding, final norm and
// lm_head (the ranges outside the layers) likewise around the embedding lookup and the head.
// The optimizer updates the slice; nothing is gathered after the step. Tensors with fewer
// elements than stage3_param_persistence_threshold keep their pages (they are still refreshed
// by each gather). A LoRA run's frozen base is partitioned in its stored dtype by
// `ShardedBaseWeights`. The pass calls acquire/release in the same order on every rank (forward,
// the checkpointing recomputation and backward acquire each layer once per direction); a rank
// with no rows in a micro-batch runs an unlabelled one-token batch, which adds nothing to any
// gradient, so that it joins the same gathers. Gathers are blocking (no prefetch).

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

    /// Stage 3: hands back the pages of params[range] outside this rank's slice and outside the
    /// persistent tensors.
    func releaseParameters(_ range: Range<Int>, _ state: TrainableState) {
        guard comm.size > 1 else { return }
        var pieces = [range]
        for keep in [optimizerRange] + persistentRanges where keep.overlaps(range) {
            pieces = pieces.flatMap { p -> [Range<Int>] in
                guard p.overlaps(keep) else { return [p] }
                return [p.lowerBound ..< max(p.lowerBound, keep.lowerBound), min(p.upperBound, keep.upperBound) ..< p.upperBound].filter { !$0.isEmpty }
            }
        }
        for p in pieces { state.releaseParameters(p) }
    }

    /// Stage 3: every parameter on every rank (before evaluation), or on rank 0 alone
    /// (`mainOnly`: before rank 0 saves), then back to slices.
    func withWholeParameters<R>(_ state: TrainableState, mainOnly: Bool = false, _ body: () throws -> R) throws -> R {
        guard stage == 3, comm.size > 1 else { return try body() }
        try gatherParameters(0 ..< storageCount, state, mainOnly: mainOnly)
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
final class ZeRO3Weights: WeightProvider {
    let inner: WeightProvider
    let zero: ZeROEngine
    let state: TrainableState

    init(inner: WeightProvider, zero: ZeROEngine, state: TrainableState) {
        self.inner = inner
        self.zero = zero
        self.state = state
    }

    var config: Qwen2Config { inner.config }
    var embedding: WeightMatrix { inner.embedding }
    var lmHead: WeightMatrix { inner.lmHead }
    var finalNorm: UnsafePointer<Float> { inner.finalNorm }
    var residentBytes: Int { inner.residentBytes }

    /// Layer ranges exist for the layouts qwenft builds; without them everything is gathered
    /// with the shared tensors and kept.
    private var perLayer: Bool { !zero.layerRanges.isEmpty }

    func acquireLayer(_ index: Int) throws -> LayerWeights {
        if perLayer { try zero.gatherParameters(zero.layerRanges[index], state) }
        return try inner.acquireLayer(index)
    }

    func releaseLayer(_ index: Int) {
        inner.releaseLayer(index)
        if perLayer { zero.releaseParameters(zero.layerRanges[index], state) }
    }

    func acquireShared() throws {
        for r in perLayer ? zero.restRanges : [0 ..< zero.storageCount] { try zero.gatherParameters(r, state) }
        try inner.acquireShared()
    }

    func releaseShared() {
        inner.releaseShared()
        if perLayer { for r in zero.restRanges { zero.releaseParameters(r, state) } }
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
/// all-gathers the blob into one reused layer buffer. The embedding (and an untied lm_head) is
/// split the same way and gathered whole between `acquireShared` and `releaseShared`, its pages
/// handed back after. Norms, biases and matrices under the persistence threshold stay whole.
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
    /// Byte offset in the layer blob of each partitioned projection.
    private var offsets: [[Projection: Int]] = []
    private var layerPieces: [AlignedBuffer<UInt8>] = []
    private let layerBuffer: AlignedBuffer<UInt8>
    /// Partitioned whole-model matrices: embedding, then an untied lm_head.
    private var sharedSplits: [Split] = []
    private var sharedPieces: [AlignedBuffer<UInt8>] = []
    private var sharedBuffers: [AlignedBuffer<UInt8>] = []
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
            var at = 0, offs: [Projection: Int] = [:]
            for p in Projection.allCases where lw.matrix(p).count >= threshold && lw.matrix(p).nf4 == nil {
                offs[p] = at
                at += (bytes(lw.matrix(p)) + 63) / 64 * 64
            }
            let split = Split(bytes: at, ranks: n)
            let mine = split.piece(rank)
            let piece = AlignedBuffer<UInt8>(uninitializedCount: max(1, mine.count))
            for (p, o) in offs {
                let m = lw.matrix(p)
                let r = (o ..< o + bytes(m)).clamped(to: mine)
                if !r.isEmpty {
                    UnsafeMutableRawPointer(piece.pointer + (r.lowerBound - mine.lowerBound))
                        .copyMemory(from: m.base + (r.lowerBound - o), byteCount: r.count)
                }
                let lo = UnsafeMutableRawPointer(mutating: m.base)
                TrainableState.dropPages(lo, lo + bytes(m))
            }
            inner.releaseLayer(l)
            layerSplits.append(split)
            offsets.append(offs)
            layerPieces.append(piece)
            residentBytes += mine.count
            maxBlob = max(maxBlob, split.chunk * n)
        }
        layerBuffer = AlignedBuffer<UInt8>(uninitializedCount: maxBlob)
        residentBytes += maxBlob
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
            sharedSplits.append(split)
            sharedPieces.append(piece)
            sharedBuffers.append(whole)
            residentBytes += mine.count
            shared.append(WeightMatrix(rows: m.rows, cols: m.cols, dtype: m.dtype, base: UnsafeRawPointer(whole.pointer)))
        }
        embedding = shared[0]
        lmHead = config.tieWordEmbeddings ? shared[0] : shared[1]
    }

    /// Fills `buffer` (split.chunk × N bytes) with the whole blob, this rank's piece from `piece`.
    private func gather(_ split: Split, piece: AlignedBuffer<UInt8>, into buffer: UnsafeMutablePointer<UInt8>) throws {
        let n = zero.comm.size, rank = zero.comm.rank
        let mine = split.piece(rank)
        if !mine.isEmpty { (buffer + mine.lowerBound).update(from: piece.pointer, count: mine.count) }
        let window = ZeROEngine.gatherPiece * 4
        var lo = 0
        try zero.timed {
            while lo < split.bytes {
                let hi = min(split.bytes, lo + window)
                let counts = (0..<n).map { r in max(0, min(hi, split.piece(r).upperBound) - max(lo, split.piece(r).lowerBound)) }
                try zero.comm.allGather(UnsafeMutableRawPointer(buffer + lo), byteCounts: counts)
                zero.bytesCommunicated += (hi - lo) * (n - 1) / n
                lo = hi
            }
        }
    }

    func acquireLayer(_ index: Int) throws -> LayerWeights {
        var lw = try inner.acquireLayer(index)
        let offs = offsets[index]
        guard !offs.isEmpty else { return lw }
        try gather(layerSplits[index], piece: layerPieces[index], into: layerBuffer.pointer)
        func view(_ p: Projection) -> WeightMatrix {
            let m = lw.matrix(p)
            guard let o = offs[p] else { return m }
            return WeightMatrix(rows: m.rows, cols: m.cols, dtype: m.dtype, base: UnsafeRawPointer(layerBuffer.pointer + o))
        }
        lw.q = view(.q); lw.k = view(.k); lw.v = view(.v); lw.o = view(.o)
        lw.gate = view(.gate); lw.up = view(.up); lw.down = view(.down)
        return lw
    }

    func releaseLayer(_ index: Int) { inner.releaseLayer(index) }

    func acquireShared() throws {
        for i in sharedSplits.indices { try gather(sharedSplits[i], piece: sharedPieces[i], into: sharedBuffers[i].pointer) }
    }

    func releaseShared() {
        for b in sharedBuffers { TrainableState.dropPages(UnsafeMutableRawPointer(b.pointer), UnsafeMutableRawPointer(b.pointer + b.count)) }
    }
}
