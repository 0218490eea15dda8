import Foundation

/// Two open-addressing hash tables for the hot paths: token bytes -> id, and a pair of ids ->
/// (merge rank, merged id). Swift's Dictionary would hash with SipHash and allocate a key per
/// lookup; these hash a byte slice in place.

/// A fast 64-bit hash of a byte slice (8 bytes at a time, multiply-xorshift mixing).
@inline(__always)
func hashBytes(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: n)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        i += 8
    }
    if i < n {
        var w: UInt64 = 0
        var shift: UInt64 = 0
        while i < n { w |= UInt64(p[i]) << shift; shift += 8; i += 1 }
        h = (h ^ w) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 29
    }
    h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
    return h ^ (h >> 32)
}

/// Token bytes, stored back to back, indexed by id; plus a bytes -> id lookup.
/// Ids without bytes (gaps, or ids held by added tokens) have an empty range and are not looked up.
struct TokenBytes {
    private(set) var storage: [UInt8] = []
    private(set) var starts: [Int32] = [0]       // id -> start; starts[id+1] is its end
    private(set) var present: [Bool] = []
    private var slots: [Int32] = []              // open addressing, -1 empty
    private var mask = 0

    var count: Int { present.count }

    /// Builds the table from (id, bytes) entries; returns the ids that repeat some bytes as
    /// (later id, earlier id) so the loader can report them.
    init(entries: [(id: Int, bytes: ArraySlice<UInt8>)]) {
        let maxId = entries.map(\.id).max() ?? -1
        var byId = [ArraySlice<UInt8>?](repeating: nil, count: maxId + 1)
        for e in entries { byId[e.id] = e.bytes }
        storage.reserveCapacity(entries.reduce(0) { $0 + $1.bytes.count })
        starts.reserveCapacity(maxId + 2)
        present.reserveCapacity(maxId + 1)
        for b in byId {
            if let b { storage.append(contentsOf: b) }
            starts.append(Int32(storage.count))
            present.append(b != nil)
        }
        var cap = 16
        while cap < entries.count * 2 { cap <<= 1 }
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        for id in 0..<present.count where present[id] { insert(id) }
    }

    @inline(__always) func range(_ id: Int) -> Range<Int> { Int(starts[id])..<Int(starts[id + 1]) }

    func bytes(_ id: Int) -> ArraySlice<UInt8> { storage[range(id)] }

    private mutating func insert(_ id: Int) {
        let r = range(id)
        let h = storage.withUnsafeBufferPointer { hashBytes($0.baseAddress! + r.lowerBound, r.count) }
        var s = Int(truncatingIfNeeded: h) & mask
        while slots[s] >= 0 {
            if equal(Int(slots[s]), r) { return }  // first id with these bytes wins
            s = (s + 1) & mask
        }
        slots[s] = Int32(id)
    }

    private func equal(_ id: Int, _ r: Range<Int>) -> Bool {
        let q = range(id)
        return q.count == r.count && storage[q].elementsEqual(storage[r])
    }

    /// The id whose bytes are exactly p[0..<n], or -1.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        let h = hashBytes(p, n)
        return storage.withUnsafeBufferPointer { st in
            slots.withUnsafeBufferPointer { sl in
                var s = Int(truncatingIfNeeded: h) & mask
                while true {
                    let id = sl[s]
                    if id < 0 { return -1 }
                    let a = Int(starts[Int(id)]), b = Int(starts[Int(id) + 1])
                    if b - a == n && (n == 0 || memcmp(st.baseAddress! + a, p, n) == 0) { return id }
                    s = (s + 1) & mask
                }
            }
        }
    }

    func lookup(_ bytes: [UInt8]) -> Int? {
        if bytes.isEmpty { return nil }
        let id = bytes.withUnsafeBufferPointer { lookup($0.baseAddress!, $0.count) }
        return id < 0 ? nil : Int(id)
    }
}

/// (left id, right id) -> merge rank, and rank -> merged id. One 8-byte slot per pair (key in
/// the high 40 bits, rank in the low 24) keeps the table half the size of a key/value layout:
/// on Chinese text nearly every lookup is a cache miss, so size is speed.
struct PairTable {
    private var slots: [UInt64]
    private var mask: Int
    /// rank -> merged id.
    private(set) var mergedOf: [Int32] = []
    /// left id -> a 64-bit Bloom filter of its right partners: most lookups on CJK text are for
    /// pairs that never merge (a character's last byte and the next one's first), and this small
    /// array answers them without touching the big table.
    private(set) var partnerFilter: [UInt64] = []
    private(set) var count = 0
    /// rank == merged id for every merge (tiktoken; or merges sorted by their result, after
    /// `finalize`): then `merged(rank)` needs no memory access.
    private(set) var identity = false

    static let none = UInt32.max
    /// Ids must fit in 20 bits and ranks in 24.
    static let maxId = (1 << 20) - 1
    static let maxRank = (1 << 24) - 2  // 0xFFFFFF marks "no merge" in a HotPairs slot

