import QwenCore
#if canImport(Glibc)
import Glibc
#endif

/// One trainable tensor's place in the flat buffers: elements `offset ..< offset + count`.
public struct ParameterEntry: Sendable, Equatable {
    public let name: String
    public let offset: Int
    public let shape: [Int]
    public let count: Int
    /// Whether AdamW's decoupled weight decay applies (not to biases and norm weights).
    public let decay: Bool
    public var range: Range<Int> { offset ..< offset + count }
}

/// The one layout table of the trainable state: name → offset, shape, decay. Params, grads and
/// AdamW's m and v are flat buffers laid out by it, so zeroing is one fill, clipping one loop,
/// all-reduce one call and a ZeRO shard one slice.
///
/// Each entry starts on a multiple of `alignment` floats (64 bytes) so every view is aligned; the
/// gaps are zeros that stay zeros (their gradient is zero, so AdamW leaves them at zero).
public struct ParameterLayout: Sendable {
    /// Entry alignment in floats: 16 floats = 64 bytes, one cache line.
    public static let alignment = 16

    public private(set) var entries: [ParameterEntry] = []
    private var indexByName: [String: Int] = [:]
    /// End of the last entry rounded up to `alignment`: the length of an unsharded buffer.
    public private(set) var count: Int = 0

    public init() {}

    /// A layout of `specs` in order; decay from `appliesWeightDecay(name:)` unless given.
    public init(_ specs: [(name: String, shape: [Int])]) throws {
        for s in specs { try append(s.name, shape: s.shape) }
    }

    /// Appends a tensor. `decay` defaults to transformers' rule for the name.
    public mutating func append(_ name: String, shape: [Int], decay: Bool? = nil) throws {
        guard indexByName[name] == nil else { throw TrainingError.duplicateParameter(name: name) }
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw TrainingError.badParameterShape(name: name, shape: shape)
        }
        let n = shape.reduce(1, *)
        let entry = ParameterEntry(name: name, offset: count, shape: shape, count: n,
                                   decay: decay ?? Self.appliesWeightDecay(name: name))
        indexByName[name] = entries.count
        entries.append(entry)
        count = Self.roundUp(count + n, to: Self.alignment)
    }

    /// The number of trainable elements (without alignment gaps).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }

    public func entry(_ name: String) -> ParameterEntry? {
        indexByName[name].map { entries[$0] }
    }

    /// The entry for `name`, or an error naming the closest known name.
    public func require(_ name: String) throws -> ParameterEntry {
        if let e = entry(name) { return e }
        throw TrainingError.unknownParameter(name: name, suggestion: closestMatch(to: name, in: entries.map(\.name)))
    }

    /// transformers' `Trainer.get_decay_parameter_names` rule on a lower-cased parameter name:
    /// no decay when it contains "bias", "layernorm" or "rmsnorm", or has a path component "norm"
    /// or one ending in "_norm" (Qwen2: `input_layernorm`, `post_attention_layernorm`, `model.norm`).
    public static func appliesWeightDecay(name: String) -> Bool {
        let n = name.lowercased()
        if n.contains("bias") || n.contains("layernorm") || n.contains("rmsnorm") { return false }
        for part in n.split(separator: ".", omittingEmptySubsequences: false) {
            if part == "norm" || part.hasSuffix("_norm") { return false }
        }
        return true
    }

    /// The pieces of `range` covered by entries, with each entry's decay flag, in order.
    /// Alignment gaps are left out. ZeRO calls AdamW on a shard that may cut entries in two.
    public func segments(in range: Range<Int>) -> [(range: Range<Int>, decay: Bool)] {
        var out: [(range: Range<Int>, decay: Bool)] = []
        // Entries are sorted by offset: binary search for the first one ending after range.lowerBound.
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].offset + entries[mid].count <= range.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        var i = lo
        while i < entries.count, entries[i].offset < range.upperBound {
            let r = entries[i].range.clamped(to: range)
            if !r.isEmpty { out.append((r, entries[i].decay)) }
            i += 1
        }
        return out
    }

    /// The buffer length for `worldSize` equal shards: `count` rounded up to worldSize·alignment
    /// (DeepSpeed pads its flat partitions the same way, so reduce-scatter counts are equal).
    public func storageCount(worldSize: Int = 1) -> Int {
        Self.roundUp(max(count, 1), to: max(1, worldSize) * Self.alignment)
    }

    /// Rank `rank`'s slice [lo, hi) of the `storageCount(worldSize:)` buffer: equal lengths,
    /// each a multiple of `alignment`, so shards stay cache-line aligned.
    public func shardRange(rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) of \(worldSize)")
        let per = storageCount(worldSize: worldSize) / worldSize
        return rank * per ..< (rank + 1) * per
    }

    static func roundUp(_ n: Int, to m: Int) -> Int { (n + m - 1) / m * m }
}

/// The trainable parameters and their gradients, each one flat allocation of `backend`'s memory
/// laid out by `layout` (f32 master weights). AdamW's m and v live in `AdamW`, sized to the shard
/// it owns. The pass reads and writes them as device pointers (`deviceParam`, `deviceGrad`);
/// host code (initialisation, checkpoints, MPI collectives, ZeRO page release) through the host
/// views (`hostParams`, `param(_:)`…), which need host-addressable memory (the CPU backend's).
public final class TrainableState: @unchecked Sendable {
    public let layout: ParameterLayout
    /// Buffer length: `layout.storageCount(worldSize:)`.
    public let storageCount: Int
    /// The backend whose memory holds the buffers, and that zeroes the gradients.
    public let backend: any Backend
    public let params: DeviceBuffer<Float>
    public let grads: DeviceBuffer<Float>

