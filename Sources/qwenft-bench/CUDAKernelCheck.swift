// qwenft-bench cuda-kernels [--device N]: every CUDA kernel run on the GPU against the CPU kernel it
// mirrors, on Qwen2.5-0.5B-like shapes, one table line per kernel: the largest difference relative
// to the largest reference value, the tolerance, ok/FAIL. Needs a GPU (Scripts/device/cuda-check.sh);
// exits 1 if any kernel is off. Conversions, NF4 and AdamW must match bit for bit.
import CUDA
import Foundation
import QwenCore
import Qwen2
import Training

/// The GPU side: upload, download, launch-and-wait.
final class KernelRig {
    let runtime: CUDARuntime
    let kernels: CUDAKernelSet
    var allocations: [CUdeviceptr] = []

    init(ordinal: Int) throws {
        runtime = try CUDARuntime.open(ordinal: ordinal)
        kernels = try runtime.loadKernels()
    }

    deinit { for p in allocations { runtime.context.free(p) } }

    func upload<T>(_ values: [T]) throws -> CUdeviceptr {
        let p = try runtime.context.allocate(bytes: values.count * MemoryLayout<T>.stride)
        allocations.append(p)
        try values.withUnsafeBytes { try runtime.context.copy(toDevice: p, from: $0.baseAddress!, bytes: $0.count) }
        return p
    }

    func zeros<T>(_ count: Int, _: T.Type) throws -> CUdeviceptr {
        try upload([UInt8](repeating: 0, count: count * MemoryLayout<T>.stride))
    }

    func download<T>(_ p: CUdeviceptr, _ count: Int, as _: T.Type) throws -> [T] {
        var out = [UInt8](repeating: 0, count: count * MemoryLayout<T>.stride)
        try out.withUnsafeMutableBytes { try runtime.context.copy(toHost: $0.baseAddress!, from: p, bytes: $0.count) }
        return out.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    /// Launches `name` with `blocks` × `threads` and waits for it.
    func run(_ name: String, blocks: Int, threads: Int, _ args: [KernelArgument]) throws {
        try runtime.context.launch(try kernels.function(name), grid: (max(1, blocks), 1, 1), block: (threads, 1, 1),
                                   arguments: args, name: name)
        try runtime.context.synchronize()
    }

    /// Blocks of 256 threads covering n elements (grid-stride kernels), capped.
    static func blocks(_ n: Int) -> Int { min(65_535, (n + 255) / 256) }
}

/// max |a − b| / max |b| (0 when b is all zeros and a equals it).
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        if x.isNaN != y.isNaN { return .infinity }
        if x.isNaN { continue }
        if x.isInfinite || y.isInfinite { if x != y { return .infinity }; continue }
        num = max(num, Double(abs(x - y)))
        den = max(den, Double(abs(y)))
    }
    return a.count != b.count ? .infinity : (num == 0 ? 0 : num / max(den, 1e-30))
}

