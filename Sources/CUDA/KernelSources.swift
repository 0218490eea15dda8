import Foundation

/// One kernel module: a .cu file of Sources/CUDA/Kernels, embedded in the binary, compiled by
/// NVRTC as common.cuh followed by the file.
public struct CUDAKernelModule: Sendable, Equatable {
    /// The file name, e.g. "norm.cu".
    public var name: String
    /// The full text NVRTC compiles.
    public var source: String
    /// The `extern "C" __global__` functions it defines, in source order.
    public var functions: [String]

    init(name: String, body: [UInt8]) {
        self.name = name
        let text = String(decoding: body, as: UTF8.self)
        source = "// ---- common.cuh ----\n" + String(decoding: PackageResources.common_cuh, as: UTF8.self)
            + "\n// ---- \(name) ----\n" + text
        functions = CUDAKernelModule.kernelNames(in: text)
    }

    /// Names declared as `extern "C" __global__ void NAME(`.
    static func kernelNames(in text: String) -> [String] {
        var names: [String] = []
        let marker = "extern \"C\" __global__ void "
        var rest = text[...]
        while let r = rest.range(of: marker) {
            let after = rest[r.upperBound...]
            let name = after.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty { names.append(String(name)) }
            rest = after
        }
        return names
    }
}

public enum CUDAKernels {
    /// Every module the CUDA backend uses.
    public static let modules: [CUDAKernelModule] = [
        CUDAKernelModule(name: "elementwise.cu", body: PackageResources.elementwise_cu),
        CUDAKernelModule(name: "norm.cu", body: PackageResources.norm_cu),
        CUDAKernelModule(name: "rope.cu", body: PackageResources.rope_cu),
        CUDAKernelModule(name: "swiglu.cu", body: PackageResources.swiglu_cu),
        CUDAKernelModule(name: "attention.cu", body: PackageResources.attention_cu),
        CUDAKernelModule(name: "cross_entropy.cu", body: PackageResources.cross_entropy_cu),
        CUDAKernelModule(name: "adamw.cu", body: PackageResources.adamw_cu),
        CUDAKernelModule(name: "nf4.cu", body: PackageResources.nf4_cu),
    ]

    /// True when `cubin` (an ELF image) holds the symbol `function` in a string table.
    public static func image(_ cubin: [UInt8], defines function: String) -> Bool {
        let needle = [0] + Array(function.utf8) + [0]
        guard cubin.count >= needle.count else { return false }
        var i = 0
        while i + needle.count <= cubin.count {
            if cubin[i] == 0 && cubin[i + 1] == needle[1] && Array(cubin[i ..< i + needle.count]) == needle { return true }
            i += 1
        }
        return false
    }
}
