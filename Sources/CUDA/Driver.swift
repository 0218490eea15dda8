@_exported import CCUDA
import Foundation

/// One GPU as the driver describes it.
public struct CUDADeviceInfo: Sendable, Equatable {
    public var ordinal: Int
    public var name: String
    public var computeCapability: (major: Int, minor: Int)
    public var totalMemory: Int
    public var multiprocessors: Int

    /// The architecture NVRTC compiles for: "sm_90" for compute capability 9.0.
    public var arch: String { "sm_\(computeCapability.major)\(computeCapability.minor)" }
    /// bf16 arithmetic needs sm_80 (A100) or newer; V100 (sm_70) and T4 (sm_75) train in fp16.
    public var supportsBF16: Bool { computeCapability.major >= 8 }

    public static func == (a: Self, b: Self) -> Bool {
        a.ordinal == b.ordinal && a.name == b.name && a.computeCapability == b.computeCapability
            && a.totalMemory == b.totalMemory && a.multiprocessors == b.multiprocessors
    }
}

/// The CUDA driver (libcuda.so.1), opened and initialised at run time.
public final class CUDADriver: @unchecked Sendable {
    public let path: String
    /// cuDriverGetVersion: 13000 for CUDA 13.0.
    public let version: Int
    let api: CCUDADriver

    public var versionString: String { "\(version / 1000).\(version % 1000 / 10)" }

    /// Opens libcuda and calls cuInit. Throws `libraryNotFound` with no driver installed, and
    /// `noDevice` when the driver sees no GPU.
    public static func load(_ search: CUDALibrarySearch = CUDALibrarySearch()) throws -> CUDADriver {
        let (handle, path) = try openFirst(.driver, search: search, probeSymbol: "cuInit")
        var table = CCUDADriver()
        var err = [CChar](repeating: 0, count: 256)
        guard ccuda_bind_driver(handle, &table, &err, err.count) == 0 else {
            throw CUDAError.missingEntryPoint(library: "the CUDA driver", path: path, symbol: String(cString: err))
        }
        var version: Int32 = 0
        _ = table.cuDriverGetVersion!(&version)
        let driver = CUDADriver(path: path, version: Int(version), api: table)
        let status = table.cuInit!(0)
        if status == 100 {  // CUDA_ERROR_NO_DEVICE
            throw CUDAError.noDevice(reason: "the driver at \(path) (CUDA \(driver.versionString)) finds no GPU")
        }
        try driver.check(status, "cuInit")
        return driver
    }

    init(path: String, version: Int, api: CCUDADriver) {
        self.path = path
        self.version = version
        self.api = api
    }

    /// Throws `CUDAError.driver` unless `status` is CUDA_SUCCESS.
    func check(_ status: CUresult, _ call: String) throws {
        guard status != 0 else { return }
        var namePointer: UnsafePointer<CChar>?
        var textPointer: UnsafePointer<CChar>?
        _ = api.cuGetErrorName!(status, &namePointer)
        _ = api.cuGetErrorString!(status, &textPointer)
        throw CUDAError.driver(call: call, code: status,
                               name: namePointer.map { String(cString: $0) } ?? "CUDA error",
                               message: textPointer.map { String(cString: $0) } ?? "no description")
    }

    public func deviceCount() throws -> Int {
        var n: Int32 = 0
        try check(api.cuDeviceGetCount!(&n), "cuDeviceGetCount")
        return Int(n)
    }

    public func device(_ ordinal: Int) throws -> CUDADeviceInfo {
        let count = try deviceCount()
        guard ordinal >= 0, ordinal < count else { throw CUDAError.deviceOutOfRange(ordinal: ordinal, count: count) }
        var dev: CUdevice = 0
        try check(api.cuDeviceGet!(&dev, Int32(ordinal)), "cuDeviceGet")
        var name = [CChar](repeating: 0, count: 256)
        try check(api.cuDeviceGetName!(&name, Int32(name.count), dev), "cuDeviceGetName")
        func attribute(_ a: Int32) throws -> Int {
            var v: Int32 = 0
            try check(api.cuDeviceGetAttribute!(&v, a, dev), "cuDeviceGetAttribute(\(a))")
            return Int(v)
        }
        var bytes = 0
        try check(api.cuDeviceTotalMem!(&bytes, dev), "cuDeviceTotalMem")
        return CUDADeviceInfo(ordinal: ordinal, name: String(cString: name),
                              computeCapability: (try attribute(CCUDA_ATTR_COMPUTE_CAPABILITY_MAJOR),
                                                  try attribute(CCUDA_ATTR_COMPUTE_CAPABILITY_MINOR)),
                              totalMemory: bytes, multiprocessors: try attribute(CCUDA_ATTR_MULTIPROCESSOR_COUNT))
    }

    public func devices() throws -> [CUDADeviceInfo] {
        try (0..<deviceCount()).map { try device($0) }
    }
}

/// A scalar or device pointer passed to a kernel, in the order of its parameters.
public enum KernelArgument: Sendable {
    case pointer(CUdeviceptr)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}

/// The primary context of one GPU, current on the calling thread: device memory, modules and
/// kernel launches. Released when the last reference goes.
public final class CUDAContext: @unchecked Sendable {
    public let driver: CUDADriver
    public let device: CUDADeviceInfo
    let handle: CUdevice
    let context: CUcontext

