import CMPI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// MPI_COMM_WORLD through Open MPI. Created once per process (`world()`); MPI is initialised
/// only here, so a plain `qwenft` run never touches MPI. Errors come back as `DistributedError`
/// (the communicator's handler is set to MPI_ERRORS_RETURN) rather than aborting the process.
/// A rank that gives up while others may sit in a collective should call `abort(status:)`, which
/// ends every rank, instead of exiting alone.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm?

    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// Largest element count handed to one MPI call (its counts are Int32).
    static let maxCountPerCall = 1 << 30

    /// True when mpirun or srun started this process (see `Launch.underMPI`).
    public static func launchedUnderMPI() -> Bool { Launch.underMPI }

    /// The collective in flight (name, start) and where the run is, read by the watchdog thread.
    private let watch = CollectiveWatch()

    /// The world communicator, initialising MPI on first use; MPI_Finalize runs at exit.
    public static func world() throws(DistributedError) -> MPICommunicator {
        if let s = shared { return s }
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            try check("MPI_Init", MPI_Init(nil, nil))
            atexit { MPICommunicator.finalizeIfNeeded() }
        }
        let comm = qwenft_mpi_comm_world()
        try check("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(comm, qwenft_mpi_errors_return()))
        var r: Int32 = 0, s: Int32 = 0
        try check("MPI_Comm_rank", MPI_Comm_rank(comm, &r))
        try check("MPI_Comm_size", MPI_Comm_size(comm, &s))
        let c = MPICommunicator(rank: Int(r), size: Int(s), comm: comm)
        shared = c
        return c
    }

    private init(rank: Int, size: Int, comm: MPI_Comm?) {
        self.rank = rank
        self.size = size
        self.comm = comm
    }

    static func finalizeIfNeeded() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    /// Ends every rank of the job with `status` (MPI_Abort).
    public func abort(status: Int32) -> Never {
        MPI_Abort(comm, status)
        exit(status)
    }

    static func check(_ op: String, _ code: Int32) throws(DistributedError) {
        guard code != qwenft_mpi_success() else { return }
        var buffer = [CChar](repeating: 0, count: 1024)
        var length: Int32 = 0
        MPI_Error_string(code, &buffer, &length)
        throw .mpi(operation: op, code: code, message: String(cString: buffer))
    }

    /// Runs `body(offset, n)` over 0..<count in pieces one MPI call can take.
    private func inPieces(_ count: Int, _ body: (Int, Int32) throws(DistributedError) -> Void) throws(DistributedError) {
        var offset = 0
        while offset < count {
            let n = min(Self.maxCountPerCall, count - offset)
            try body(offset, Int32(n))
            offset += n
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws(DistributedError) {
        watch.begin("MPI_Allreduce"); defer { watch.end() }
        try inPieces(count) { (offset, n) throws(DistributedError) in
            try Self.check("MPI_Allreduce", MPI_Allreduce(qwenft_mpi_in_place(), buffer + offset, n,
                                                          qwenft_mpi_float(), qwenft_mpi_sum(), comm))
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws(DistributedError) {
        watch.begin("MPI_Allreduce"); defer { watch.end() }
        try inPieces(count) { (offset, n) throws(DistributedError) in
            try Self.check("MPI_Allreduce", MPI_Allreduce(qwenft_mpi_in_place(), buffer + offset, n,
                                                          qwenft_mpi_double(), qwenft_mpi_sum(), comm))
        }
    }

    /// `output` must not overlap `input`.
    public func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                 chunkCount: Int) throws(DistributedError) {
        guard chunkCount <= Int(Int32.max) else { throw .countTooLarge(operation: "reduce-scatter", count: chunkCount) }
        watch.begin("MPI_Reduce_scatter_block"); defer { watch.end() }
        try Self.check("MPI_Reduce_scatter_block",
                       MPI_Reduce_scatter_block(input, output, Int32(chunkCount), qwenft_mpi_float(), qwenft_mpi_sum(), comm))
    }

    /// Out of place, or in place with output == input (this rank's sums at the start).
    public func reduceScatterSum(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                                 counts: [Int]) throws(DistributedError) {
        guard counts.count == size else { throw .countTooLarge(operation: "reduce-scatter (counts for \(counts.count) of \(size) ranks)", count: counts.count) }
        guard let big = counts.first(where: { $0 > Int(Int32.max) }) else {
            watch.begin("MPI_Reduce_scatter"); defer { watch.end() }
            let c = counts.map { Int32($0) }
            // In place when output == input: the sums land at the start of the buffer.
            let send: UnsafeRawPointer? = UnsafePointer(output) == input ? UnsafeRawPointer(qwenft_mpi_in_place()) : UnsafeRawPointer(input)
            try Self.check("MPI_Reduce_scatter",
                           MPI_Reduce_scatter(send, output, c, qwenft_mpi_float(), qwenft_mpi_sum(), comm))
            return
        }
        throw .countTooLarge(operation: "reduce-scatter", count: big)
    }

    /// In place when `input` is this rank's chunk of `output` (output + rank·chunkCount).
    public func allGather(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                          chunkCount: Int) throws(DistributedError) {
        guard chunkCount <= Int(Int32.max) else { throw .countTooLarge(operation: "all-gather", count: chunkCount) }
        watch.begin("MPI_Allgather"); defer { watch.end() }
        let inPlace = UnsafePointer(output + rank * chunkCount) == input
        let send: UnsafeRawPointer? = inPlace ? UnsafeRawPointer(qwenft_mpi_in_place()) : UnsafeRawPointer(input)
        try Self.check("MPI_Allgather",
                       MPI_Allgather(send, Int32(chunkCount), qwenft_mpi_float(),
                                     output, Int32(chunkCount), qwenft_mpi_float(), comm))
    }

    public func allGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError) {
        guard byteCounts.count == size else { throw .countTooLarge(operation: "all-gather (counts for \(byteCounts.count) of \(size) ranks)", count: byteCounts.count) }
        guard byteCounts.reduce(0, +) <= Int(Int32.max) else { throw .countTooLarge(operation: "all-gather", count: byteCounts.reduce(0, +)) }
        watch.begin("MPI_Allgatherv"); defer { watch.end() }
        let counts = byteCounts.map { Int32($0) }
        var displs = [Int32](repeating: 0, count: size)
        for r in 1..<max(1, size) { displs[r] = displs[r - 1] + counts[r - 1] }
        try Self.check("MPI_Allgatherv",
                       MPI_Allgatherv(qwenft_mpi_in_place(), 0, qwenft_mpi_byte(), buffer, counts, displs, qwenft_mpi_byte(), comm))
    }

    public func startAllGather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int]) throws(DistributedError) -> PendingCollective {
        guard byteCounts.count == size else { throw .countTooLarge(operation: "all-gather (counts for \(byteCounts.count) of \(size) ranks)", count: byteCounts.count) }
        guard byteCounts.reduce(0, +) <= Int(Int32.max) else { throw .countTooLarge(operation: "all-gather", count: byteCounts.reduce(0, +)) }
        let pending = PendingAllGather(watch: watch, counts: byteCounts)
        try Self.check("MPI_Iallgatherv",
                       MPI_Iallgatherv(qwenft_mpi_in_place(), 0, qwenft_mpi_byte(), buffer, pending.counts, pending.displs,
                                       qwenft_mpi_byte(), comm, &pending.request))
        pending.started = true
        return pending
    }

    public func gather(_ buffer: UnsafeMutableRawPointer, byteCounts: [Int], root: Int) throws(DistributedError) {
        guard (0..<size).contains(root) else { throw .badRoot(root: root, size: size) }
        guard byteCounts.count == size else { throw .countTooLarge(operation: "gather (counts for \(byteCounts.count) of \(size) ranks)", count: byteCounts.count) }
        guard byteCounts.reduce(0, +) <= Int(Int32.max) else { throw .countTooLarge(operation: "gather", count: byteCounts.reduce(0, +)) }
        watch.begin("MPI_Gatherv"); defer { watch.end() }
        let counts = byteCounts.map { Int32($0) }
        var displs = [Int32](repeating: 0, count: size)
        for r in 1..<max(1, size) { displs[r] = displs[r - 1] + counts[r - 1] }
        if rank == root {
            try Self.check("MPI_Gatherv", MPI_Gatherv(qwenft_mpi_in_place(), 0, qwenft_mpi_byte(), buffer, counts, displs,
                                                       qwenft_mpi_byte(), Int32(root), comm))
        } else {
            try Self.check("MPI_Gatherv", MPI_Gatherv(buffer + Int(displs[rank]), counts[rank], qwenft_mpi_byte(), nil, nil, nil,
                                                       qwenft_mpi_byte(), Int32(root), comm))
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, byteCount: Int, root: Int) throws(DistributedError) {
        guard (0..<size).contains(root) else { throw .badRoot(root: root, size: size) }
        watch.begin("MPI_Bcast"); defer { watch.end() }
        try inPieces(byteCount) { (offset, n) throws(DistributedError) in
            try Self.check("MPI_Bcast", MPI_Bcast(buffer + offset, n, qwenft_mpi_byte(), Int32(root), comm))
        }
    }

    public func barrier() throws(DistributedError) {
        watch.begin("MPI_Barrier"); defer { watch.end() }
        try Self.check("MPI_Barrier", MPI_Barrier(comm))
    }

    public func setPhase(_ phase: String) { watch.setPhase(phase) }

    /// Starts (once) a thread that checks every quarter second whether a collective has waited
    /// longer than `seconds`; if so it prints which one, at which phase, and ends the job.
    public func setCollectiveTimeout(seconds: Double) {
        guard seconds > 0, watch.setTimeout(seconds) else { return }
        let watch = self.watch, rank = self.rank, size = self.size
        let thread = Thread { [weak self] in
            while true {
                usleep(250_000)
                guard let (name, waited, phase, limit) = watch.overdue() else { continue }
                let text = String(format: "qwenft: error: rank %d of %d: %@ has waited %.0f s at %@, longer than ddp_timeout (%g s): another rank is stuck, stopped or gone; ending every rank\n",
                                  rank, size, name, waited, phase, limit)
                FileHandle.standardError.write(Data(text.utf8))
                self?.abort(status: 1)
                _exit(1)
            }
        }
        thread.start()
    }
}

