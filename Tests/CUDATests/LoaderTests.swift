import CUDA
import Foundation
import QwenCore
import Testing

@Suite struct LoaderTests {
    /// QWENFT_CUDA_LIBDIR folders in order, then the bare sonames, then pip wheels' nvidia/*/lib
    /// folders of the environment's site-packages; .13 before .12 within each folder.
    @Test func searchOrder() throws {
        let root = try temporaryFolder("search")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        try touch(a.appendingPathComponent("libnvrtc.so.12"))
        try touch(b.appendingPathComponent("libnvrtc.so.13"))
        try touch(b.appendingPathComponent("libnvrtc.so.12"))
        let site = root.appendingPathComponent("venv/lib/python3.12/site-packages/nvidia")
        try touch(site.appendingPathComponent("cu13/lib/libnvrtc.so.13"))
        try touch(site.appendingPathComponent("cuda_nvrtc/lib/libnvrtc.so.12"))
        try touch(site.appendingPathComponent("cublas/lib/libcublas.so.12"))
        let env = ["QWENFT_CUDA_LIBDIR": a.path + ":" + b.path, "VIRTUAL_ENV": root.appendingPathComponent("venv").path]
        let search = CUDALibrarySearch(environment: env, systemPatterns: [])
        #expect(search.libraryDirs == [a.path, b.path])
        #expect(search.wheelLibraryDirs == [site.appendingPathComponent("cu13/lib").path,
                                            site.appendingPathComponent("cublas/lib").path,
                                            site.appendingPathComponent("cuda_nvrtc/lib").path])
        #expect(search.candidates(for: .nvrtc) == [
            a.path + "/libnvrtc.so.12", b.path + "/libnvrtc.so.13", b.path + "/libnvrtc.so.12",
            "libnvrtc.so.13", "libnvrtc.so.12",
            site.path + "/cu13/lib/libnvrtc.so.13", site.path + "/cuda_nvrtc/lib/libnvrtc.so.12",
        ])
        #expect(search.candidates(for: .cublas) == ["libcublas.so.13", "libcublas.so.12", site.path + "/cublas/lib/libcublas.so.12"])
        // The driver never comes from a wheel.
        #expect(search.candidates(for: .driver) == ["libcuda.so.1"])
    }

    /// A venv whose bin folder is on PATH counts, as does ~/.local.
    @Test func sitePackagesFromPathAndHome() throws {
        let root = try temporaryFolder("path")
        defer { try? FileManager.default.removeItem(at: root) }
        try touch(root.appendingPathComponent("env/lib/python3.11/site-packages/nvidia/cu13/lib/libnvrtc.so.13"))
        try touch(root.appendingPathComponent("home/.local/lib/python3.10/site-packages/nvidia/cublas/lib/libcublas.so.12"))
        let env = ["PATH": "/nowhere/bin:" + root.appendingPathComponent("env/bin").path, "HOME": root.appendingPathComponent("home").path]
        let search = CUDALibrarySearch(environment: env, systemPatterns: [])
        #expect(search.wheelLibraryDirs == [
            root.appendingPathComponent("env/lib/python3.11/site-packages/nvidia/cu13/lib").path,
            root.appendingPathComponent("home/.local/lib/python3.10/site-packages/nvidia/cublas/lib").path,
        ])
    }

    /// A file that is not a library is skipped with dlopen's reason; nothing found is one error
    /// naming the library, every attempt and how to get it.
    @Test func missingDriverIsOneClearError() throws {
        let root = try temporaryFolder("driver")
        defer { try? FileManager.default.removeItem(at: root) }
        try touch(root.appendingPathComponent("libcuda.so.1"), "not a library")
        let search = CUDALibrarySearch(libraryDirs: [root.path], wheelLibraryDirs: [], includeSonames: false)
        do {
            _ = try CUDADriver.load(search)
            Issue.record("a text file loaded as libcuda")
        } catch let error as CUDAError {
            guard case let .libraryNotFound(library, tried, _) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(library == "libcuda.so.1")
            #expect(tried.count == 1)
            #expect(tried.first?.contains(root.path + "/libcuda.so.1") == true)
            #expect(error.description.contains("comes with the NVIDIA driver"))
            #expect(error.description.contains("--device cpu"))
        }
    }

    /// This machine as it is: with no driver (CI), loading fails with the driver's hint; with one
    /// (a GPU machine), it reports at least one GPU with a compute capability.
    @Test func driverOnThisMachine() throws {
        do {
            let driver = try CUDADriver.load()
            let devices = try driver.devices()
            #expect(!devices.isEmpty)
            for d in devices { #expect(d.computeCapability.major >= 5 && d.totalMemory > 0) }
        } catch let error as CUDAError {
            switch error {
            case .libraryNotFound(let library, _, _): #expect(library == "libcuda.so.1")
            case .noDevice: break
            default: Issue.record("unexpected error \(error)")
            }
            #expect(error.description.hasPrefix("CUDA"))
        }
    }

    /// QWENFT_CUDA_LIBDIR wins over a wheel folder; the builtins come from the library's folder.
    @Test(.enabled(if: nvrtcExpected(12) && nvrtcExpected(13), "NVRTC not fetched: run Scripts/fetch-nvrtc.sh"))
    func libdirWinsOverWheels() throws {
        let d12 = try #require(nvrtcFolder(12)), d13 = try #require(nvrtcFolder(13))
        let first = try NVRTCLibrary.load(CUDALibrarySearch(libraryDirs: [d12], wheelLibraryDirs: [d13], includeSonames: false))
        #expect(first.major == 12)
        #expect(first.path.hasPrefix(d12))
        #expect(first.builtinsPath?.hasPrefix(d12 + "/libnvrtc-builtins.so.12.") == true)
        let wheel = try NVRTCLibrary.load(CUDALibrarySearch(libraryDirs: [], wheelLibraryDirs: [d13], includeSonames: false))
        #expect(wheel.major == 13)
        #expect(wheel.builtinsPath == d13 + "/libnvrtc-builtins.so.13.0")
    }

    @Test func missingNVRTCNamesTheWheels() throws {
        let search = CUDALibrarySearch(libraryDirs: ["/nonexistent"], wheelLibraryDirs: [], includeSonames: false)
        #expect {
            _ = try NVRTCLibrary.load(search)
        } throws: { error in
            "\(error)".contains("libnvrtc.so.13 or libnvrtc.so.12 not found") && "\(error)".contains("pip install nvidia-cuda-nvrtc")
        }
    }
}

