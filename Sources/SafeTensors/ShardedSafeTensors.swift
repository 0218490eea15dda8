import JSON
import QwenCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// All the tensors of a model as one map, whether they live in one safetensors file or in the
/// shards a `model.safetensors.index.json` lists. Views stay valid while the store (or the view)
/// is alive.
public final class SafeTensorsStore: @unchecked Sendable {
    /// The path it was opened from (a file or a folder).
    public let path: String
    /// The index file, when the tensors are sharded.
    public let indexPath: String?
    /// The files, in shard order.
    public let files: [SafeTensorsFile]
    /// Every tensor: shard by shard, each in data order.
    public let tensors: [TensorView]
    private let byName: [String: Int]

    /// The name transformers gives the shard index.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens a safetensors file, a shard index (`*.safetensors.index.json`), or a folder holding
    /// `model.safetensors`, else `model.safetensors.index.json` (transformers' order), else exactly
    /// one index or one `*.safetensors` file (an adapter folder, say).
    public init(path: String) throws(SafeTensorsError) {
        self.path = path
        var isDir = false
        guard fileExists(path, isDirectory: &isDir) else { throw .notFound(path: path) }
        var index: String? = nil
        var single: String? = nil
        if isDir {
            let names = try listFolder(path)
            let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }.sorted()
            let files = names.filter { $0.hasSuffix(".safetensors") }.sorted()
            // transformers' precedence: model.safetensors, then the index, then the only one there.
            if names.contains("model.safetensors") {
                single = join(path, "model.safetensors")
            } else if names.contains(Self.indexFileName) {
                index = join(path, Self.indexFileName)
            } else if indexes.count == 1 {
                index = join(path, indexes[0])
            } else if indexes.isEmpty && files.count == 1 {
                single = join(path, files[0])
            } else {
                throw .noSafetensors(folder: path)
            }
        } else if path.hasSuffix(".json") {
            index = path
        } else {
            single = path
        }
        indexPath = index
        if let single {
            files = [try SafeTensorsFile(path: single)]
        } else {
            files = try Self.openShards(index: index!)
        }
        var tensors: [TensorView] = []
        var byName: [String: Int] = [:]
        for f in files {
            for t in f.tensors {
                if let prior = byName[t.name] {
                    throw .duplicateTensor(tensor: t.name, file: f.path, otherFile: tensors[prior].file)
                }
                byName[t.name] = tensors.count
                tensors.append(t)
            }
        }
        self.tensors = tensors
        self.byName = byName
    }

    /// Tensor names, shard by shard, each in data order.
    public var names: [String] { tensors.map(\.name) }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> TensorView? { byName[name].map { tensors[$0] } }

    /// The tensor called `name`; throws `missingTensor` naming where it was looked for.
    public func tensor(_ name: String) throws(SafeTensorsError) -> TensorView {
        guard let t = self[name] else { throw .missingTensor(file: indexPath ?? files.first?.path ?? path, tensor: name) }
        return t
    }

    /// The tensor called `name`, checked to have `shape`, widened to fp32 in a new aligned buffer.
    public func floats(_ name: String, shape: [Int]) throws(SafeTensorsError) -> AlignedBuffer<Float> {
        try tensor(name).expectingShape(shape).floatBuffer()
    }

    /// Parses an index and opens its shards, checking that each holds what the index says.
    static func openShards(index: String) throws(SafeTensorsError) -> [SafeTensorsFile] {
        let mapping = try MappedFile(path: index)
        let json: JSONValue
        do {
            json = try JSONValue.parse(mapping.bytes)
        } catch {
            throw .badIndex(file: index, reason: "not valid JSON: \(error.atByte)")
        }
        guard let weightMap = json["weight_map"] else {
            throw .badIndex(file: index, reason: "no \"weight_map\" object")
        }
        guard let pairs = weightMap.objectValue else {
            throw .badIndex(file: index, reason: "\"weight_map\" is \(weightMap.kind), expected an object of tensor name → shard file")
        }
        let folder = parentFolder(of: index)
        var shardOrder: [String] = []
        var firstTensor: [String: String] = [:]
        for (tensor, value) in pairs {
            guard let shard = value.stringValue else {
                throw .badIndex(file: index, reason: "weight_map entry for '\(tensor)' is \(value.kind), expected a file name")
            }
            if shard.isEmpty || shard.hasPrefix("/") || shard.split(separator: "/").contains("..") {
                throw .badIndex(file: index, reason: "weight_map puts '\(tensor)' in \"\(shard)\", which is not a file name inside the folder")
            }
            if firstTensor[shard] == nil {
                firstTensor[shard] = tensor
                shardOrder.append(shard)
            }
        }
        // Shards in name order: model-00001-of-00003 … as the index was written.
        shardOrder.sort()
        var files: [SafeTensorsFile] = []
        for shard in shardOrder {
            let shardPath = join(folder, shard)
            var isDir = false
            guard fileExists(shardPath, isDirectory: &isDir), !isDir else {
                throw .missingShard(index: index, shard: shard, tensor: firstTensor[shard]!)
            }
            files.append(try SafeTensorsFile(path: shardPath))
        }
        let byShard = Dictionary(uniqueKeysWithValues: zip(shardOrder, files))
        for (tensor, value) in pairs {
            let shard = value.stringValue!
            if byShard[shard]?[tensor] == nil {
                throw .indexMismatch(index: index, shard: shard, tensor: tensor)
            }
        }
        return files
    }
}