    /// Zero-filled params and grads, padded for `worldSize` equal shards. `residentGradients`
    /// false (ZeRO-2): the gradient buffer is reserved but its pages are not touched, so only
    /// the parts being written and reduced occupy memory (see `releaseGradients`).
    /// `residentParameters` false (ZeRO-3): the same for the parameters, whose slices the ranks
    /// fill and gather themselves (`releaseParameters`).
    public init(layout: ParameterLayout, worldSize: Int = 1, residentGradients: Bool = true, residentParameters: Bool = true,
                backend: any Backend = CPUBackend()) {
        self.layout = layout
        self.backend = backend
        storageCount = layout.storageCount(worldSize: worldSize)
        params = backend.allocate(Float.self, count: storageCount, zeroed: residentParameters)
        grads = backend.allocate(Float.self, count: storageCount, zeroed: residentGradients)
        precondition(backend.hostAddress(params.pointer) != nil,
                     "TrainableState needs host-addressable memory; backend \(backend.name) has none")
        if !residentParameters {
            Self.dropPages(UnsafeMutableRawPointer(hostParams), UnsafeMutableRawPointer(hostParams + storageCount))
        }
        if !residentGradients { releaseGradients(0 ..< storageCount) }
    }

    /// The parameters as host memory (see the type's note): the same memory as `params`.
    public var hostParams: UnsafeMutablePointer<Float> { backend.hostAddress(params.pointer)! }
    /// The gradients as host memory: the same memory as `grads`.
    public var hostGrads: UnsafeMutablePointer<Float> { backend.hostAddress(grads.pointer)! }

    /// Sets grads[range] to zero and hands its whole pages back to the operating system (they
    /// read as zeros when next touched): a reduced gradient bucket stops costing memory.
    public func releaseGradients(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        let lo = UnsafeMutableRawPointer(hostGrads + range.lowerBound)
        let hi = UnsafeMutableRawPointer(hostGrads + range.upperBound)
        let first = (Int(bitPattern: lo) + page - 1) / page * page, last = Int(bitPattern: hi) / page * page
        guard first < last, let inner = UnsafeMutableRawPointer(bitPattern: first) else {
            lo.initializeMemory(as: UInt8.self, repeating: 0, count: hi - lo)
            return
        }
        lo.initializeMemory(as: UInt8.self, repeating: 0, count: first - Int(bitPattern: lo))
        inner.advanced(by: last - first).initializeMemory(as: UInt8.self, repeating: 0, count: Int(bitPattern: hi) - last)
        if madvise(inner, last - first, Int32(MADV_DONTNEED)) != 0 {
            inner.initializeMemory(as: UInt8.self, repeating: 0, count: last - first)
        }
    }

    /// ZeRO-3: hands back the whole pages inside params[range] (values outside whole pages stay
    /// as they are: they may belong to a neighbouring slice). What was there is gone until the
    /// range is gathered again; untouched pages cost no memory.
    public func releaseParameters(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        Self.dropPages(UnsafeMutableRawPointer(hostParams + range.lowerBound), UnsafeMutableRawPointer(hostParams + range.upperBound))
    }

    /// madvise(DONTNEED) on the whole pages in [lo, hi); false when there are none or it failed.
    @discardableResult
    static func dropPages(_ lo: UnsafeMutableRawPointer, _ hi: UnsafeMutableRawPointer) -> Bool {
        let page = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
        let first = (Int(bitPattern: lo) + page - 1) / page * page, last = Int(bitPattern: hi) / page * page
        guard first < last, let inner = UnsafeMutableRawPointer(bitPattern: first) else { return false }
        return madvise(inner, last - first, Int32(MADV_DONTNEED)) == 0
    }

    /// The parameter tensor `name`, flat, row-major in its shape (host view).
    public func param(_ name: String) throws -> UnsafeMutableBufferPointer<Float> {
        let e = try layout.require(name)
        return UnsafeMutableBufferPointer(start: hostParams + e.offset, count: e.count)
    }

    /// The gradient of `name`, flat, row-major in its shape (host view).
    public func grad(_ name: String) throws -> UnsafeMutableBufferPointer<Float> {
        let e = try layout.require(name)
        return UnsafeMutableBufferPointer(start: hostGrads + e.offset, count: e.count)
    }

    /// Host views by entry, for loops that resolved the entry once.
    public func param(_ e: ParameterEntry) -> UnsafeMutablePointer<Float> { hostParams + e.offset }
    public func grad(_ e: ParameterEntry) -> UnsafeMutablePointer<Float> { hostGrads + e.offset }

    /// The pass's views by entry: the backend's memory.
    public func deviceParam(_ e: ParameterEntry) -> DeviceMutablePointer<Float> { params.pointer + e.offset }
    public func deviceGrad(_ e: ParameterEntry) -> DeviceMutablePointer<Float> { grads.pointer + e.offset }

    /// Sets every gradient to zero: one fill by `backend`.
    public func zeroGrads() {
        backend.fill(grads.pointer, count: storageCount, value: 0)
    }
}
