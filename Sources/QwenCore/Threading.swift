import CBLAS
import Dispatch
import Foundation

/// Thread count for `parallelFor` and for the products of `GEMM`. Defaults to the core count;
/// `--threads` or `QWENFT_THREADS` override it. The same input and thread count give the same bits.
/// OpenBLAS itself is kept single-threaded: `GEMM` splits each product over our threads (see there).
public enum Threading {
    /// Set on first use, and OpenBLAS's thread count with it, so library code that never calls
    /// `configure` (tests, other programs) still runs BLAS the same way.
    nonisolated(unsafe) private static var current: Int = {
        openblas_set_num_threads(1)
        return defaultCount()
    }()

    /// A count for the current task alone (`withCount`), over the process-wide one.
    @TaskLocal static var scoped: Int?

    /// The number of threads the compute kernels use.
    public static var count: Int { scoped ?? current }

    /// Sets the process-wide thread count for our loops and products (the command line's
    /// `--threads`). Code that runs beside other work in the same process (tests) uses `withCount`.
    public static func configure(threads: Int?) {
        let n = resolvedCount(threads)
        _ = current  // run the lazy initialiser first so it cannot override this later
        current = n
    }

    /// Runs `body` with `threads` compute threads in the current task only: calls made from it on
    /// this task see that count, everything else keeps the process-wide one. Results depend on
    /// the thread count, so tests that vary it must not change it for tests running beside them.
    public static func withCount<R>(_ threads: Int?, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(resolvedCount(threads)) { try body() }
    }

    /// What `configure` makes of a requested count: nil → the default, below 1 → 1.
    public static func resolvedCount(_ threads: Int?) -> Int {
        max(1, threads ?? defaultCount())
    }

    /// `QWENFT_THREADS` when set to a positive integer, else the number of active cores.
    public static func defaultCount() -> Int {
        if let s = ProcessInfo.processInfo.environment["QWENFT_THREADS"], let n = Int(s), n > 0 {
            return n
        }
        return ProcessInfo.processInfo.activeProcessorCount
    }
}

/// Runs `body(i)` for i in 0..<n over `Threading.count` threads, in contiguous chunks, so each
/// index is always handled by the same chunk for a given n and thread count (deterministic).
@inlinable
public func parallelFor(_ n: Int, minChunk: Int = 1, _ body: (Int) -> Void) {
    parallelChunks(n, minChunk: minChunk) { range in
        for i in range { body(i) }
    }
}

/// Splits 0..<n into at most `Threading.count` contiguous ranges (each at least `minChunk` long)
/// and runs `body` on each range concurrently.
@inlinable
public func parallelChunks(_ n: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    if n <= 0 { return }
    let threads = min(Threading.count, max(1, n / max(1, minChunk)))
    if threads <= 1 {
        body(0..<n)
        return
    }
    let per = (n + threads - 1) / threads
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let lo = t * per
            let hi = min(n, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}