// MARK: - Sharded writing

/// What a sharded write produced.
public struct ShardedWriteResult: Sendable {
    /// The safetensors files written, in order.
    public let files: [String]
    /// The index file, when there is more than one shard.
    public let indexPath: String?
    /// Bytes of tensor data over all shards (the index's `metadata.total_size`).
    public let totalSize: Int
}

extension SafeTensorsWriter {
    /// Writes `tensors` into `folder` the way transformers' `save_pretrained` does: tensors kept in
    /// the given order are packed into shards of at most `maxShardSize` bytes of data (a tensor
    /// larger than that gets a shard of its own); one shard is `<prefix>.safetensors`, several are
    /// `<prefix>-0000k-of-0000n.safetensors` plus `<prefix>.safetensors.index.json` with
    /// `metadata.total_size`, `metadata.total_parameters` and `weight_map`. Shards and files of an
    /// earlier save with the same prefix that this one does not rewrite are removed.
    @discardableResult
    public static func writeSharded(_ tensors: [TensorToWrite], toFolder folder: String, maxShardSize: Int,
                                    prefix: String = "model",
                                    metadata: [String: String]? = defaultMetadata) throws -> ShardedWriteResult {
        guard maxShardSize > 0 else {
            throw SafeTensorsError.invalidTensor(tensor: "(all)", reason: "max shard size must be positive, got \(maxShardSize)")
        }
        _ = try fileOrder(tensors)  // names and shapes checked before anything is written
        let shards = planShards(tensors.map(\.byteCount), maxShardSize: maxShardSize)
        try makeFolder(folder)
        let totalSize = tensors.reduce(0) { $0 + $1.byteCount }
        let totalParameters = tensors.reduce(0) { $0 + $1.elementCount }
        let names: [String] = shards.count == 1
            ? ["\(prefix).safetensors"]
            : (1...shards.count).map { "\(prefix)-\(pad5($0))-of-\(pad5(shards.count)).safetensors" }
        let indexName = "\(prefix).safetensors.index.json"
        try removeStaleFiles(folder: folder, prefix: prefix, keeping: Set(names + (shards.count > 1 ? [indexName] : [])))
        var written: [String] = []
        var weightMap: [(String, String)] = []
        for (k, members) in shards.enumerated() {
            let path = join(folder, names[k])
            try write(members.map { tensors[$0] }, to: path, metadata: metadata)
            written.append(path)
            weightMap += members.map { (tensors[$0].name, names[k]) }
        }
        guard shards.count > 1 else {
            return ShardedWriteResult(files: written, indexPath: nil, totalSize: totalSize)
        }
        let index = JSONValue.object([
            ("metadata", .object([("total_parameters", .int(totalParameters)), ("total_size", .int(totalSize))])),
            ("weight_map", .object(weightMap.map { ($0.0, .string($0.1)) })),
        ])
        let indexPath = join(folder, indexName)
        try AtomicFile.write(path: indexPath, bytes: Array((index.text(.python(indent: 2, sortKeys: true)) + "\n").utf8))
        return ShardedWriteResult(files: written, indexPath: indexPath, totalSize: totalSize)
    }

