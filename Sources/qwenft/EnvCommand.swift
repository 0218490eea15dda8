import ArgumentParser
import CBLAS
import CUDA
import Distributed
import Foundation
import QwenCore

/// `qwenft env [--compile-kernels sm_XY]`: what this machine offers qwenft (DeepSpeed's
/// ds_report): version, BLAS and threads, MPI, the CUDA libraries and GPUs.
struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Report the version, BLAS, MPI, CUDA libraries and GPUs this machine offers.",
        discussion: """
            Paste its output into bug reports. CUDA libraries are opened at run time, never needed \
            to build: QWENFT_CUDA_LIBDIR (colon-separated folders) first, then the dynamic loader's \
            path (LD_LIBRARY_PATH), then the nvidia/*/lib folders of pip's CUDA wheels in Python \
            site-packages. --compile-kernels sm_XY compiles every CUDA kernel with the NVRTC found, \
            for that architecture, with no GPU needed; it exits 1 if any kernel fails, with NVRTC's log.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("compile-kernels"), help: "Compile every CUDA kernel for this architecture (sm_70, sm_80, sm_90…).")
    var compileArch: String?

    func run() throws {
        global.apply()
        if let arch = compileArch {
            try compileKernels(arch: arch)
            return
        }
        var lines: [(String, String)] = [("qwenft", QwenFT.configuration.version)]
        var uts = utsname()
        uname(&uts)
        let machine = withUnsafeBytes(of: &uts.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let release = withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        lines.append(("system", "Linux \(release) \(machine), \(ProcessInfo.processInfo.activeProcessorCount) cores"))
        lines.append(("threads", "\(Threading.count) (--threads, QWENFT_THREADS; default: the cores this process may use / local MPI ranks)"))
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        lines.append(("BLAS", "\(config.trimmingCharacters(in: .whitespaces)) (core \(core)), its own threads \(openblas_get_num_threads())"))
        lines.append(("MPI", "\(MPIInfo.libraryVersion()) (linked); under mpirun: \(Launch.underMPI ? "yes, \(Launch.localRanks) local ranks" : "no")"))
        let cuda = CUDAReport.gather()
        lines += cuda.lines
        let width = lines.map(\.0.count).max() ?? 0
        for (label, value) in lines {
            print((label + ":").padding(toLength: width + 2, withPad: " ", startingAt: 0) + value)
        }
    }

    /// One line per kernel: `ok   sm_90  norm.cu  rmsnorm_forward` or `FAIL …`; NVRTC's log after
    /// a failed module. Throws (exit 1) if any failed.
    func compileKernels(arch: String) throws {
        try NVRTCLibrary.validate(arch: arch)
        let nvrtc = try NVRTCLibrary.load()
        print("NVRTC \(nvrtc.version) at \(nvrtc.path), \(arch)")
        let results = try CUDAKernels.compileAll(arch: arch, nvrtc: nvrtc)
        var failed = 0, total = 0
        for r in results {
            for f in r.functions {
                total += 1
                if r.failure == nil {
                    print("ok    \(arch)  \(r.module)  \(f)  (module CUBIN \(r.cubinBytes) bytes)")
                } else {
                    failed += 1
                    print("FAIL  \(arch)  \(r.module)  \(f)")
                }
            }
            if let log = r.failure { print("---- NVRTC log for \(r.module) ----\n\(log)\n----") }
            if r.failure == nil, !r.warnings.isEmpty { print("      NVRTC says about \(r.module): \(r.warnings)") }
        }
        guard failed == 0 else {
            throw CLIError("\(failed) of \(total) CUDA kernels did not compile for \(arch) with NVRTC \(nvrtc.version) (log above)")
        }
        print("all \(total) kernels in \(results.count) modules compiled for \(arch)")
    }
}