    init(capacity: Int, vocabularySize: Int) {
        var cap = 16
        while cap < capacity * 3 / 2 { cap <<= 1 }
        slots = [UInt64](repeating: .max, count: cap)
        mask = cap - 1
        partnerFilter = [UInt64](repeating: 0, count: vocabularySize)
        mergedOf.reserveCapacity(max(capacity, vocabularySize))
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 20 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always) static func partnerBit(_ b: Int32) -> UInt64 {
        1 << ((UInt64(UInt32(bitPattern: b)) &* 0x9E37_79B9_7F4A_7C15) >> 58)
    }

    @inline(__always) static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Sets the merge for (a, b); a later set for the same pair replaces the earlier one.
    /// The caller checks ids < maxId and rank <= maxRank.
    mutating func set(_ a: Int32, _ b: Int32, rank: UInt32, merged: Int32) {
        if (count + 1) * 4 > slots.count * 3 { grow() }
        let k = PairTable.key(a, b)
        var s = PairTable.slot(k, mask)
        while slots[s] != .max && slots[s] >> 24 != k { s = (s + 1) & mask }
        if slots[s] == .max { count += 1 }
        slots[s] = k << 24 | UInt64(rank)
        if Int(a) >= partnerFilter.count { partnerFilter.append(contentsOf: repeatElement(0, count: Int(a) + 1 - partnerFilter.count)) }
        partnerFilter[Int(a)] |= PairTable.partnerBit(b)
        if Int(rank) >= mergedOf.count { mergedOf.append(contentsOf: repeatElement(-1, count: Int(rank) + 1 - mergedOf.count)) }
        mergedOf[Int(rank)] = merged
    }

    /// When merged ids grow strictly with rank, ranks can be replaced by merged ids without
    /// changing any order: do it, so a merge needs no rank -> id lookup.
    mutating func finalize() {
        var previous: Int32 = -1
        for m in mergedOf where m >= 0 {
            if m <= previous { return }
            previous = m
        }
        for s in 0..<slots.count where slots[s] != .max {
            let rank = Int(slots[s] & 0xFF_FFFF)
            slots[s] = slots[s] & ~0xFF_FFFF | UInt64(UInt32(bitPattern: mergedOf[rank]))
        }
        mergedOf = Array(0..<Int32(previous + 1))
        identity = true
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: .max, count: old.count * 2)
        mask = slots.count - 1
        for v in old where v != .max {
            var s = PairTable.slot(v >> 24, mask)
            while slots[s] != .max { s = (s + 1) & mask }
            slots[s] = v
        }
    }

    /// Calls body with a lookup function over raw pointers (no bounds checks in the hot loop),
    /// through `hot` (a HotPairs table) when given.
    @inline(__always)
    func withLookup<R>(hot: UnsafeMutablePointer<UInt64>? = nil, _ body: (PairLookup) -> R) -> R {
        slots.withUnsafeBufferPointer { sl in
            mergedOf.withUnsafeBufferPointer { m in
                partnerFilter.withUnsafeBufferPointer { f in
                    body(PairLookup(slots: sl.baseAddress!, mergedOf: m.baseAddress ?? UnsafePointer(bitPattern: 8)!, identity: identity,
                                    filter: f.baseAddress ?? UnsafePointer(bitPattern: 8)!, filterCount: f.count,
                                    mask: mask, hot: hot))
                }
            }
        }
    }
}

struct PairLookup {
    let slots: UnsafePointer<UInt64>
    let mergedOf: UnsafePointer<Int32>
    let identity: Bool
    let filter: UnsafePointer<UInt64>
    let filterCount: Int
    let mask: Int
    let hot: UnsafeMutablePointer<UInt64>?

    /// The rank of merging (a, b), or PairTable.none.
    @inline(__always) func callAsFunction(_ a: Int32, _ b: Int32) -> UInt32 {
        if Int(a) >= filterCount || filter[Int(a)] & PairTable.partnerBit(b) == 0 { return PairTable.none }
        let k = PairTable.key(a, b)
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        if let hot {
            let slot = hot + Int(truncatingIfNeeded: h >> 40) & (HotPairs.count - 1)
            let v = slot.pointee
            if v >> 24 == k {
                let r = UInt32(truncatingIfNeeded: v & 0xFF_FFFF)
                return r == 0xFF_FFFF ? PairTable.none : r
            }
            let r = probe(k, h)
            slot.pointee = k << 24 | UInt64(r == PairTable.none ? 0xFF_FFFF : r)
            return r
        }
        return probe(k, h)
    }

    @inline(__always) private func probe(_ k: UInt64, _ h: UInt64) -> UInt32 {
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let v = slots[s]
            if v >> 24 == k { return UInt32(truncatingIfNeeded: v & 0xFF_FFFF) }
            if v == .max { return PairTable.none }
            s = (s + 1) & mask
        }
    }

    @inline(__always) func merged(_ rank: UInt32) -> Int32 { identity ? Int32(bitPattern: rank) : mergedOf[Int(rank)] }
}

/// A small direct-mapped cache of recent pair lookups (32 KB: stays in L1/L2), one per thread.
/// The pair table of a big vocabulary is megabytes, so nearly every lookup in it misses the CPU
/// caches; text reuses the same few thousand pairs over and over.
enum HotPairs {
    static let count = 4096

    static func allocate() -> UnsafeMutablePointer<UInt64> {
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: count)
        p.initialize(repeating: .max, count: count)
        return p
    }
}
