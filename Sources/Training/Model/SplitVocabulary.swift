import QwenCore
import Qwen2

// The embedding lookup, the lm_head products and the embedding's gradient as the training pass
// runs them: straight from `weights.embedding` / `weights.lmHead` and the flat gradient buffer,
// or, when the weights split the vocabulary over processes (ZeRO-3, `SplitVocabulary`), piece by
// piece, so that no process holds the whole (V,C) matrix or its gradient:
//
//   lookup   out (N,C) = the rows of the batch's ids, gathered (only those rows)
//   forward  logits (n,V): for each vocab chunk [v0,v1) in turn, logits[:, v0..<v1] = h · W[v0..<v1]ᵀ
//   backward for each chunk, last first: dh (n,C) += dlogits[:, v0..<v1] · W[v0..<v1];
//            full fine-tuning: dW[v0..<v1] = dlogits[:, v0..<v1]ᵀ · h, handed on at once
//
// Every call on a SplitVocabulary is a collective: every rank makes the same calls in the same
// order, a rank with fewer (or no) labelled rows running empty token chunks.

/// A vocabulary matrix split over processes, read in pieces (ZeRO3Vocabulary).
protocol SplitVocabulary: AnyObject {
    /// out (N,C) = the embedding rows of `ids` (this rank's tokens).
    func embed(out: DeviceMutablePointer<Float>, ids: DevicePointer<Int32>, N: Int, backend: any TrainingBackend) throws
    /// Full fine-tuning: dout (N,C), the gradient at the last `embed`'s tokens, added to the
    /// embedding's gradient.
    func embeddingBackward(dout: DevicePointer<Float>, N: Int, backend: any TrainingBackend) throws
    /// The token chunks every rank runs through the head: the largest `local` over the ranks.
    func agreedChunkCount(local: Int) throws -> Int
    /// The lm_head's vocab chunks (row ranges, ascending, covering 0..<V).
    var headChunks: [Range<Int>] { get }
    /// The rows of chunk j, (rows, C) in the stored dtype; valid until the next call.
    func headChunk(_ j: Int) throws -> WeightMatrix
    /// Full fine-tuning: a zeroed (rows, C) gradient for chunk j, then `headGradientDone(j)`.
    func headGradient(_ j: Int) throws -> DeviceMutablePointer<Float>
    func headGradientDone(_ j: Int) throws
    /// A scratch buffer of at least `count` floats, reused.
    func scratch(_ count: Int) -> DeviceMutablePointer<Float>
}

/// A provider that may split the vocabulary (nil: it does not).
protocol SplitVocabularyWeights: WeightProvider {
    var splitVocabulary: SplitVocabulary? { get }
}

extension Qwen2TrainingPass {
    var splitVocabulary: SplitVocabulary? { (weights as? SplitVocabularyWeights)?.splitVocabulary }

    /// out (N,C) = embedding rows of ids.
    func embedTokens(out: DeviceMutablePointer<Float>, ids: DevicePointer<Int32>, N: Int) throws {
        try weights.acquireShared()
        defer { weights.releaseShared() }
        if let v = splitVocabulary {
            try v.embed(out: out, ids: ids, N: N, backend: backend)
        } else {
            backend.embeddingForward(out: out, ids: ids, table: weights.embedding, N: N)
        }
    }

    /// The token chunks of the head: `local` alone, or the most over the ranks.
    func headChunkCount(local: Int) throws -> Int {
        try splitVocabulary?.agreedChunkCount(local: local) ?? local
    }

    /// logits (n,V) = h (n,C) · lm_headᵀ. n may be 0 (the chunks are still gathered).
    func headLogits(_ logits: DeviceMutablePointer<Float>, inp h: DevicePointer<Float>, N n: Int) throws {
        guard let v = splitVocabulary else {
            backend.linearForward(out: logits, inp: h, weight: weights.lmHead, bias: nil, N: n, scratch: linearScratch, accumulate: false)
            return
        }
        let V = config.vocabSize
        for (j, rows) in v.headChunks.enumerated() {
            let w = try v.headChunk(j)
            guard n > 0 else { continue }
            let t = v.scratch(n * rows.count)
            backend.linearForward(out: t, inp: h, weight: w, bias: nil, N: n, scratch: linearScratch, accumulate: false)
            for k in 0..<n { backend.copy(logits + k * V + rows.lowerBound, from: t.readOnly + k * rows.count, count: rows.count) }
        }
    }

    /// dh (n,C) = dlogits (n,V) · lm_head; dHead (V,C) += dlogitsᵀ · h when given (full
    /// fine-tuning; split: each chunk's part handed on as it is done).
    func headBackward(dinp dh: DeviceMutablePointer<Float>, dHead: DeviceMutablePointer<Float>?, dlogits: DevicePointer<Float>,
                      inp h: DevicePointer<Float>, N n: Int) throws {
        guard let v = splitVocabulary else {
            backend.linearBackward(dinp: dh, dweight: dHead, dbias: nil, dout: dlogits, inp: h, weight: weights.lmHead,
                                   N: n, accumulateInput: false, scratch: backwardScratch)
            return
        }
        let V = config.vocabSize
        var first = true
        for j in v.headChunks.indices.reversed() {
            let rows = v.headChunks[j]
            let w = try v.headChunk(j)
            let g = dHead == nil ? nil : try v.headGradient(j)
            if n > 0 {
                let t = v.scratch(n * rows.count)
                for k in 0..<n { backend.copy(t + k * rows.count, from: dlogits + k * V + rows.lowerBound, count: rows.count) }
                backend.linearBackward(dinp: dh, dweight: g, dbias: nil, dout: t.readOnly, inp: h, weight: w, N: n,
                                       accumulateInput: !first, scratch: backwardScratch)
                first = false
            }
            if g != nil { try v.headGradientDone(j) }
        }
    }

    /// Full fine-tuning: the embedding's gradient from dout (N,C) at the batch's ids.
    func embeddingBackward(dout: DevicePointer<Float>, ids: DevicePointer<Int32>, N: Int) throws {
        guard case .full = mode else { return }
        if let v = splitVocabulary {
            try v.embeddingBackward(dout: dout, N: N, backend: backend)
        } else if let dtable = try fullGrad("model.embed_tokens.weight") {
            backend.embeddingBackward(dtable: dtable, dout: dout, ids: ids, N: N, C: config.hiddenSize)
        }
    }
}
