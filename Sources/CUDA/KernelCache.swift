import Foundation

/// Compiled kernel modules on disk, so NVRTC runs once per module, arch and NVRTC version.
/// A file is named `<module>-<arch>-nvrtc<version>-<hash>.cubin`, the hash (FNV-1a, 64 bits) over
/// the source and the compile options, so an edited kernel or a new option never reads a stale
/// CUBIN. Folder: QWENFT_CUDA_CACHE, else $XDG_CACHE_HOME/qwenft/cuda, else ~/.cache/qwenft/cuda.
public struct CUDAKernelCache: Sendable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let dir = environment["QWENFT_CUDA_CACHE"], !dir.isEmpty {
            directory = URL(fileURLWithPath: dir)
        } else if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty {
            directory = URL(fileURLWithPath: xdg).appendingPathComponent("qwenft/cuda")
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSTemporaryDirectory()
            directory = URL(fileURLWithPath: home).appendingPathComponent(".cache/qwenft/cuda")
        }
    }

    /// The cache file of `module` compiled for `arch` by `nvrtcVersion`.
    public func file(for module: CUDAKernelModule, arch: String, nvrtcVersion: String) -> URL {
        let key = (module.source + "\u{0}" + NVRTCLibrary.options(arch: arch).joined(separator: " ")).utf8
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        let stem = module.name.replacingOccurrences(of: ".cu", with: "")
        return directory.appendingPathComponent("\(stem)-\(arch)-nvrtc\(nvrtcVersion)-\(String(repeating: "0", count: 16 - hex.count))\(hex).cubin")
    }

    /// What `cubin(for:…)` did.
    public struct Entry: Sendable {
        public var cubin: [UInt8]
        /// True when read from disk, false when NVRTC compiled it now.
        public var fromCache: Bool
        /// NVRTC's warnings (empty when read from disk or clean).
        public var log: String
        /// Why the compiled module could not be saved (it is still returned), or nil.
        public var saveError: String?
    }

    /// The CUBIN of `module` for `arch`: from disk when present and an ELF image, else compiled
    /// by `nvrtc` and saved (atomically: a temporary file renamed into place).
    public func cubin(for module: CUDAKernelModule, arch: String, nvrtc: NVRTCLibrary) throws -> Entry {
        let url = file(for: module, arch: arch, nvrtcVersion: nvrtc.version)
        if let data = try? Data(contentsOf: url), data.starts(with: [0x7F, 0x45, 0x4C, 0x46]) {
            return Entry(cubin: [UInt8](data), fromCache: true, log: "", saveError: nil)
        }
        let (cubin, log) = try nvrtc.compile(source: module.source, name: module.name, arch: arch)
        var saveError: String?
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let tmp = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
            try Data(cubin).write(to: tmp)
            if rename(tmp.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: tmp)
                throw CUDAError.cacheUnwritable(path: url.path, reason: reason)
            }
        } catch {
            saveError = "\(error)"
        }
        return Entry(cubin: cubin, fromCache: false, log: log, saveError: saveError)
    }
}

/// One line of `qwenft env --compile-kernels`: a module compiled (or not) for an arch.
public struct KernelCompileResult: Sendable {
    public var module: String
    public var functions: [String]
    public var cubinBytes: Int
    /// nil when it compiled and holds every function; else NVRTC's log or what is missing.
    public var failure: String?
    public var warnings: String
}

extension CUDAKernels {
    /// Compiles every module for `arch` (no GPU needed), without the disk cache: a fresh NVRTC
    /// run per module. Never stops at the first failure.
    public static func compileAll(arch: String, nvrtc: NVRTCLibrary) throws -> [KernelCompileResult] {
        try NVRTCLibrary.validate(arch: arch)
        return modules.map { module in
            do {
                let (cubin, log) = try nvrtc.compile(source: module.source, name: module.name, arch: arch)
                let missing = module.functions.filter { !image(cubin, defines: $0) }
                return KernelCompileResult(module: module.name, functions: module.functions, cubinBytes: cubin.count,
                                           failure: missing.isEmpty ? nil : "CUBIN lacks " + missing.joined(separator: ", "),
                                           warnings: log)
            } catch let CUDAError.compileFailed(_, _, log) {
                return KernelCompileResult(module: module.name, functions: module.functions, cubinBytes: 0,
                                           failure: log, warnings: "")
            } catch {
                return KernelCompileResult(module: module.name, functions: module.functions, cubinBytes: 0,
                                           failure: "\(error)", warnings: "")
            }
        }
    }
}