    public init(driver: CUDADriver, ordinal: Int) throws {
        self.driver = driver
        device = try driver.device(ordinal)
        var dev: CUdevice = 0
        try driver.check(driver.api.cuDeviceGet!(&dev, Int32(ordinal)), "cuDeviceGet")
        handle = dev
        var ctx: CUcontext?
        try driver.check(driver.api.cuDevicePrimaryCtxRetain!(&ctx, dev), "cuDevicePrimaryCtxRetain")
        guard let ctx else { throw CUDAError.noDevice(reason: "cuDevicePrimaryCtxRetain returned no context") }
        context = ctx
        try makeCurrent()
    }

    deinit { _ = driver.api.cuDevicePrimaryCtxRelease!(handle) }

    /// Binds the context to the calling thread (each thread that launches work must do this once).
    public func makeCurrent() throws {
        try driver.check(driver.api.cuCtxSetCurrent!(context), "cuCtxSetCurrent")
    }

    public func memoryInfo() throws -> (free: Int, total: Int) {
        var free = 0, total = 0
        try driver.check(driver.api.cuMemGetInfo!(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    public func allocate(bytes: Int) throws -> CUdeviceptr {
        var p: CUdeviceptr = 0
        try driver.check(driver.api.cuMemAlloc!(&p, max(bytes, 1)), "cuMemAlloc(\(bytes) bytes)")
        return p
    }

    public func free(_ pointer: CUdeviceptr) {
        if pointer != 0 { _ = driver.api.cuMemFree!(pointer) }
    }

    public func copy(toDevice dst: CUdeviceptr, from src: UnsafeRawPointer, bytes: Int) throws {
        try driver.check(driver.api.cuMemcpyHtoD!(dst, src, bytes), "cuMemcpyHtoD")
    }

    public func copy(toHost dst: UnsafeMutableRawPointer, from src: CUdeviceptr, bytes: Int) throws {
        try driver.check(driver.api.cuMemcpyDtoH!(dst, src, bytes), "cuMemcpyDtoH")
    }

    public func copy(device dst: CUdeviceptr, from src: CUdeviceptr, bytes: Int) throws {
        try driver.check(driver.api.cuMemcpyDtoD!(dst, src, bytes), "cuMemcpyDtoD")
    }

    /// Sets `count` 32-bit words at `dst` to `value` (0 for zeroing any buffer of whole words).
    public func fill32(_ dst: CUdeviceptr, value: UInt32, count: Int) throws {
        try driver.check(driver.api.cuMemsetD32!(dst, value, count), "cuMemsetD32")
    }

    public func synchronize() throws {
        try driver.check(driver.api.cuCtxSynchronize!(), "cuCtxSynchronize")
    }

    /// Loads a CUBIN compiled for this device's arch.
    public func loadModule(cubin: [UInt8], name: String) throws -> CUDAModule {
        var module: CUmodule?
        try cubin.withUnsafeBytes { raw in
            try driver.check(driver.api.cuModuleLoadData!(&module, raw.baseAddress), "cuModuleLoadData(\(name))")
        }
        guard let module else { throw CUDAError.kernelMissing(module: name, function: "(module)", arch: device.arch) }
        return CUDAModule(context: self, module: module, name: name)
    }

    /// Launches `function` on the default stream (asynchronously; errors of the kernel itself show
    /// at the next synchronising call).
    public func launch(_ function: CUfunction, grid: (Int, Int, Int), block: (Int, Int, Int),
                       sharedBytes: Int = 0, arguments: [KernelArgument], name: String) throws {
        // Every argument in its own 8-byte slot; the driver reads each at the size the kernel declares.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: max(1, arguments.count) * 8, alignment: 8)
        defer { slots.deallocate() }
        var pointers: [UnsafeMutableRawPointer?] = []
        for (i, a) in arguments.enumerated() {
            let slot = slots + i * 8
            switch a {
            case let .pointer(p): slot.storeBytes(of: p, as: CUdeviceptr.self)
            case let .int32(v): slot.storeBytes(of: v, as: Int32.self)
            case let .int64(v): slot.storeBytes(of: v, as: Int64.self)
            case let .float(v): slot.storeBytes(of: v, as: Float.self)
            }
            pointers.append(slot)
        }
        try pointers.withUnsafeMutableBufferPointer { params in
            try driver.check(driver.api.cuLaunchKernel!(function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                                        UInt32(block.0), UInt32(block.1), UInt32(block.2),
                                                        UInt32(sharedBytes), nil, params.baseAddress, nil),
                             "cuLaunchKernel(\(name))")
        }
    }
}

/// A loaded module; its functions stay valid while it lives.
public final class CUDAModule: @unchecked Sendable {
    public let context: CUDAContext
    public let name: String
    let module: CUmodule

    init(context: CUDAContext, module: CUmodule, name: String) {
        self.context = context
        self.module = module
        self.name = name
    }

    deinit { _ = context.driver.api.cuModuleUnload!(module) }

    public func function(_ functionName: String) throws -> CUfunction {
        var f: CUfunction?
        let status = context.driver.api.cuModuleGetFunction!(&f, module, functionName)
        guard status == 0, let f else {
            throw CUDAError.kernelMissing(module: name, function: functionName, arch: context.device.arch)
        }
        return f
    }
}
