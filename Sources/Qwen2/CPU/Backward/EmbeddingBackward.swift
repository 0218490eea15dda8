import QwenCore

// dtable (V,C) += Σ over tokens n with ids[n] = v of dout[n] — the scatter-add that is the
// embedding's backward. dout (N,C), ids (N). Ids are checked by the caller (0 ≤ id < V).
//
// Threads split the C columns, and each walks the tokens in order, so the sums (and their bits)
// do not depend on the thread count's interleaving of tokens that share an id.

public func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              ids: UnsafePointer<Int32>, N: Int, C: Int) {
    parallelChunks(C, minChunk: 32) { cols in
        for n in 0..<N {
            let row = dtable + Int(ids[n]) * C
            let d = dout + n * C
            for c in cols { row[c] += d[c] }
        }
    }
}
