import CCUDA
import Foundation

/// Everything the CUDA backend needs on one GPU: the driver, NVRTC, cuBLAS, the device's primary
/// context and the kernel cache. Opening it is the one place where a missing piece becomes an
/// error, naming the first thing missing and how to get it (driver, GPU, NVRTC, cuBLAS, in that
/// order). The CPU path never calls this.
public final class CUDARuntime: @unchecked Sendable {
    public let driver: CUDADriver
    public let nvrtc: NVRTCLibrary
    public let cublas: CUBLASLibrary
    public let context: CUDAContext
    public let cache: CUDAKernelCache

    public var device: CUDADeviceInfo { context.device }

    public static func open(ordinal: Int, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CUDARuntime {
        let search = CUDALibrarySearch(environment: environment)
        let driver = try CUDADriver.load(search)
        let count = try driver.deviceCount()
        guard count > 0 else { throw CUDAError.noDevice(reason: "the driver at \(driver.path) lists no GPU") }
        guard ordinal < count else { throw CUDAError.deviceOutOfRange(ordinal: ordinal, count: count) }
        let nvrtc = try NVRTCLibrary.load(search)
        let cublas = try CUBLASLibrary.load(search)
        let context = try CUDAContext(driver: driver, ordinal: ordinal)
        return CUDARuntime(driver: driver, nvrtc: nvrtc, cublas: cublas, context: context,
                           cache: CUDAKernelCache(environment: environment))
    }

    init(driver: CUDADriver, nvrtc: NVRTCLibrary, cublas: CUBLASLibrary, context: CUDAContext, cache: CUDAKernelCache) {
        self.driver = driver
        self.nvrtc = nvrtc
        self.cublas = cublas
        self.context = context
        self.cache = cache
    }

    /// Every kernel module compiled (or read from the cache) for this device's arch and loaded.
    public func loadKernels() throws -> CUDAKernelSet {
        var modules: [CUDAModule] = []
        var functions: [String: CUfunctionHandle] = [:]
        for m in CUDAKernels.modules {
            let entry = try cache.cubin(for: m, arch: device.arch, nvrtc: nvrtc)
            let module = try context.loadModule(cubin: entry.cubin, name: m.name)
            for f in m.functions { functions[f] = CUfunctionHandle(function: try module.function(f)) }
            modules.append(module)
        }
        return CUDAKernelSet(modules: modules, functions: functions)
    }
}

/// A kernel function of a loaded module.
public struct CUfunctionHandle: @unchecked Sendable {
    public let function: CUfunction
}

/// The loaded kernel modules of one context, looked up by kernel name.
public final class CUDAKernelSet: @unchecked Sendable {
    public let modules: [CUDAModule]
    let functions: [String: CUfunctionHandle]

    init(modules: [CUDAModule], functions: [String: CUfunctionHandle]) {
        self.modules = modules
        self.functions = functions
    }

    public func function(_ name: String) throws -> CUfunction {
        guard let f = functions[name] else {
            throw CUDAError.kernelMissing(module: "(any)", function: name, arch: modules.first?.context.device.arch ?? "?")
        }
        return f.function
    }
}