    /// huggingface_hub's greedy split: walk tensors in order, start a new shard when the next one
    /// would overflow the current; a tensor above the limit alone forms a shard. Returns the
    /// tensor indices of each shard (at least one shard, possibly empty when there are no tensors).
    static func planShards(_ sizes: [Int], maxShardSize: Int) -> [[Int]] {
        var shards: [[Int]] = []
        var current: [Int] = []
        var currentSize = 0
        for (i, size) in sizes.enumerated() {
            if size > maxShardSize {
                shards.append([i])
                continue
            }
            if currentSize + size > maxShardSize, !current.isEmpty {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(i)
            currentSize += size
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// `<prefix>-NNNNN-of-NNNNN.safetensors`
    static func isShardFileName(_ name: String, prefix: String) -> Bool {
        guard name.hasPrefix(prefix + "-"), name.hasSuffix(".safetensors") else { return false }
        let middle = Array(name.utf8.dropFirst(prefix.utf8.count + 1).dropLast(".safetensors".utf8.count))
        guard middle.count == 14, Array(middle[5..<9]) == Array("-of-".utf8) else { return false }
        return (middle[0..<5] + middle[9..<14]).allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    static func pad5(_ n: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, 5 - s.count)) + s
    }

    /// Removes `<prefix>.safetensors`, `<prefix>-NNNNN-of-NNNNN.safetensors` and the index
    /// left by an earlier save, unless this save writes them again.
    static func removeStaleFiles(folder: String, prefix: String, keeping: Set<String>) throws {
        for name in try listFolder(folder) where !keeping.contains(name) {
            let isShard = isShardFileName(name, prefix: prefix)
            if isShard || name == "\(prefix).safetensors" || name == "\(prefix).safetensors.index.json" {
                unlink(join(folder, name))
            }
        }
    }
}

/// Parses a size as transformers and huggingface_hub accept it: an integer number of bytes, or a
/// number with a unit — KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
public func parseByteSize(_ text: String) -> Int? {
    let s = text.filter { !$0.isWhitespace }
    if let n = Int(s) { return n >= 0 ? n : nil }
    let units: [(String, Double)] = [
        ("KIB", 1024), ("MIB", 1024 * 1024), ("GIB", 1024 * 1024 * 1024), ("TIB", 1024.0 * 1024 * 1024 * 1024),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
    ]
    let upper = s.uppercased()
    for (unit, scale) in units where upper.hasSuffix(unit) {
        guard let v = Double(upper.dropLast(unit.count)), v >= 0, v * scale < 9e18 else { return nil }
        return Int(v * scale)
    }
    return nil
}

// MARK: - File system helpers (POSIX, so errors stay ours)

func join(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
}

func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

func fileExists(_ path: String, isDirectory: inout Bool) -> Bool {
    var st = stat()
    guard stat(path, &st) == 0 else { return false }
    isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
    return true
}

func listFolder(_ path: String) throws(SafeTensorsError) -> [String] {
    guard let dir = opendir(path) else {
        throw .io(path: path, operation: "list the folder", reason: String(cString: strerror(errno)))
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func makeFolder(_ path: String) throws {
    var isDir = false
    if fileExists(path, isDirectory: &isDir) {
        if isDir { return }
        throw SafeTensorsError.io(path: path, operation: "create the output folder", reason: "a file of that name exists")
    }
    let parent = parentFolder(of: path)
    if parent != path && parent != "." && parent != "/" { try makeFolder(parent) }
    guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
        throw SafeTensorsError.io(path: path, operation: "create the output folder", reason: String(cString: strerror(errno)))
    }
}
