import QwenCore

/// Keys and values of every layer for B sequences of up to `capacity` positions, laid out
/// (B, KVH, capacity, hd) per layer so one head's keys are contiguous for decoding; `keyMask`
/// (B, capacity) marks real tokens (1) against padding (0). A training forward uses one sized
/// to its batch (capacity = T) as the attention's key/value store.
public final class KVCache: @unchecked Sendable {
    public let batch: Int
    public let capacity: Int
    public let kvHeads: Int
    public let headDim: Int
    public let keys: [AlignedBuffer<Float>]
    public let values: [AlignedBuffer<Float>]
    public let keyMask: AlignedBuffer<UInt8>
    /// Positions filled so far (the next token's position).
    public internal(set) var length: Int = 0

    public init(config: Qwen2Config, batch: Int, capacity: Int) {
        self.batch = batch
        self.capacity = capacity
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
        let n = batch * kvHeads * capacity * headDim
        keys = (0..<config.numHiddenLayers).map { _ in AlignedBuffer<Float>(count: n) }
        values = (0..<config.numHiddenLayers).map { _ in AlignedBuffer<Float>(count: n) }
        keyMask = AlignedBuffer<UInt8>(count: batch * capacity)
    }

    /// Forgets every position (a new conversation).
    public func reset() {
        length = 0
        keyMask.pointer.update(repeating: 0, count: keyMask.count)
    }

    /// Truncates to the first `n` positions (keeps a shared prefix).
    public func truncate(to n: Int) {
        guard n < length else { return }
        for b in 0..<batch { (keyMask.pointer + b * capacity + n).update(repeating: 0, count: capacity - n) }
        length = n
    }

    public var bytes: Int { 2 * keys.count * batch * kvHeads * capacity * headDim * 4 }
}
