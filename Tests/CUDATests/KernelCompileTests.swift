import CUDA
import Foundation
import Testing

// Every CUDA kernel compiled to a CUBIN by NVRTC on a machine with no GPU: sm_90 (H100/H200) with
// NVRTC 13.0 and sm_70 (V100) with NVRTC 12.9, the newest NVRTC that still targets sm_70.
// CUBIN, not PTX, so ptxas runs and rejects instructions the arch lacks. A failure prints NVRTC's log.

@Suite struct KernelCompileTests {
    @Test(.enabled(if: nvrtcExpected(13), "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func everyKernelCompilesForSM90WithNVRTC13() throws {
        let lib = try nvrtc(13)
        #expect(lib.major == 13)
        try expectAllCompile(arch: "sm_90", lib)
    }

    @Test(.enabled(if: nvrtcExpected(12), "NVRTC 12 not fetched: run Scripts/fetch-nvrtc.sh"))
    func everyKernelCompilesForSM70WithNVRTC12() throws {
        let lib = try nvrtc(12)
        #expect(lib.major == 12)
        try expectAllCompile(arch: "sm_70", lib)
    }

    func expectAllCompile(arch: String, _ lib: NVRTCLibrary) throws {
        let results = try CUDAKernels.compileAll(arch: arch, nvrtc: lib)
        #expect(results.count == CUDAKernels.modules.count)
        for r in results {
            #expect(r.failure == nil, "\(r.module) for \(arch) with NVRTC \(lib.version):\n\(r.failure ?? "")")
            #expect(r.cubinBytes > 0)
            #expect(!r.functions.isEmpty)
        }
    }

    /// The kernels the backend launches, by module: a renamed or dropped kernel fails here.
    @Test func moduleInventory() {
        let byName = Dictionary(uniqueKeysWithValues: CUDAKernels.modules.map { ($0.name, $0.functions) })
        #expect(byName["elementwise.cu"] == ["fill_f32", "copy_f32", "add_f32", "scale_f32", "convert_to_f32",
                                             "convert_from_f32", "add_bias_f32", "bias_backward_f32", "find_nonfinite_f32"])
        #expect(byName["norm.cu"] == ["embedding_forward", "embedding_backward", "rmsnorm_forward", "rmsnorm_backward",
                                      "rmsnorm_backward_weight"])
        #expect(byName["rope.cu"] == ["rope_rotate"])
        #expect(byName["swiglu.cu"] == ["swiglu_forward", "swiglu_backward"])
        #expect(byName["attention.cu"] == ["kv_store_write", "attention_forward", "attention_backward_d",
                                           "attention_backward_dq", "attention_backward_dkdv"])
        #expect(byName["cross_entropy.cu"] == ["cross_entropy_forward_backward", "sum_f32_to_f64", "argmax_rows"])
        #expect(byName["adamw.cu"] == ["adamw_step", "squared_norm_partials", "sum_f64"])
        #expect(byName["nf4.cu"] == ["nf4_dequantize_absmax", "nf4_dequantize"])
        for m in CUDAKernels.modules { #expect(m.source.contains("__device__ __forceinline__ u16 f32_to_bf16")) }
    }

    @Test(.enabled(if: nvrtcExpected(13), "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func aBrokenKernelFailsWithNVRTCsLog() throws {
        let lib = try nvrtc(13)
        let source = "extern \"C\" __global__ void broken(float *x) { x[0] = undefined_name; }"
        do {
            _ = try lib.compile(source: source, name: "broken.cu", arch: "sm_90")
            Issue.record("a kernel with an undefined name compiled")
        } catch let CUDAError.compileFailed(module, arch, log) {
            #expect(module == "broken.cu")
            #expect(arch == "sm_90")
            #expect(log.contains("undefined_name"), "log: \(log)")
        }
    }

    /// sm_70 is below what CUDA 13 supports: NVRTC 13 refuses it with a log, not a crash.
    @Test(.enabled(if: nvrtcExpected(13), "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func nvrtc13RefusesSM70() throws {
        let lib = try nvrtc(13)
        let results = try CUDAKernels.compileAll(arch: "sm_70", nvrtc: lib)
        #expect(results.allSatisfy { $0.failure != nil })
    }

    /// The CUBIN symbol check looks for a whole NUL-delimited name, as an ELF string table holds it.
    @Test func symbolLookupInAnImage() {
        let image: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, 0] + Array("rmsnorm_forward".utf8) + [0] + Array("x".utf8) + [0]
        #expect(CUDAKernels.image(image, defines: "rmsnorm_forward"))
        #expect(CUDAKernels.image(image, defines: "x"))
        #expect(!CUDAKernels.image(image, defines: "rmsnorm"))
        #expect(!CUDAKernels.image(image, defines: "norm_forward"))
        #expect(!CUDAKernels.image([], defines: "x"))
    }

    @Test func architectureSpelling() {
        for good in ["sm_70", "sm_90", "sm_90a", "sm_100", "sm_120"] { #expect(throws: Never.self) { try NVRTCLibrary.validate(arch: good) } }
        for bad in ["90", "sm90", "sm_", "sm_x0", "compute_90", "sm_9"] {
            #expect(throws: CUDAError.badArchitecture(bad)) { try NVRTCLibrary.validate(arch: bad) }
        }
    }

    /// The second request reads the CUBIN NVRTC wrote the first time; another arch is another file.
    @Test(.enabled(if: nvrtcExpected(13), "NVRTC 13 not fetched: run Scripts/fetch-nvrtc.sh"))
    func diskCacheIsKeyedBySourceArchAndVersion() throws {
        let lib = try nvrtc(13)
        let dir = try temporaryFolder("cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = CUDAKernelCache(environment: ["QWENFT_CUDA_CACHE": dir.path])
        #expect(cache.directory.path == dir.path)
        let module = try #require(CUDAKernels.modules.first { $0.name == "rope.cu" })
        let first = try cache.cubin(for: module, arch: "sm_90", nvrtc: lib)
        #expect(!first.fromCache)
        #expect(first.saveError == nil)
        let file = cache.file(for: module, arch: "sm_90", nvrtcVersion: lib.version)
        #expect(file.lastPathComponent.hasPrefix("rope-sm_90-nvrtc13.0-"))
        #expect(FileManager.default.fileExists(atPath: file.path))
        let second = try cache.cubin(for: module, arch: "sm_90", nvrtc: lib)
        #expect(second.fromCache)
        #expect(second.cubin == first.cubin)
        #expect(cache.file(for: module, arch: "sm_80", nvrtcVersion: lib.version) != file)
        #expect(cache.file(for: module, arch: "sm_90", nvrtcVersion: "13.1") != file)
        var edited = module
        edited.source += "\n// edited\n"
        #expect(cache.file(for: edited, arch: "sm_90", nvrtcVersion: lib.version) != file)
        // A damaged file is compiled again, not handed to the driver.
        try Data("not an ELF".utf8).write(to: file)
        #expect(try !cache.cubin(for: module, arch: "sm_90", nvrtc: lib).fromCache)
    }
}
