import CCUDA
import Foundation

extension NVRTCLibrary {
    /// The options every module is compiled with: a CUBIN (SASS) for exactly `arch`, so the
    /// driver never has to JIT PTX (NVRTC 13.x PTX can be newer than a 580 driver accepts), and
    /// ptxas checks that no sm_80+ instruction reaches sm_70 code. No fast math: the numerics
    /// follow the CPU kernels.
    public static func options(arch: String) -> [String] {
        ["--gpu-architecture=\(arch)", "--std=c++17"]
    }

    /// Checks `arch` is "sm_XY" (or "sm_XYa").
    public static func validate(arch: String) throws {
        let digits = arch.dropFirst(3).filter { $0 != "a" }
        guard arch.hasPrefix("sm_"), digits.count >= 2, digits.allSatisfy(\.isNumber) else {
            throw CUDAError.badArchitecture(arch)
        }
    }

    /// Compiles CUDA C++ `source` to a CUBIN for `arch`. Throws `compileFailed` with NVRTC's log.
    /// Returns the CUBIN and the log (warnings; empty when there are none).
    public func compile(source: String, name: String, arch: String) throws -> (cubin: [UInt8], log: String) {
        try NVRTCLibrary.validate(arch: arch)
        var program: nvrtcProgram?
        try check(api.nvrtcCreateProgram!(&program, source, name, 0, nil, nil), "nvrtcCreateProgram")
        defer { _ = api.nvrtcDestroyProgram!(&program) }
        let options = NVRTCLibrary.options(arch: arch)
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer { buf in
            api.nvrtcCompileProgram!(program, Int32(buf.count), buf.baseAddress)
        }
        let log = programLog(program)
        guard status == 0 else {
            let text = log.isEmpty ? errorString(status) : log
            throw CUDAError.compileFailed(module: name, arch: arch, log: text)
        }
        var size = 0
        try check(api.nvrtcGetCUBINSize!(program, &size), "nvrtcGetCUBINSize")
        var cubin = [UInt8](repeating: 0, count: size)
        try cubin.withUnsafeMutableBytes { raw in
            try check(api.nvrtcGetCUBIN!(program, raw.baseAddress?.assumingMemoryBound(to: CChar.self)), "nvrtcGetCUBIN")
        }
        return (cubin, log)
    }

    func programLog(_ program: nvrtcProgram?) -> String {
        var size = 0
        guard api.nvrtcGetProgramLogSize!(program, &size) == 0, size > 1 else { return "" }
        var buffer = [CChar](repeating: 0, count: size)
        guard api.nvrtcGetProgramLog!(program, &buffer) == 0 else { return "" }
        return String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func errorString(_ status: nvrtcResult) -> String {
        api.nvrtcGetErrorString!(status).map { String(cString: $0) } ?? "NVRTC error \(status)"
    }

    func check(_ status: nvrtcResult, _ call: String) throws {
        guard status != 0 else { return }
        throw CUDAError.nvrtc(call: call, code: status, message: errorString(status))
    }
}
