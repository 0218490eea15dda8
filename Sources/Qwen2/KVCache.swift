import QwenCore

/// Keys and values of every layer for B sequences of up to `capacity` positions, laid out
/// (B, KVH, capacity, hd) per layer so one head's keys are contiguous for decoding; `keyMask`
/// (B, capacity) marks real tokens (1) against padding (0). A training forward uses one sized
/// to its batch (capacity = T) as the attention's key/value store. Its buffers are `backend`'s
/// memory: make it with the model's (`KVCache(…, backend: model.backend)`).
public final class KVCache: @unchecked Sendable {
    public let batch: Int
    public let capacity: Int
    public let kvHeads: Int
    public let headDim: Int
    public let keys: [DeviceBuffer<Float>]
    public let values: [DeviceBuffer<Float>]
    public let keyMask: DeviceBuffer<UInt8>
    public let backend: any Backend
    /// Positions filled so far (the next token's position).
    public internal(set) var length: Int = 0

    public init(config: Qwen2Config, batch: Int, capacity: Int, backend: any Backend = CPUBackend()) {
        self.batch = batch
        self.capacity = capacity
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
        let n = batch * kvHeads * capacity * headDim
        self.backend = backend
        keys = (0..<config.numHiddenLayers).map { _ in backend.allocate(Float.self, count: n) }
        values = (0..<config.numHiddenLayers).map { _ in backend.allocate(Float.self, count: n) }
        keyMask = backend.allocate(UInt8.self, count: batch * capacity)
    }

    /// Forgets every position (a new conversation).
    public func reset() {
        length = 0
        backend.withHostAccess(keyMask.pointer, count: keyMask.count) { $0.update(repeating: 0) }
    }

    /// Truncates to the first `n` positions (keeps a shared prefix).
    public func truncate(to n: Int) {
        guard n < length else { return }
        backend.withHostAccess(keyMask.pointer, count: keyMask.count) { mask in
            for b in 0..<batch { (mask.baseAddress! + b * capacity + n).update(repeating: 0, count: capacity - n) }
        }
        length = n
    }

    public var bytes: Int { 2 * keys.count * batch * kvHeads * capacity * headDim * 4 }
}
