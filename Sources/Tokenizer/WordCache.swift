import Foundation

/// A cache of piece bytes -> token ids, so a word seen before costs one hash lookup instead of a
/// BPE. Not thread-safe: each thread uses its own (see `CachePool`). When full it starts over.
final class WordCache {
    private static let slotCount = 1 << 15
    private static let maxEntries = slotCount / 2
    static let maxPieceLength = 48

    private var hashes = [UInt64](repeating: 0, count: slotCount)
    private var entry = [Int32](repeating: -1, count: slotCount)  // index into the arrays below
    private var keyStart: [Int32] = []
    private var idStart: [Int32] = []
    private var keyBytes: [UInt8] = []
    private var idValues: [Int32] = []

    /// This thread's HotPairs table.
    let hotPairs = HotPairs.allocate()

    deinit { hotPairs.deallocate() }

    init() {
        keyStart.reserveCapacity(WordCache.maxEntries + 1)
        idStart.reserveCapacity(WordCache.maxEntries + 1)
        keyStart.append(0)
        idStart.append(0)
    }

    /// Appends the cached ids for p[0..<n] to `out` and returns true, or returns false.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, into out: inout [Int32]) -> Bool {
        var s = Int(truncatingIfNeeded: h) & (WordCache.slotCount - 1)
        while true {
            let e = Int(entry[s])
            if e < 0 { return false }
            if hashes[s] == h {
                let ks = Int(keyStart[e]), ke = Int(keyStart[e + 1])
                if ke - ks == n && keyBytes.withUnsafeBufferPointer({ memcmp($0.baseAddress! + ks, p, n) == 0 }) {
                    let a = Int(idStart[e]), b = Int(idStart[e + 1])
                    idValues.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[a..<b])) }
                    return true
                }
            }
            s = (s + 1) & (WordCache.slotCount - 1)
        }
    }

    func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, ids: ArraySlice<Int32>) {
        if keyStart.count > WordCache.maxEntries { clear() }
        var s = Int(truncatingIfNeeded: h) & (WordCache.slotCount - 1)
        while entry[s] >= 0 { s = (s + 1) & (WordCache.slotCount - 1) }
        hashes[s] = h
        entry[s] = Int32(keyStart.count - 1)
        keyBytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        idValues.append(contentsOf: ids)
        keyStart.append(Int32(keyBytes.count))
        idStart.append(Int32(idValues.count))
    }

    private func clear() {
        for k in 0..<entry.count { entry[k] = -1 }
        keyStart.removeAll(keepingCapacity: true)
        idStart.removeAll(keepingCapacity: true)
        keyBytes.removeAll(keepingCapacity: true)
        idValues.removeAll(keepingCapacity: true)
        keyStart.append(0)
        idStart.append(0)
    }
}

/// Word caches shared out to concurrent encodes: take one, use it, give it back.
final class CachePool: @unchecked Sendable {
    private var free: [WordCache] = []
    private let lock = NSLock()

    func take() -> WordCache {
        lock.lock()
        defer { lock.unlock() }
        return free.popLast() ?? WordCache()
    }

    func removeAll() {
        lock.lock()
        free.removeAll()
        lock.unlock()
    }

    func give(_ cache: WordCache) {
        lock.lock()
        if free.count < 64 { free.append(cache) }
        lock.unlock()
    }
}