@Suite struct RuntimeTests {
    @Test func deviceSpelling() throws {
        // The spelling is QwenCore's `Device`, the one parser of --device and the device key.
        #expect(try Device(parsing: "cpu") == .cpu)
        #expect(try Device(parsing: "CUDA") == .cuda(0))
        #expect(try Device(parsing: "cuda:3") == .cuda(3))
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", ""] { #expect(throws: BackendError.self) { try Device(parsing: bad) } }
        #expect(Device.cuda(2).description == "cuda:2")
    }

    /// `--device cuda` on this machine: with no driver (CI) one error naming libcuda.so.1 and the
    /// driver; with a GPU, a context on it and every kernel loaded.
    @Test func openingTheRuntimeOnThisMachine() throws {
        do {
            let runtime = try CUDARuntime.open(ordinal: 0)
            let kernels = try runtime.loadKernels()
            for m in CUDAKernels.modules {
                for f in m.functions { #expect(throws: Never.self) { _ = try kernels.function(f) } }
            }
        } catch let error as CUDAError {
            if case .libraryNotFound(let library, _, _) = error {
                #expect(library == "libcuda.so.1")
                #expect(error.description.contains("NVIDIA driver"))
            } else if case .noDevice = error {
                #expect(error.description.contains("--device cpu"))
            } else {
                Issue.record("unexpected error \(error)")
            }
        }
    }
}
