/// Byte-level BPE over one piece: start from one token per byte, then repeatedly merge the
/// adjacent pair with the lowest merge rank, the leftmost on a tie, until no pair merges.
///
/// That is both references' rule. huggingface/tokenizers pops merges from a heap ordered by
/// (rank, position); tiktoken scans for the lowest rank of the concatenated bytes. A tiktoken
/// vocabulary is loaded as the pair table of every split of every token (rank = the token's rank),
/// which gives tiktoken's merges exactly; a tokenizer.json's merges give HF's.
///
/// Short pieces (nearly all) use tiktoken's array scan; long ones (a long run of Chinese or of
/// spaces) a heap over a linked list, so a piece of n bytes costs O(n log n), not O(n²).
struct BPE {
    /// byte -> id of the single-byte token.
    let byteIds: [Int32]
    /// Rank of merging the single-byte tokens of bytes a and b, at a << 8 | b: every piece starts
    /// with these lookups, so they skip the hash table.
    let bytePairRanks: [UInt32]
    let pairs: PairTable
    let tokens: TokenBytes
    /// Whether a piece that is itself a token may be emitted without merging (tiktoken does this;
    /// HF only with `ignore_merges`).
    let wholePieceShortcut: Bool

    static let heapThreshold = 96

    init(byteIds: [Int32], pairs: PairTable, tokens: TokenBytes, wholePieceShortcut: Bool) {
        self.byteIds = byteIds
        self.pairs = pairs
        self.tokens = tokens
        self.wholePieceShortcut = wholePieceShortcut
        var table = [UInt32](repeating: PairTable.none, count: 65536)
        pairs.withLookup { lookup in
            for a in 0..<256 where byteIds[a] >= 0 {
                for b in 0..<256 where byteIds[b] >= 0 { table[a << 8 | b] = lookup(byteIds[a], byteIds[b]) }
            }
        }
        bytePairRanks = table
    }

    func encode(_ p: UnsafePointer<UInt8>, _ n: Int, hot: UnsafeMutablePointer<UInt64>? = nil, into out: inout [Int32]) {
        if n == 1 { out.append(byteIds[Int(p[0])]); return }
        if wholePieceShortcut {
            let id = tokens.lookup(p, n)
            if id >= 0 { out.append(id); return }
        }
        if n <= BPE.heapThreshold { scan(p, n, hot: hot, into: &out) } else { heap(p, n, hot: hot, into: &out) }
    }

    func scan(_ p: UnsafePointer<UInt8>, _ n: Int, hot: UnsafeMutablePointer<UInt64>?, into out: inout [Int32]) {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { ids in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: n) { ranks in
                byteIds.withUnsafeBufferPointer { byteIds in
                    bytePairRanks.withUnsafeBufferPointer { bytePairs in
                        pairs.withLookup(hot: hot) { lookup in
                            for k in 0..<n { ids[k] = byteIds[Int(p[k])] }
                            for k in 0..<(n - 1) { ranks[k] = bytePairs[Int(p[k]) << 8 | Int(p[k + 1])] }
                            var m = n
                            while m > 1 {
                                var best = PairTable.none
                                var at = -1
                                for k in 0..<(m - 1) where ranks[k] < best {
                                    best = ranks[k]
                                    at = k
                                }
                                if at < 0 { break }
                                ids[at] = lookup.merged(best)
                                // Remove element at+1 from both arrays.
                                var k = at + 1
                                while k < m - 1 {
                                    ids[k] = ids[k + 1]
                                    ranks[k] = ranks[k + 1]
                                    k += 1
                                }
                                m -= 1
                                ranks[at] = at + 1 < m ? lookup(ids[at], ids[at + 1]) : PairTable.none
                                if at > 0 { ranks[at - 1] = lookup(ids[at - 1], ids[at]) }
                            }
                            for k in 0..<m { out.append(ids[k]) }
                        }
                    }
                }
            }
        }
    }

    /// The same rule with a binary heap of (rank, position) over a doubly linked list.
    func heap(_ p: UnsafePointer<UInt8>, _ n: Int, hot: UnsafeMutablePointer<UInt64>?, into out: inout [Int32]) {
        var ids = [Int32](repeating: 0, count: n)
        var next = [Int32](repeating: -1, count: n)
        var prev = [Int32](repeating: -1, count: n)
        var heap = MinHeap()
        pairs.withLookup(hot: hot) { lookup in
            for k in 0..<n {
                ids[k] = byteIds[Int(p[k])]
                next[k] = k + 1 < n ? Int32(k + 1) : -1
                prev[k] = Int32(k - 1)
            }
            for k in 0..<(n - 1) {
                let r = bytePairRanks[Int(p[k]) << 8 | Int(p[k + 1])]
                if r != PairTable.none { heap.push(r, k) }
            }
            while let (rank, pos) = heap.pop() {
                let nx = Int(next[pos])
                // Stale entries: the left token was merged away, or the pair has changed.
                if ids[pos] < 0 || nx < 0 || lookup(ids[pos], ids[nx]) != rank { continue }
                ids[pos] = lookup.merged(rank)
                ids[nx] = -1
                let nn = Int(next[nx])
                next[pos] = Int32(nn)
                if nn >= 0 {
                    prev[nn] = Int32(pos)
                    let r = lookup(ids[pos], ids[nn])
                    if r != PairTable.none { heap.push(r, pos) }
                }
                let pv = Int(prev[pos])
                if pv >= 0 {
                    let r = lookup(ids[pv], ids[pos])
                    if r != PairTable.none { heap.push(r, pv) }
                }
            }
        }
        var k = 0
        while k >= 0 && k < n { out.append(ids[k]); k = Int(next[k]) }
    }
}

/// A binary min-heap of (rank, position), ordered by rank then position.
struct MinHeap {
    private var items: [(UInt32, Int)] = []

    @inline(__always) private static func less(_ a: (UInt32, Int), _ b: (UInt32, Int)) -> Bool {
        a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
    }

    mutating func push(_ rank: UInt32, _ pos: Int) {
        items.append((rank, pos))
        var c = items.count - 1
        while c > 0 {
            let parent = (c - 1) / 2
            if !MinHeap.less(items[c], items[parent]) { break }
            items.swapAt(c, parent)
            c = parent
        }
    }

    mutating func pop() -> (UInt32, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var c = 0
            while true {
                let l = 2 * c + 1, r = l + 1
                var m = c
                if l < items.count && MinHeap.less(items[l], items[m]) { m = l }
                if r < items.count && MinHeap.less(items[r], items[m]) { m = r }
                if m == c { break }
                items.swapAt(c, m)
                c = m
            }
        }
        return top
    }
}
