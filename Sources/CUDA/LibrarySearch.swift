import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The CUDA libraries qwenft opens at run time, each with its sonames (newest first) and what to
/// install when it is missing.
public enum CUDALibraryKind: String, CaseIterable, Sendable {
    case driver = "libcuda"
    case nvrtc = "libnvrtc"
    case cublas = "libcublas"
    case cublasLt = "libcublasLt"

    public var sonames: [String] {
        switch self {
        case .driver: ["libcuda.so.1"]
        case .nvrtc: ["libnvrtc.so.13", "libnvrtc.so.12"]
        case .cublas: ["libcublas.so.13", "libcublas.so.12"]
        case .cublasLt: ["libcublasLt.so.13", "libcublasLt.so.12"]
        }
    }

    /// What a user does to get the library.
    public var hint: String {
        switch self {
        case .driver:
            "libcuda.so.1 comes with the NVIDIA driver (it is not in any pip wheel): install the driver "
                + "(nvidia-smi must work), or use --device cpu"
        case .nvrtc:
            "Install it with `pip install nvidia-cuda-nvrtc` (CUDA 13) or `pip install nvidia-cuda-nvrtc-cu12` "
                + "(CUDA 12; needed for sm_70 GPUs), or point QWENFT_CUDA_LIBDIR at the folder holding libnvrtc.so.*"
        case .cublas, .cublasLt:
            "Install it with `pip install nvidia-cublas` (CUDA 13) or `pip install nvidia-cublas-cu12` (CUDA 12), "
                + "or point QWENFT_CUDA_LIBDIR at the folder holding libcublas.so.*; a PyTorch install with CUDA has it"
        }
    }
}

/// Where the CUDA libraries are looked for, in this order:
/// 1. each folder of `QWENFT_CUDA_LIBDIR` (colon-separated), newest soname first in each;
/// 2. the bare sonames, which the dynamic loader resolves through LD_LIBRARY_PATH and its cache;
/// 3. the `nvidia/*/lib` folders of Python site-packages that pip's CUDA wheels (PyTorch's
///    dependencies) install into: the active venv or conda env, venvs on PATH, ~/.local,
///    /usr/local, /opt/*/.venv, /opt/conda, ./.venv.
public struct CUDALibrarySearch: Sendable, Equatable {
    /// Folders from QWENFT_CUDA_LIBDIR.
    public var libraryDirs: [String]
    /// `nvidia/*/lib` folders of the site-packages found on this machine.
    public var wheelLibraryDirs: [String]
    /// Whether the bare sonames are tried (the dynamic loader's own search); tests turn it off to
    /// see only their folders.
    public var includeSonames = true

    public init(libraryDirs: [String], wheelLibraryDirs: [String], includeSonames: Bool = true) {
        self.libraryDirs = libraryDirs
        self.wheelLibraryDirs = wheelLibraryDirs
        self.includeSonames = includeSonames
    }

    /// The search this process's environment describes. `systemPatterns` are the glob patterns
    /// of site-packages outside the environment variables (tests pass their own).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                systemPatterns: [String] = CUDALibrarySearch.systemSitePackagePatterns) {
        libraryDirs = (environment["QWENFT_CUDA_LIBDIR"] ?? "").split(separator: ":").map(String.init)
        let sitePackages = CUDALibrarySearch.sitePackagePatterns(environment: environment) + systemPatterns
        var seen = Set<String>(), dirs: [String] = []
        for pattern in sitePackages {
            for site in globPaths(pattern) {
                for lib in globPaths(site + "/nvidia/*/lib") {
                    let key = URL(fileURLWithPath: lib).resolvingSymlinksInPath().path
                    if seen.insert(key).inserted { dirs.append(lib) }
                }
            }
        }
        wheelLibraryDirs = dirs
    }

    /// Site-packages locations named by the environment: the active venv/conda env, venvs whose
    /// bin folder is on PATH, the user's ~/.local.
    static func sitePackagePatterns(environment: [String: String]) -> [String] {
        var patterns: [String] = []
        for key in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
            if let root = environment[key], !root.isEmpty { patterns.append(root + "/lib/python3*/site-packages") }
        }
        for dir in (environment["PATH"] ?? "").split(separator: ":") where dir.hasSuffix("/bin") {
            patterns.append(String(dir.dropLast(4)) + "/lib/python3*/site-packages")
        }
        if let home = environment["HOME"], !home.isEmpty {
            patterns.append(home + "/.local/lib/python3*/site-packages")
        }
        return patterns
    }

    /// Site-packages in the usual places outside any environment variable.
    public static let systemSitePackagePatterns = [
        "/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
        "/usr/lib/python3/dist-packages", "/opt/*/.venv/lib/python3*/site-packages",
        "/opt/*/venv/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages",
        "/opt/*/lib/python3*/site-packages", ".venv/lib/python3*/site-packages",
    ]

    /// What to hand to dlopen, in order: absolute paths of files that exist in the folders, and
    /// the bare sonames between QWENFT_CUDA_LIBDIR and the wheel folders.
    public func candidates(for kind: CUDALibraryKind) -> [String] {
        var out: [String] = []
        func addExisting(in dirs: [String]) {
            for dir in dirs {
                for soname in kind.sonames {
                    let path = dir.hasSuffix("/") ? dir + soname : dir + "/" + soname
                    if FileManager.default.fileExists(atPath: path) { out.append(path) }
                }
            }
        }
        addExisting(in: libraryDirs)
        if includeSonames { out.append(contentsOf: kind.sonames) }
        // The driver is never in a wheel; WSL keeps it outside the loader's default folders.
        addExisting(in: kind == .driver ? ["/usr/lib/wsl/lib"] : wheelLibraryDirs)
        return out
    }
}

/// The paths matching a shell glob pattern, sorted (none when nothing matches).
func globPaths(_ pattern: String) -> [String] {
    var g = glob_t()
    defer { globfree(&g) }
    guard glob(pattern, 0, nil, &g) == 0 else { return [] }
    var out: [String] = []
    for i in 0..<Int(g.gl_pathc) {
        if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
    }
    return out
}
