/// What can go wrong finding, loading or using the CUDA libraries. Every case says what is
/// missing and what to do; none of them is a crash.
public enum CUDAError: Error, CustomStringConvertible, Equatable {
    /// No candidate of a library could be opened. `tried` lists each path or soname with dlopen's answer.
    case libraryNotFound(library: String, tried: [String], hint: String)
    /// A library opened but lacks an entry point this program needs (too old a version).
    case missingEntryPoint(library: String, path: String, symbol: String)
    /// A driver call failed.
    case driver(call: String, code: Int32, name: String, message: String)
    /// The driver loaded but sees no GPU.
    case noDevice(reason: String)
    /// `cuda:N` with N not below the device count.
    case deviceOutOfRange(ordinal: Int, count: Int)
    /// An NVRTC call other than compilation failed.
    case nvrtc(call: String, code: Int32, message: String)
    /// A kernel module did not compile; `log` is NVRTC's.
    case compileFailed(module: String, arch: String, log: String)
    /// A compiled module lacks a kernel the backend launches.
    case kernelMissing(module: String, function: String, arch: String)
    /// An architecture string that is not `sm_XY`.
    case badArchitecture(String)
    /// The kernel cache folder could not be written (the compiled code is still used).
    case cacheUnwritable(path: String, reason: String)
    /// A cuBLAS call failed.
    case cublas(call: String, status: Int32)

    public var description: String {
        switch self {
        case let .libraryNotFound(library, tried, hint):
            let list = tried.isEmpty ? "" : "; tried: " + tried.joined(separator: "; ")
            return "CUDA: \(library) not found\(list). \(hint)"
        case let .missingEntryPoint(library, path, symbol):
            return "CUDA: \(library) at \(path) has no \(symbol); it is too old for qwenft (needs CUDA 12 or newer)"
        case let .driver(call, code, name, message):
            return "CUDA driver: \(call) failed with \(name) (\(code)): \(message)"
        case let .noDevice(reason):
            return "CUDA: no usable GPU: \(reason). Use --device cpu, or run on a machine with an NVIDIA GPU and its driver"
        case let .deviceOutOfRange(ordinal, count):
            return "CUDA: device cuda:\(ordinal) does not exist (this machine has \(count) GPU\(count == 1 ? "" : "s"): cuda:0…cuda:\(max(0, count - 1)))"
        case let .nvrtc(call, code, message):
            return "NVRTC: \(call) failed (\(code)): \(message)"
        case let .compileFailed(module, arch, log):
            return "NVRTC: kernel module \(module) did not compile for \(arch):\n\(log)"
        case let .kernelMissing(module, function, arch):
            return "CUDA: kernel \(function) is missing from module \(module) compiled for \(arch)"
        case let .badArchitecture(arch):
            return "CUDA: '\(arch)' is not a GPU architecture; write it as sm_XY, e.g. sm_90 (H100/H200), sm_80 (A100), sm_70 (V100)"
        case let .cacheUnwritable(path, reason):
            return "CUDA: cannot write the kernel cache \(path): \(reason); set QWENFT_CUDA_CACHE to a writable folder"
        case let .cublas(call, status):
            return "cuBLAS: \(call) failed with status \(status)"
        }
    }
}
