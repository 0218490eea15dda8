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

/// (left id, right id) -> (rank << 32 | merged id). UInt64.max means "no merge".
struct PairTable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0

    static let none = UInt64.max

    init(capacity: Int) {
        var cap = 16
        while cap < capacity * 2 { cap <<= 1 }
        keys = [UInt64](repeating: .max, count: cap)
        values = [UInt64](repeating: .max, count: cap)
        mask = cap - 1
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & mask
    }

    /// Sets the merge for (a, b); a later set for the same pair replaces the earlier one.
    mutating func set(_ a: Int32, _ b: Int32, rank: UInt32, merged: Int32) {
        if (count + 1) * 2 > keys.count { grow() }
        let k = PairTable.key(a, b)
        var s = PairTable.slot(k, mask)
        while keys[s] != .max && keys[s] != k { s = (s + 1) & mask }
        if keys[s] == .max { count += 1 }
        keys[s] = k
        values[s] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        keys = [UInt64](repeating: .max, count: oldKeys.count * 2)
        values = [UInt64](repeating: .max, count: oldKeys.count * 2)
        mask = keys.count - 1
        for i in 0..<oldKeys.count where oldKeys[i] != .max {
            var s = PairTable.slot(oldKeys[i], mask)
            while keys[s] != .max { s = (s + 1) & mask }
            keys[s] = oldKeys[i]
            values[s] = oldValues[i]
        }
    }

    /// Calls body with a lookup function over raw pointers (no bounds checks in the hot loop).
    @inline(__always)
    func withLookup<R>(_ body: (PairLookup) -> R) -> R {
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                body(PairLookup(keys: k.baseAddress!, values: v.baseAddress!, mask: mask))
            }
        }
    }
}

struct PairLookup {
    let keys: UnsafePointer<UInt64>
    let values: UnsafePointer<UInt64>
    let mask: Int

    @inline(__always) func callAsFunction(_ a: Int32, _ b: Int32) -> UInt64 {
        let k = PairTable.key(a, b)
        var h = k &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let key = keys[s]
            if key == k { return values[s] }
            if key == .max { return PairTable.none }
            s = (s + 1) & mask
        }
    }
}
