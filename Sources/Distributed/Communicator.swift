import QwenCore

/// Collective operations across the processes of one training run, over flat Float buffers
/// (gradients, parameters, optimizer state). Every rank calls the same operations in the same
/// order with the same counts, as with MPI. Results are deterministic for a given world size.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, 0..<size.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }

    /// buffer[i] = Σ over ranks of buffer[i], in place, on every rank.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws(DistributedError)

    /// buffer[i] = Σ over ranks of buffer[i] for Double buffers (loss sums, token counts).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws(DistributedError)

    /// input holds size × chunkCount values; output (chunkCount) = Σ over ranks of this rank's
    /// chunk input[rank·chunkCount ..< (rank+1)·chunkCount]. ZeRO's gradient step.
    func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          chunkCount: Int) throws(DistributedError)

    /// input holds Σ counts values, rank r's piece after those of ranks before it; output
    /// (counts[rank]) = Σ over ranks of this rank's piece. ZeRO-2's per-layer gradient step,
    /// where a layer's range crosses the rank slices unevenly. output == input: in place, the
    /// sums at the start of the buffer.
    func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          counts: [Int]) throws(DistributedError)

    /// output (size × chunkCount) = every rank's input (chunkCount) in rank order. ZeRO's
    /// parameter step.
    func allGather(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                   chunkCount: Int) throws(DistributedError)

    /// In place: `buffer` holds Σ byteCounts bytes, rank r's piece after those of the ranks
    /// before it; each rank supplies its own piece and receives every other one (ZeRO-3's
    /// parameter gather, where a layer crosses the rank slices unevenly; a count may be 0).
    func allGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError)

    /// `allGather(_:byteCounts:)` started and not waited for: the bytes arrive by the time the
    /// returned collective's `wait()` returns (ZeRO-3's prefetch of the next layer while this one
    /// computes). Until then the buffer must not be read or written, and every rank starts and
    /// waits for its collectives in the same order.
    func startAllGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError) -> PendingCollective

    /// The same layout as `allGather(_:byteCounts:)`, but only `root` receives the pieces (the
    /// other ranks' buffers are left as they are): a consolidated save on one rank.
    func gather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int], root: Int) throws(DistributedError)

    /// Copies `byteCount` bytes at `buffer` on rank `root` to every rank's `buffer`.
    func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws(DistributedError)

    /// Returns once every rank has called it.
    func barrier() throws(DistributedError)

    /// Where the run is ("step 12"), named when a collective waits too long.
    func setPhase(_ phase: String)

    /// A collective that waits longer than `seconds` ends every rank with a message naming it
    /// and the phase (transformers' `ddp_timeout`). Nothing to wait for with one process.
    func setCollectiveTimeout(seconds: Double)
}

extension Communicator {
    /// True on rank 0, the rank that logs and saves.
    public var isMain: Bool { rank == 0 }

