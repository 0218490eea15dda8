import JSON
import QwenCore

/// Everything that can go wrong reading or writing safetensors files. Each description names
/// the file (and the tensor, where there is one) and says what to do.
public enum SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// The path does not exist.
    case notFound(path: String)
    /// open/stat/mmap/write/rename failed.
    case io(path: String, operation: String, reason: String)
    /// Shorter than the 8-byte header length, or the header length is 0.
    case truncated(file: String, size: Int)
    /// The header length exceeds the format's limit of 100 MB.
    case headerTooLarge(file: String, length: UInt64)
    /// The header length points past the end of the file.
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    /// The header is not valid JSON.
    case badJSON(file: String, detail: String)
    /// The header is JSON but not a safetensors header (wrong types, missing fields).
    case badHeader(file: String, tensor: String?, reason: String)
    /// A dtype name this reader does not know.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// shape × dtype size differs from the tensor's byte range.
    case sizeMismatch(file: String, tensor: String, dtype: DType, shape: [Int], expectedBytes: Int, rangeBytes: Int)
    /// A byte range reaches past the data buffer.
    case rangeOutsideBuffer(file: String, tensor: String, range: Range<Int>, bufferSize: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingRanges(file: String, tensor: String, other: String)
    /// The tensors leave bytes of the data buffer unaccounted for (a gap or trailing bytes).
    case uncoveredBytes(file: String, range: Range<Int>, bufferSize: Int)
    /// `__metadata__` is not an object of strings.
    case badMetadata(file: String, key: String?, reason: String)
    /// A tensor that was asked for is absent.
    case missingTensor(file: String, tensor: String)
    /// A tensor has another shape than the model expects.
    case shapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    /// A tensor's values were asked for as Float but its dtype is not a float type.
    case notFloat(file: String, tensor: String, dtype: DType)
    /// A shard index is malformed.
    case badIndex(file: String, reason: String)
    /// A shard index names a shard file that is not there.
    case missingShard(index: String, shard: String, tensor: String)
    /// A shard index maps a tensor to a shard that does not hold it.
    case indexMismatch(index: String, shard: String, tensor: String)
    /// The same tensor name occurs in two shards.
    case duplicateTensor(tensor: String, file: String, otherFile: String)
    /// A folder holds no safetensors file we know how to read.
    case noSafetensors(folder: String)
    /// A model folder's config.json is unreadable.
    case badConfig(file: String, reason: String)
    /// A tensor handed to the writer is inconsistent (bytes vs shape × dtype, bad name).
    case invalidTensor(tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path): no such file or folder"
        case let .io(path, op, reason):
            return "\(path): cannot \(op): \(reason)"
        case let .truncated(file, size):
            return "\(file): truncated safetensors file (\(size) bytes; a valid file starts with an 8-byte header length and a JSON header); re-download or re-export it"
        case let .headerTooLarge(file, length):
            return "\(file): safetensors header length \(length) exceeds the 100 MB limit; the file is corrupt or not a safetensors file"
        case let .headerPastEnd(file, length, size):
            return "\(file): safetensors header length \(length) reaches past the end of the \(size)-byte file; the file is truncated or not a safetensors file"
        case let .badJSON(file, detail):
            return "\(file): safetensors header is not valid JSON: \(detail)"
        case let .badHeader(file, tensor, reason):
            if let tensor { return "\(file): tensor '\(tensor)': \(reason)" }
            return "\(file): bad safetensors header: \(reason)"
        case let .unknownDType(file, tensor, dtype):
            let known = DType.allCases.map(\.safetensorsName).joined(separator: ", ")
            return "\(file): tensor '\(tensor)' has unknown dtype \"\(dtype)\" (supported: \(known))"
        case let .sizeMismatch(file, tensor, dtype, shape, expected, got):
            return "\(file): tensor '\(tensor)': shape \(shape) of \(dtype) needs \(expected) bytes but data_offsets span \(got); the header is corrupt"
        case let .rangeOutsideBuffer(file, tensor, range, size):
            return "\(file): tensor '\(tensor)': data_offsets [\(range.lowerBound), \(range.upperBound)] reach past the \(size)-byte data buffer; the file is truncated or corrupt"
        case let .overlappingRanges(file, tensor, other):
            return "\(file): tensors '\(other)' and '\(tensor)' have overlapping data_offsets; the header is corrupt"
        case let .uncoveredBytes(file, range, size):
            return "\(file): bytes \(range.lowerBound)..<\(range.upperBound) of the \(size)-byte data buffer belong to no tensor; the header is corrupt"
        case let .badMetadata(file, key, reason):
            if let key { return "\(file): __metadata__ key '\(key)': \(reason)" }
            return "\(file): __metadata__: \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .shapeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has shape \(actual) but the model expects \(expected); check that config.json matches the weights"
        case let .notFloat(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has dtype \(dtype); expected F32, BF16, F16 or F64"
        case let .badIndex(file, reason):
            return "\(file): bad shard index: \(reason)"
        case let .missingShard(index, shard, tensor):
            return "\(index): shard '\(shard)' (holding tensor '\(tensor)') is missing; copy every shard the index names into the folder"
        case let .indexMismatch(index, shard, tensor):
            return "\(index): weight_map puts tensor '\(tensor)' in '\(shard)', which does not hold it"
        case let .duplicateTensor(tensor, file, other):
            return "tensor '\(tensor)' is in both \(other) and \(file); a model's shards must not repeat tensors"
        case let .noSafetensors(folder):
            return "\(folder): no model.safetensors, model.safetensors.index.json or single *.safetensors file in this folder; qwenft reads safetensors only (re-save a PyTorch .bin checkpoint with transformers' save_pretrained)"
        case let .badConfig(file, reason):
            return "\(file): \(reason)"
        case let .invalidTensor(tensor, reason):
            return "tensor '\(tensor)': \(reason)"
        }
    }
}

extension JSONError {
    /// "reason at byte N": where SafeTensors' messages place a JSON syntax error.
    var atByte: String { "\(reason) at byte \(offset)" }
}