func runCUDAKernelCheck(ordinal: Int) throws {
    let rig = try KernelRig(ordinal: ordinal)
    let d = rig.runtime.device
    print("GPU \(d.ordinal): \(d.name), \(d.arch); NVRTC \(rig.runtime.nvrtc.version); kernel cache \(rig.runtime.cache.directory.path)")
    var rng = SystemRandomNumberGenerator()
    func random(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) } }
    var failures = 0
    func report(_ name: String, _ err: Double, tolerance: Double) {
        let ok = err <= tolerance
        if !ok { failures += 1 }
        print(String(format: "%-34@ %10.3e  tol %8.1e  %@", name as NSString, err, tolerance, ok ? "ok" : "FAIL"))
    }
    let I32 = { (x: Int) in KernelArgument.int32(Int32(x)) }
    let I64 = { (x: Int) in KernelArgument.int64(Int64(x)) }
    let P = { (p: CUdeviceptr) in KernelArgument.pointer(p) }

    // Conversions, bit for bit (specials included).
    do {
        var x = random(100_000, scale: 70_000) + random(10_000, scale: 1e-6)
        x += [0, -0, .infinity, -.infinity, .nan, 65_520, 65_504, 1e-8, -1e-8, Float(bitPattern: 1), 3.4e38]
        let n = x.count
        let src = try rig.upload(x)
        for (dtype, name) in [(1, "bf16"), (2, "f16")] {
            let half = try rig.zeros(n, UInt16.self)
            try rig.run("convert_from_f32", blocks: KernelRig.blocks(n), threads: 256, [P(half), I32(dtype), P(src), I64(n)])
            let gpuBits = try rig.download(half, n, as: UInt16.self)
            let cpuBits = x.map { dtype == 1 ? bf16Bits(fromFloat: $0) : f16Bits(fromFloat: $0) }
            report("convert_from_f32 \(name)", gpuBits == cpuBits ? 0 : 1, tolerance: 0)
            let back = try rig.zeros(n, Float.self)
            try rig.run("convert_to_f32", blocks: KernelRig.blocks(n), threads: 256, [P(back), P(half), I32(dtype), I64(n)])
            let gpu = try rig.download(back, n, as: Float.self).map(\.bitPattern)
            let cpu = cpuBits.map { (dtype == 1 ? floatFromBF16($0) : floatFromF16($0)).bitPattern }
            report("convert_to_f32 \(name)", gpu == cpu ? 0 : 1, tolerance: 0)
        }
    }

    let N = 256, C = 896
    // RMSNorm forward and backward.
    do {
        let x = random(N * C, scale: 3), w = random(C), dy = random(N * C)
        var out = [Float](repeating: 0, count: N * C), rstd = [Float](repeating: 0, count: N)
        rmsNormForward(out: &out, rstd: &rstd, inp: x, weight: w, N: N, C: C, eps: 1e-6)
        let gx = try rig.upload(x), gw = try rig.upload(w), gout = try rig.zeros(N * C, Float.self), grstd = try rig.zeros(N, Float.self)
        try rig.run("rmsnorm_forward", blocks: N, threads: 256, [P(gout), P(grstd), P(gx), P(gw), I32(N), I32(C), .float(1e-6)])
        report("rmsnorm_forward", relativeError(try rig.download(gout, N * C, as: Float.self), out), tolerance: 1e-6)
        var dx = [Float](repeating: 0, count: N * C), dw = [Float](repeating: 0, count: C)
        rmsNormBackward(dinp: &dx, dweight: &dw, dout: dy, inp: x, weight: w, rstd: rstd, N: N, C: C)
        let gdy = try rig.upload(dy), gdx = try rig.zeros(N * C, Float.self), gdw = try rig.zeros(C, Float.self)
        try rig.run("rmsnorm_backward", blocks: N, threads: 256, [P(gdx), P(gdy), P(gx), P(gw), P(grstd), I32(N), I32(C)])
        try rig.run("rmsnorm_backward_weight", blocks: (C + 255) / 256, threads: 256, [P(gdw), P(gdy), P(gx), P(grstd), I32(N), I32(C)])
        report("rmsnorm_backward (dinp)", relativeError(try rig.download(gdx, N * C, as: Float.self), dx), tolerance: 1e-5)
        report("rmsnorm_backward_weight", relativeError(try rig.download(gdw, C, as: Float.self), dw), tolerance: 1e-5)
    }

    // SwiGLU.
    do {
        let n = N * 4864 / 4
        let g = random(n, scale: 6), u = random(n), dy = random(n)
        var out = [Float](repeating: 0, count: n), dg = out, du = out
        swigluForward(out: &out, gate: g, up: u, count: n)
        swigluBackward(dgate: &dg, dup: &du, dout: dy, gate: g, up: u, count: n)
        let gg = try rig.upload(g), gu = try rig.upload(u), gdy = try rig.upload(dy)
        let gout = try rig.zeros(n, Float.self), gdg = try rig.zeros(n, Float.self), gdu = try rig.zeros(n, Float.self)
        try rig.run("swiglu_forward", blocks: KernelRig.blocks(n), threads: 256, [P(gout), P(gg), P(gu), I64(n)])
        try rig.run("swiglu_backward", blocks: KernelRig.blocks(n), threads: 256, [P(gdg), P(gdu), P(gdy), P(gg), P(gu), I64(n)])
        report("swiglu_forward", relativeError(try rig.download(gout, n, as: Float.self), out), tolerance: 1e-6)
        report("swiglu_backward (dgate)", relativeError(try rig.download(gdg, n, as: Float.self), dg), tolerance: 1e-5)
        report("swiglu_backward (dup)", relativeError(try rig.download(gdu, n, as: Float.self), du), tolerance: 1e-5)
    }

    // RoPE and attention, training layout (S = T), with padding in the second row.
    let B = 2, T = 128, NH = 14, KVH = 2, hd = 64
    do {
        let table = RoPETable(headDim: hd, theta: 1_000_000, positions: T)
        let q0 = random(B * T * NH * hd)
        var q = q0
        ropeForward(&q, table: table, N: B * T, T: T, H: NH, firstPosition: 0)
        let gq = try rig.upload(q0), gcos = try rig.upload(table.cos.toArray()), gsin = try rig.upload(table.sin.toArray())
        let rotations = B * T * NH * hd / 2
        try rig.run("rope_rotate", blocks: KernelRig.blocks(rotations), threads: 256,
                    [P(gq), P(gcos), P(gsin), P(0), I32(B * T), I32(T), I32(NH), I32(hd), I32(0), .float(1)])
        report("rope_rotate (forward)", relativeError(try rig.download(gq, q.count, as: Float.self), q), tolerance: 1e-6)
        var back = q
        ropeBackward(&back, table: table, N: B * T, T: T, H: NH, firstPosition: 0)
        try rig.run("rope_rotate", blocks: KernelRig.blocks(rotations), threads: 256,
                    [P(gq), P(gcos), P(gsin), P(0), I32(B * T), I32(T), I32(NH), I32(hd), I32(0), .float(-1)])
        report("rope_rotate (backward)", relativeError(try rig.download(gq, q.count, as: Float.self), back), tolerance: 1e-6)

        let k = random(B * T * KVH * hd), v = random(B * T * KVH * hd), dout = random(B * T * NH * hd)
        var mask = [UInt8](repeating: 1, count: B * T)
        for t in 100..<T { mask[T + t] = 0 }
        var kStore = [Float](repeating: 0, count: k.count), vStore = kStore
        kvStoreWrite(store: &kStore, inp: k, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        kvStoreWrite(store: &vStore, inp: v, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        let gk = try rig.upload(k), gks = try rig.zeros(k.count, Float.self)
        try rig.run("kv_store_write", blocks: KernelRig.blocks(k.count), threads: 256,
                    [P(gks), P(gk), I32(B), I32(T), I32(KVH), I32(hd), I32(T), I32(0)])
        report("kv_store_write", relativeError(try rig.download(gks, k.count, as: Float.self), kStore), tolerance: 0)
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: B * NH * T)
        attentionForward(out: &out, lse: &lse, q: q, kStore: kStore, vStore: vStore, keyMask: mask,
                         B: B, T: T, NH: NH, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        let scale = Float(1 / Double(hd).squareRoot())
        let gqr = try rig.upload(q), gvs = try rig.upload(vStore), gmask = try rig.upload(mask)
        let gout = try rig.zeros(out.count, Float.self), glse = try rig.zeros(lse.count, Float.self)
        let warps = B * NH * T
        try rig.run("attention_forward", blocks: (warps + 3) / 4, threads: 128,
                    [P(gout), P(glse), P(gqr), P(gks), P(gvs), P(gmask), I32(B), I32(T), I32(NH), I32(KVH), I32(hd),
                     I32(T), I32(0), .float(scale)])
        report("attention_forward (out)", relativeError(try rig.download(gout, out.count, as: Float.self), out), tolerance: 1e-5)
        report("attention_forward (lse)", relativeError(try rig.download(glse, lse.count, as: Float.self), lse), tolerance: 1e-5)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        var scratch = [Float](repeating: 0, count: B * NH * T)
        attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: dout, q: q, kStore: kStore, vStore: vStore, out: out, lse: lse,
                          keyMask: mask, scratchD: &scratch, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        let gdout = try rig.upload(dout), gD = try rig.zeros(B * NH * T, Float.self)
        let gdq = try rig.zeros(q.count, Float.self), gdk = try rig.zeros(k.count, Float.self), gdv = try rig.zeros(k.count, Float.self)
        try rig.run("attention_backward_d", blocks: (warps + 3) / 4, threads: 128, [P(gD), P(gdout), P(gout), I32(B), I32(T), I32(NH), I32(hd)])
        try rig.run("attention_backward_dq", blocks: (warps + 3) / 4, threads: 128,
                    [P(gdq), P(gdout), P(gqr), P(gks), P(gvs), P(glse), P(gD), P(gmask), I32(B), I32(T), I32(NH), I32(KVH), I32(hd), .float(scale)])
        let keyWarps = B * KVH * T
        try rig.run("attention_backward_dkdv", blocks: (keyWarps + 3) / 4, threads: 128,
                    [P(gdk), P(gdv), P(gdout), P(gqr), P(gks), P(gvs), P(glse), P(gD), P(gmask), I32(B), I32(T), I32(NH), I32(KVH), I32(hd), .float(scale)])
        report("attention_backward (dq)", relativeError(try rig.download(gdq, dq.count, as: Float.self), dq), tolerance: 1e-4)
        report("attention_backward (dk)", relativeError(try rig.download(gdk, dk.count, as: Float.self), dk), tolerance: 1e-4)
        report("attention_backward (dv)", relativeError(try rig.download(gdv, dv.count, as: Float.self), dv), tolerance: 1e-4)
    }

    // Cross-entropy over a 151,936-token vocabulary, in place, with ignored rows; argmax.
    do {
        let rows = 32, V = 151_936
        let logits = random(rows * V, scale: 8)
        let targets: [Int32] = (0..<rows).map { $0 % 5 == 4 ? -100 : Int32.random(in: 0..<Int32(V)) }
        var d = [Float](repeating: 0, count: rows * V), losses = [Float](repeating: 0, count: rows)
        try crossEntropyForwardBackward(dlogits: &d, losses: &losses, logits: logits, targets: targets, N: rows, V: V, scale: 1.0 / 25)
        let gl = try rig.upload(logits), gt = try rig.upload(targets), gloss = try rig.zeros(rows, Float.self)
        let gids = try rig.zeros(rows, Int32.self)
        try rig.run("argmax_rows", blocks: rows, threads: 1024, [P(gids), P(gl), I32(rows), I32(V)])
        let cpuIds = (0..<rows).map { r in Int32((0..<V).max { logits[r * V + $0] < logits[r * V + $1] || (logits[r * V + $0] == logits[r * V + $1] && $0 > $1) }!) }
        report("argmax_rows", try rig.download(gids, rows, as: Int32.self) == cpuIds ? 0 : 1, tolerance: 0)
        try rig.run("cross_entropy_forward_backward", blocks: rows, threads: 1024,
                    [P(gl), P(gloss), P(gl), P(gt), P(0), I32(rows), I32(V), .float(1.0 / 25)])
        report("cross_entropy (losses)", relativeError(try rig.download(gloss, rows, as: Float.self), losses), tolerance: 1e-5)
        report("cross_entropy (dlogits, in place)", relativeError(try rig.download(gl, rows * V, as: Float.self), d), tolerance: 1e-5)
    }

    // AdamW (bit for bit up to the CPU's emulated fma), the gradient norm, non-finite check.
    do {
        let n = 1_000_003
        let p0 = random(n), g = random(n, scale: 0.01), m0 = random(n, scale: 0.001), v0 = random(n, scale: 1e-6).map(abs)
        let decay: [UInt8] = (0..<n).map { $0 % 7 == 0 ? 0 : 1 }
        let c = AdamWScalars.forStep(3, lr: 1e-4, hyper: AdamWHyperparameters(weightDecay: 0.01))
        var p = p0, m = m0, v = v0
        var i = 0
        while i < n {  // runs of equal decay, as the layout's segments
            var j = i
            while j < n && decay[j] == decay[i] { j += 1 }
            p.withUnsafeMutableBufferPointer { pp in m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                g.withUnsafeBufferPointer { gp in
                    adamwUpdate(params: pp.baseAddress! + i, grads: gp.baseAddress! + i, m: mp.baseAddress! + i, v: vp.baseAddress! + i,
                                count: j - i, decay: decay[i] == 1, c)
                }
            } } }
            i = j
        }
        let gp = try rig.upload(p0), gg = try rig.upload(g), gm = try rig.upload(m0), gv = try rig.upload(v0), gdecay = try rig.upload(decay)
        try rig.run("adamw_step", blocks: KernelRig.blocks(n), threads: 256,
                    [P(gp), P(gg), P(gm), P(gv), P(gdecay), I64(n), .float(c.decayFactor), .float(c.lerpWeight), .float(c.beta2),
                     .float(c.oneMinusBeta2), .float(c.biasCorrection2Sqrt), .float(c.eps), .float(c.negStepSize)])
        let gpuP = try rig.download(gp, n, as: Float.self)
        let differing = zip(gpuP, p).filter { $0.bitPattern != $1.bitPattern }.count
        print("  adamw_step: \(differing) of \(n) parameters differ in any bit (CPU fma is emulated in double)")
        report("adamw_step (params)", relativeError(gpuP, p), tolerance: 1e-6)
        report("adamw_step (m)", relativeError(try rig.download(gm, n, as: Float.self), m), tolerance: 0)
        report("adamw_step (v)", relativeError(try rig.download(gv, n, as: Float.self), v), tolerance: 1e-7)

        let blocks = (n + 4095) / 4096
        let gpart = try rig.zeros(blocks, Double.self), gsum = try rig.zeros(1, Double.self)
        try rig.run("squared_norm_partials", blocks: blocks, threads: 256, [P(gpart), P(gg), I64(n)])
        try rig.run("sum_f64", blocks: 1, threads: 1024, [P(gsum), P(gpart), I32(blocks)])
        let cpuNorm = g.withUnsafeBufferPointer { GradientClipping.squaredNorm($0.baseAddress!, range: 0..<n) }
        let gpuNorm = try rig.download(gsum, 1, as: Double.self)[0]
        report("squared_norm (double)", abs(gpuNorm - cpuNorm) / cpuNorm, tolerance: 1e-12)
        var withInf = g
        withInf[n - 3] = .infinity
        let gflag = try rig.zeros(1, Int32.self), ginf = try rig.upload(withInf)
        try rig.run("find_nonfinite_f32", blocks: KernelRig.blocks(n), threads: 256, [P(gflag), P(gg), I64(n)])
        let clean = try rig.download(gflag, 1, as: Int32.self)[0]
        try rig.run("find_nonfinite_f32", blocks: KernelRig.blocks(n), threads: 256, [P(gflag), P(ginf), I64(n)])
        let dirty = try rig.download(gflag, 1, as: Int32.self)[0]
        report("find_nonfinite_f32", clean == 0 && dirty == 1 ? 0 : 1, tolerance: 0)
    }

    // NF4: dequantise a quantised 896 × 4864 matrix, fp32 and bf16 out; the 8-bit absmax.
    do {
        let rows = 896, cols = 4864, count = rows * cols, bs = 64
        let w = random(count, scale: 0.05)
        var packed = [UInt8](repeating: 0, count: (count + 1) / 2), absmax = [Float](repeating: 0, count: NF4.blocks(count, blocksize: bs))
        NF4.quantize(w, count: count, blocksize: bs, packed: &packed, absmax: &absmax)
        var cpu = [Float](repeating: 0, count: count)
        NF4.dequantize(packed: packed, absmax: absmax, blocksize: bs, from: 0, count: count, into: &cpu)
        let gpk = try rig.upload(packed), gam = try rig.upload(absmax), gout = try rig.zeros(count, Float.self)
        try rig.run("nf4_dequantize", blocks: KernelRig.blocks(count), threads: 256, [P(gout), I32(0), P(gpk), P(gam), I32(bs), I64(0), I64(count)])
        report("nf4_dequantize f32", try rig.download(gout, count, as: Float.self).map(\.bitPattern) == cpu.map(\.bitPattern) ? 0 : 1, tolerance: 0)
        let gb = try rig.zeros(count, UInt16.self)
        try rig.run("nf4_dequantize", blocks: KernelRig.blocks(count), threads: 256, [P(gb), I32(1), P(gpk), P(gam), I32(bs), I64(0), I64(count)])
        report("nf4_dequantize bf16", try rig.download(gb, count, as: UInt16.self) == cpu.map { bf16Bits(fromFloat: $0) } ? 0 : 1, tolerance: 0)
        let (codes, nested, offset) = NF4.doubleQuantize(absmax)
        var cpuAbsmax = [Float](repeating: 0, count: absmax.count)
        NF4.dequantizeAbsmax(codes: codes, count: codes.count, nested: nested, offset: offset, into: &cpuAbsmax)
        let gcodes = try rig.upload(codes), gnested = try rig.upload(nested), gmap = try rig.upload(NF4.dynamicMap)
        let gabs = try rig.zeros(absmax.count, Float.self)
        try rig.run("nf4_dequantize_absmax", blocks: KernelRig.blocks(absmax.count), threads: 256,
                    [P(gabs), P(gcodes), P(gnested), P(gmap), .float(offset), I64(absmax.count)])
        report("nf4_dequantize_absmax", try rig.download(gabs, absmax.count, as: Float.self).map(\.bitPattern) == cpuAbsmax.map(\.bitPattern) ? 0 : 1, tolerance: 0)
    }

    // cuBLAS through the row-major mapping, fp32 in and out, against GEMM (OpenBLAS).
    do {
        let blas = try CUBLASHandle(rig.runtime.cublas)
        let M = 256, Nn = 896, K = 4864
        for (name, tA, tB) in [("gemm nn", false, false), ("gemm nt", false, true), ("gemm tn", true, false)] {
            let a = random(M * K), b = random(K * Nn), c0 = random(M * Nn)
            var c = c0
            switch (tA, tB) {
            case (false, false): GEMM.nn(M, Nn, K, a, b, &c, alpha: 0.5, accumulate: true)
            case (false, true): GEMM.nt(M, Nn, K, a, b, &c, alpha: 0.5, accumulate: true)
            default: GEMM.tn(M, Nn, K, a, b, &c, alpha: 0.5, accumulate: true)
            }
            let ga = try rig.upload(a), gb = try rig.upload(b), gc = try rig.upload(c0)
            try blas.gemm(transA: tA, transB: tB, M: M, N: Nn, K: K, A: ga, B: gb, C: gc, alpha: 0.5, beta: 1)
            try rig.runtime.context.synchronize()
            report(name + " (fp32, accumulate)", relativeError(try rig.download(gc, M * Nn, as: Float.self), c), tolerance: 1e-5)
        }
        // bf16 inputs, fp32 accumulation: against the CPU product of the bf16-rounded inputs.
        let a = random(M * K), b = random(Nn * K)
        let a16 = a.map { bf16Bits(fromFloat: $0) }, b16 = b.map { bf16Bits(fromFloat: $0) }
        var c = [Float](repeating: 0, count: M * Nn)
        GEMM.nt(M, Nn, K, a16.map(floatFromBF16), b16.map(floatFromBF16), &c, alpha: 1, accumulate: false)
        let ga = try rig.upload(a16), gb = try rig.upload(b16), gc = try rig.zeros(M * Nn, Float.self)
        try blas.gemm(transA: false, transB: true, M: M, N: Nn, K: K, A: ga, B: gb, C: gc, inputType: .bf16)
        try rig.runtime.context.synchronize()
        report("gemm nt (bf16 in, fp32 acc)", relativeError(try rig.download(gc, M * Nn, as: Float.self), c), tolerance: 1e-4)
    }

    guard failures == 0 else { throw BenchError("\(failures) CUDA kernel checks failed") }
    print("all CUDA kernel checks passed on \(d.name)")
}
