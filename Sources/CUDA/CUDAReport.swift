import Foundation

/// What `qwenft env` says about CUDA on this machine: each library found (path, version) or why
/// not, and each GPU. Gathering never throws: every failure becomes a line.
public struct CUDAReport: Sendable {
    public var lines: [(label: String, value: String)] = []
    public var driver: CUDADriver?
    public var nvrtc: NVRTCLibrary?
    public var cublas: CUBLASLibrary?
    public var devices: [CUDADeviceInfo] = []

    public static func gather(environment: [String: String] = ProcessInfo.processInfo.environment) -> CUDAReport {
        let search = CUDALibrarySearch(environment: environment)
        var r = CUDAReport()
        let libdir = environment["QWENFT_CUDA_LIBDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "(unset)"
        let wheels = search.wheelLibraryDirs.isEmpty ? "none found" : search.wheelLibraryDirs.joined(separator: ", ")
        r.lines.append(("CUDA search", "QWENFT_CUDA_LIBDIR \(libdir), then the loader's path "
                                     + "(LD_LIBRARY_PATH \(environment["LD_LIBRARY_PATH"] ?? "(unset)")), then pip wheel folders: \(wheels)"))
        do {
            let driver = try CUDADriver.load(search)
            r.driver = driver
            r.lines.append(("CUDA driver", "CUDA \(driver.versionString) at \(driver.path)"))
            r.devices = try driver.devices()
            if r.devices.isEmpty { r.lines.append(("GPUs", "none (the driver lists no device)")) }
            for d in r.devices {
                let gib = Double(d.totalMemory) / Double(1 << 30)
                r.lines.append(("GPU \(d.ordinal)", "\(d.name), \(d.arch), \(String(format: "%.1f", gib)) GiB, "
                                + "\(d.multiprocessors) SMs, \(d.supportsBF16 ? "bf16" : "fp16 only (no bf16 hardware)")"))
            }
        } catch {
            r.lines.append(("CUDA driver", "not available: \(error)"))
            r.lines.append(("GPUs", "none"))
        }
        do {
            let nvrtc = try NVRTCLibrary.load(search)
            r.nvrtc = nvrtc
            let builtins = nvrtc.builtinsPath.map { " (builtins \($0))" } ?? ""
            r.lines.append(("NVRTC", "\(nvrtc.version) at \(nvrtc.path)\(builtins)"))
        } catch {
            r.lines.append(("NVRTC", "not available: \(error)"))
        }
        do {
            let blas = try CUBLASLibrary.load(search)
            r.cublas = blas
            r.lines.append(("cuBLAS", "\(blas.version) at \(blas.path)" + (blas.ltPath.map { "; cuBLASLt at \($0)" } ?? "; cuBLASLt not found")))
        } catch {
            r.lines.append(("cuBLAS", "not available: \(error)"))
        }
        r.lines.append(("kernel cache", CUDAKernelCache(environment: environment).directory.path))
        return r
    }
}