/// An MPI_Iallgatherv in flight: its count and displacement arrays live until it completes.
final class PendingAllGather: PendingCollective {
    let watch: CollectiveWatch
    let counts: UnsafeMutablePointer<Int32>
    let displs: UnsafeMutablePointer<Int32>
    var request: MPI_Request?
    var started = false

    init(watch: CollectiveWatch, counts c: [Int]) {
        self.watch = watch
        counts = .allocate(capacity: max(1, c.count))
        displs = .allocate(capacity: max(1, c.count))
        var at: Int32 = 0
        for (r, n) in c.enumerated() {
            counts[r] = Int32(n)
            displs[r] = at
            at += Int32(n)
        }
    }

    func wait() throws(DistributedError) {
        guard started else { return }
        watch.begin("MPI_Iallgatherv (wait)"); defer { watch.end() }
        started = false
        try MPICommunicator.check("MPI_Wait", qwenft_mpi_wait(&request))
    }

    deinit {
        if started { _ = qwenft_mpi_wait(&request) }
        counts.deallocate()
        displs.deallocate()
    }
}

/// The collective a rank is waiting in, for the ddp_timeout watchdog.
final class CollectiveWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var name: String?
    private var since: UInt64 = 0
    private var phase = "start-up"
    private var timeout: Double = 0

    func begin(_ op: String) {
        lock.lock(); name = op; since = DispatchTime.now().uptimeNanoseconds; lock.unlock()
    }

    func end() { lock.lock(); name = nil; lock.unlock() }

    func setPhase(_ p: String) { lock.lock(); phase = p; lock.unlock() }

    /// Sets the limit; true the first time (the caller then starts the thread).
    func setTimeout(_ t: Double) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let first = timeout == 0
        timeout = t
        return first
    }

    /// (collective, seconds waited, phase, limit) when the current collective is past the limit.
    func overdue() -> (String, Double, String, Double)? {
        lock.lock(); defer { lock.unlock() }
        guard let n = name, timeout > 0 else { return nil }
        let waited = Double(DispatchTime.now().uptimeNanoseconds - since) / 1e9
        return waited > timeout ? (n, waited, phase, timeout) : nil
    }
}