    /// buffer[i] = mean over ranks of buffer[i], in place: the sum scaled by 1/size.
    public func allReduceAverage(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws(DistributedError) {
        try allReduceSum(buffer, count: count)
        divideBySize(buffer, count: count)
    }

    /// output (chunkCount) = mean over ranks of this rank's chunk of input (size × chunkCount).
    public func reduceScatterAverage(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                     chunkCount: Int) throws(DistributedError) {
        try reduceScatterSum(input, output, chunkCount: chunkCount)
        divideBySize(output, count: chunkCount)
    }

    /// values[0..<count] *= 1/size: a sum over ranks made a mean (nothing to do for one rank).
    func divideBySize(_ values: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        let scale = 1 / Float(size)
        parallelChunks(count, minChunk: 1 << 16) { r in
            for i in r { values[i] *= scale }
        }
    }

    /// ZeRO's two steps on a flat buffer of `layout.paddedCount` values: after it, every rank's
    /// `shard` (layout.shardCount) holds the mean over ranks of its slice of `gradients`.
    public func reduceScatterGradients(_ gradients: UnsafePointer<Float>, into shard: UnsafeMutablePointer<Float>,
                                       layout: ShardLayout) throws(DistributedError) {
        precondition(layout.size == size, "ShardLayout made for \(layout.size) ranks used with \(size)")
        try reduceScatterAverage(gradients, shard, chunkCount: layout.shardCount)
    }

    /// …and after the optimizer updated this rank's slice of `parameters` in place, every rank
    /// gets the whole updated buffer (layout.paddedCount values).
    public func allGatherParameters(_ parameters: UnsafeMutablePointer<Float>, layout: ShardLayout) throws(DistributedError) {
        precondition(layout.size == size, "ShardLayout made for \(layout.size) ranks used with \(size)")
        try allGather(UnsafePointer(parameters + rank * layout.shardCount), parameters, chunkCount: layout.shardCount)
    }

    /// The sum over ranks of one Double (a loss sum, a token count).
    public func allReduceSum(_ value: Double) throws(DistributedError) -> Double {
        var v = value
        try allReduceSum(&v, count: 1)
        return v
    }

    /// Array conveniences for small buffers.
    public func allReduceSum(_ values: inout [Float]) throws(DistributedError) {
        let n = values.count
        try values.withUnsafeMutableBufferPointer { (p: inout UnsafeMutableBufferPointer<Float>) throws(DistributedError) in
            if let base = p.baseAddress { try allReduceSum(base, count: n) }
        }
    }
}

/// A collective in flight (`Communicator.startAllGather`).
public protocol PendingCollective: AnyObject {
    /// Returns once the collective is complete on this rank; later calls return at once.
    func wait() throws(DistributedError)
}

/// A collective that was complete when it was started.
public final class FinishedCollective: PendingCollective {
    public init() {}
    public func wait() throws(DistributedError) {}
}

/// One process, no peers: every collective is the identity (or a copy).
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws(DistributedError) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws(DistributedError) {}

    public func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                 chunkCount: Int) throws(DistributedError) {
        if UnsafePointer(output) != input { output.update(from: input, count: chunkCount) }
    }

    public func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                 counts: [Int]) throws(DistributedError) {
        let n = counts.first ?? 0
        if UnsafePointer(output) != input, n > 0 { output.update(from: input, count: n) }
    }

    public func allGather(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          chunkCount: Int) throws(DistributedError) {
        if UnsafePointer(output) != input { output.update(from: input, count: chunkCount) }
    }

    public func allGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError) {}

    public func startAllGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError) -> PendingCollective {
        FinishedCollective()
    }

    public func gather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int], root: Int) throws(DistributedError) {
        guard root == 0 else { throw .badRoot(root: root, size: 1) }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws(DistributedError) {
        guard root == 0 else { throw .badRoot(root: root, size: 1) }
    }

    public func barrier() throws(DistributedError) {}
    public func setPhase(_ phase: String) {}
    public func setCollectiveTimeout(seconds: Double) {}
}

/// How a flat buffer of `count` values splits into `size` equal contiguous shards (ZeRO): the
/// buffer is padded to a multiple of `size`, and rank r owns [r·shardCount, (r+1)·shardCount).
public struct ShardLayout: Equatable, Sendable {
    public let count: Int
    public let size: Int
    /// Values per rank (the padded count / size).
    public let shardCount: Int
    /// count rounded up to a multiple of size: allocate buffers that take part in
    /// reduce-scatter / all-gather with this many elements.
    public var paddedCount: Int { shardCount * size }

    public init(count: Int, size: Int) {
        precondition(count >= 0 && size >= 1, "ShardLayout needs count ≥ 0 and size ≥ 1")
        self.count = count
        self.size = size
        shardCount = (count + size - 1) / size
    }

    /// The indices of the unpadded buffer that `rank` owns (possibly empty at the tail).
    public func range(of rank: Int) -> Range<Int> {
        let lo = min(count, rank * shardCount)
        return lo..<min(count, lo + shardCount)
    }
}

/// A communicator for this process: MPI when launched by mpirun or srun (`Launch.underMPI`),
/// else a single process.
public func makeCommunicator() throws(DistributedError) -> Communicator {
    if Launch.underMPI { return try MPICommunicator.world() }
    return SingleProcessCommunicator()
}
