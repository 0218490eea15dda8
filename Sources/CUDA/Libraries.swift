import CCUDA
import Foundation

/// dlopen()s the first candidate of `kind` that opens (after `prepare(candidate)`, which may
/// pre-load a dependency from the same folder). Returns the handle and the file it came from.
func openFirst(_ kind: CUDALibraryKind, search: CUDALibrarySearch, probeSymbol: String,
               prepare: (String) -> Void = { _ in }) throws -> (handle: UnsafeMutableRawPointer, path: String) {
    var tried: [String] = []
    for candidate in search.candidates(for: kind) {
        prepare(candidate)
        var err = [CChar](repeating: 0, count: 512)
        if let h = ccuda_dlopen(candidate, &err, err.count) {
            let path = ccuda_library_path(h, probeSymbol).map { String(cString: $0) } ?? candidate
            return (h, path)
        }
        tried.append(String(cString: err))
    }
    throw CUDAError.libraryNotFound(library: kind.sonames.joined(separator: " or "), tried: tried, hint: kind.hint)
}

/// The folder of a candidate given as a path ("" for a bare soname).
func folder(of candidate: String) -> String {
    candidate.contains("/") ? (candidate as NSString).deletingLastPathComponent : ""
}

// MARK: - NVRTC

/// NVRTC, opened at run time. Its builtins library is pre-loaded from the same folder: pip's
/// libnvrtc has no RPATH and would otherwise fail with "failed to open libnvrtc-builtins.so.X.Y".
public final class NVRTCLibrary: @unchecked Sendable {
    public let path: String
    public let builtinsPath: String?
    public let major: Int
    public let minor: Int
    let api: CCUDANVRTC

    public var version: String { "\(major).\(minor)" }

    public static func load(_ search: CUDALibrarySearch = CUDALibrarySearch()) throws -> NVRTCLibrary {
        var builtins: (handle: UnsafeMutableRawPointer, path: String)?
        let (handle, path) = try openFirst(.nvrtc, search: search, probeSymbol: "nvrtcVersion") { candidate in
            if builtins == nil, !candidate.isEmpty { builtins = openBuiltins(beside: candidate) }
        }
        if builtins == nil { builtins = openBuiltins(beside: path) }
        var table = CCUDANVRTC()
        var err = [CChar](repeating: 0, count: 256)
        guard ccuda_bind_nvrtc(handle, builtins?.handle, &table, &err, err.count) == 0 else {
            throw CUDAError.missingEntryPoint(library: "NVRTC", path: path, symbol: String(cString: err))
        }
        var major: Int32 = 0, minor: Int32 = 0
        _ = table.nvrtcVersion!(&major, &minor)
        return NVRTCLibrary(path: path, builtinsPath: builtins?.path, major: Int(major), minor: Int(minor), api: table)
    }

    init(path: String, builtinsPath: String?, major: Int, minor: Int, api: CCUDANVRTC) {
        self.path = path
        self.builtinsPath = builtinsPath
        self.major = major
        self.minor = minor
        self.api = api
    }

    /// Opens `libnvrtc-builtins.so.<major>.*` from the folder of `nvrtcPath` (major from its
    /// soname), skipping the `.alt.` variant; nil when there is none.
    static func openBuiltins(beside nvrtcPath: String) -> (handle: UnsafeMutableRawPointer, path: String)? {
        let dir = folder(of: nvrtcPath)
        guard !dir.isEmpty, let major = nvrtcPath.split(separator: ".").last, Int(major) != nil else { return nil }
        for path in globPaths(dir + "/libnvrtc-builtins.so.\(major).*").reversed() where !path.contains(".alt.") {
            var err = [CChar](repeating: 0, count: 256)
            if let h = ccuda_dlopen(path, &err, err.count) { return (h, path) }
        }
        return nil
    }
}

// MARK: - cuBLAS

/// cuBLAS and cuBLASLt, opened at run time. cuBLASLt is pre-loaded from cuBLAS's folder (cuBLAS
/// links it by soname).
public final class CUBLASLibrary: @unchecked Sendable {
    public let path: String
    public let ltPath: String?
    /// "major.minor.patch" from cublasGetProperty.
    public let version: String
    let api: CCUDABLAS

    public static func load(_ search: CUDALibrarySearch = CUDALibrarySearch()) throws -> CUBLASLibrary {
        var lt: (handle: UnsafeMutableRawPointer, path: String)?
        let (handle, path) = try openFirst(.cublas, search: search, probeSymbol: "cublasCreate_v2") { candidate in
            guard lt == nil else { return }
            let soname = (candidate as NSString).lastPathComponent.replacingOccurrences(of: "libcublas.", with: "libcublasLt.")
            let dir = folder(of: candidate)
            var err = [CChar](repeating: 0, count: 256)
            if let h = ccuda_dlopen(dir.isEmpty ? soname : dir + "/" + soname, &err, err.count) {
                lt = (h, ccuda_library_path(h, "cublasLtCreate").map { String(cString: $0) } ?? soname)
            }
        }
        var table = CCUDABLAS()
        var err = [CChar](repeating: 0, count: 256)
        guard ccuda_bind_cublas(handle, lt?.handle, &table, &err, err.count) == 0 else {
            throw CUDAError.missingEntryPoint(library: "cuBLAS", path: path, symbol: String(cString: err))
        }
        var parts: [Int32] = [0, 0, 0]
        for i in 0..<3 { _ = table.cublasGetProperty!(Int32(i), &parts[i]) }
        return CUBLASLibrary(path: path, ltPath: lt?.path, version: parts.map(String.init).joined(separator: "."), api: table)
    }

    init(path: String, ltPath: String?, version: String, api: CCUDABLAS) {
        self.path = path
        self.ltPath = ltPath
        self.version = version
        self.api = api
    }
}
