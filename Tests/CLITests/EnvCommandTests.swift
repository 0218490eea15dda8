import Foundation
import Testing

/// The NVRTC 13.0 folder Scripts/fetch-nvrtc.sh fills (QWENFT_TEST_NVRTC13, else .cache/nvrtc/13).
private func nvrtc13Folder() -> String? {
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let dir = ProcessInfo.processInfo.environment["QWENFT_TEST_NVRTC13"].flatMap { $0.isEmpty ? nil : $0 }
        ?? packageRoot.appendingPathComponent(".cache/nvrtc/13").path
    return FileManager.default.fileExists(atPath: dir + "/libnvrtc.so.13") ? dir : nil
}

private let nvrtcExpected = nvrtc13Folder() != nil
    || ProcessInfo.processInfo.environment["QWENFT_TEST_NVRTC13"].map { !$0.isEmpty } == true

@Suite struct EnvCommandTests {
    @Test func reportsEveryPart() throws {
        let r = try runQwenft(["env"])
        #expect(r.status == 0, "\(r.stderr)")
        for label in ["qwenft:", "threads:", "BLAS:", "MPI:", "CUDA search:", "CUDA driver:", "NVRTC:", "cuBLAS:", "kernel cache:"] {
            #expect(r.stdout.contains("\n" + label) || r.stdout.hasPrefix(label), "missing \(label) in:\n\(r.stdout)")
        }
        #expect(r.stdout.contains("OpenBLAS"))
        #expect(r.stdout.contains("QWENFT_CUDA_LIBDIR"))
    }

    /// QWENFT_CUDA_LIBDIR is honoured: NVRTC is reported from that folder.
    @Test(.enabled(if: nvrtcExpected, "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func libdirIsReported() throws {
        let dir = try #require(nvrtc13Folder())
        let r = try runQwenft(["env"], environment: ["QWENFT_CUDA_LIBDIR": dir])
        #expect(r.status == 0)
        #expect(r.stdout.contains("NVRTC:") && r.stdout.contains("13.0 at \(dir)/libnvrtc.so.13"), "\(r.stdout)")
    }

    @Test(.enabled(if: nvrtcExpected, "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func compileKernelsForSM90() throws {
        let dir = try #require(nvrtc13Folder())
        let r = try runQwenft(["env", "--compile-kernels", "sm_90"], environment: ["QWENFT_CUDA_LIBDIR": dir])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let ok = r.stdout.split(separator: "\n").filter { $0.hasPrefix("ok    sm_90  ") }
        #expect(ok.count >= 30)
        #expect(r.stdout.contains("ok    sm_90  attention.cu  attention_backward_dkdv"))
        #expect(r.stdout.contains("kernels in 8 modules compiled for sm_90"))
    }

    /// CUDA 13 cannot target sm_70: every line fails, NVRTC's log is shown, exit 1.
    @Test(.enabled(if: nvrtcExpected, "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func compileFailureShowsTheLogAndExits1() throws {
        let dir = try #require(nvrtc13Folder())
        let r = try runQwenft(["env", "--compile-kernels", "sm_70"], environment: ["QWENFT_CUDA_LIBDIR": dir])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL  sm_70  norm.cu  rmsnorm_forward"))
        #expect(r.stdout.contains("---- NVRTC log for norm.cu ----"))
        #expect(r.stderr.hasPrefix("qwenft: error: ") && r.stderr.contains("did not compile for sm_70"))
    }

    @Test func badArchitectureIsAUsageError() throws {
        let r = try runQwenft(["env", "--compile-kernels", "90"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("'90' is not a GPU architecture"))
    }
}
