// gemm, convert, roundtrip: the compute core (Scripts/bench/gemm, Scripts/bench/safetensors).
import Foundation
import Qwen2
import QwenCore
import SafeTensors

struct GemmCase {
    let layer: String   // which Linear: C→OC
    let inFeatures: Int  // C
    let outFeatures: Int // OC
    var count = 1        // how many Linears of this shape one forward pass runs
}

/// The Linear shapes of a model folder's config.json, with how many of each one forward pass runs
/// (k and v share a shape, so do gate and up): what a training step's products are.
func modelShapes(_ dir: String) throws -> [GemmCase] {
    let c = try Qwen2Config.load(URL(fileURLWithPath: dir).appendingPathComponent("config.json"))
    let h = c.hiddenSize, L = c.numHiddenLayers, I = c.intermediateSize
    return [
        GemmCase(layer: "q_proj \(h)x\(c.qDim)", inFeatures: h, outFeatures: c.qDim, count: L),
        GemmCase(layer: "k/v_proj \(h)x\(c.kvDim)", inFeatures: h, outFeatures: c.kvDim, count: 2 * L),
        GemmCase(layer: "o_proj \(c.qDim)x\(h)", inFeatures: c.qDim, outFeatures: h, count: L),
        GemmCase(layer: "gate/up_proj \(h)x\(I)", inFeatures: h, outFeatures: I, count: 2 * L),
        GemmCase(layer: "down_proj \(I)x\(h)", inFeatures: I, outFeatures: h, count: L),
        GemmCase(layer: "lm_head \(h)x\(c.vocabSize)", inFeatures: h, outFeatures: c.vocabSize, count: 1),
    ]
}

/// The Linear shapes of Qwen2.5-0.5B (hidden 896, intermediate 4864, vocab 151936).
let qwen05BShapes = [
    GemmCase(layer: "q/o_proj 896x896", inFeatures: 896, outFeatures: 896),
    GemmCase(layer: "gate/up_proj 896x4864", inFeatures: 896, outFeatures: 4864),
    GemmCase(layer: "down_proj 4864x896", inFeatures: 4864, outFeatures: 896),
    GemmCase(layer: "lm_head 896x151936", inFeatures: 896, outFeatures: 151936),
]

/// The seven projections of a Qwen2.5-0.5B layer (hidden 896, 2 KV heads, intermediate 4864).
let qwen05BProjections = [
    GemmCase(layer: "q/o_proj 896x896", inFeatures: 896, outFeatures: 896, count: 2),
    GemmCase(layer: "k/v_proj 896x128", inFeatures: 896, outFeatures: 128, count: 2),
    GemmCase(layer: "gate/up_proj 896x4864", inFeatures: 896, outFeatures: 4864, count: 2),
    GemmCase(layer: "down_proj 4864x896", inFeatures: 4864, outFeatures: 896, count: 1),
]

func fillRandom(_ p: UnsafeMutablePointer<Float>, _ n: Int, seed: UInt64) {
    var s = seed
    for i in 0..<n {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        p[i] = Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
    }
}

func seconds(_ body: () -> Void) -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

/// Seconds of CPU time this process has used (all its threads).
func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// The best of `repeats` timed runs after one warm-up: (wall seconds, CPU seconds of the process).
func bestOf(_ repeats: Int, _ run: () -> Void) -> (wall: Double, cpu: Double) {
    run()  // warm-up: page faults, thread start, packing buffers
    var wall = Double.infinity, cpu = Double.infinity
    for _ in 0..<repeats {
        let c0 = processCPUSeconds()
        wall = min(wall, seconds(run))
        cpu = min(cpu, processCPUSeconds() - c0)
    }
    return (wall, cpu)
}

/// gemm: our GEMM wrappers on Linear shapes (the Qwen2.5-0.5B ones, or a model folder's) at T
/// tokens, in the three layouts a Linear layer uses — forward y = x·Wᵀ (NT), input gradient
/// dx = dy·W (NN), weight gradient dW = dyᵀ·x (TN), or only those `variants` names. Prints the best
/// of R timed runs (after one warm-up) as GFLOP/s; the JSON lines carry each shape's `count` per
/// forward pass, so a script can weigh them into a training step's sgemm ceiling.
///
/// NT and NN are timed on both OpenBLAS's sgemm (`GEMM.blas`) and our packed kernel
/// (`GEMM.packed`); `seconds` is the faster of the two, so the ceiling a script builds from it is
/// the best this machine does on each shape, not whichever kernel GEMM happens to pick
/// (`blas_seconds`, `packed_seconds` and `kernel` say which).
func runGemm(tokens T: Int, repeats: Int, json: Bool, shapes: [GemmCase] = qwen05BShapes,
             variants only: Set<String> = ["NT", "NN", "TN"]) {
    Threading.configure(threads: nil)
    let packed = GEMM.packedBuiltIn
    if !json {
        print("qwenft GEMM, T=\(T), threads=\(Threading.count), best of \(repeats) (wall clock); GFLOP/s of OpenBLAS sgemm and our packed kernel")
        print("layer                   variant  M x N x K                  ms  sgemm GF/s  packed GF/s")
    }
    for c in shapes {
        let C = c.inFeatures, OC = c.outFeatures
        // x (T,C), W (OC,C), y = dy (T,OC), dW (OC,C); freed before the next shape.
        let x = AlignedBuffer<Float>(count: T * C), w = AlignedBuffer<Float>(count: OC * C)
        let y = AlignedBuffer<Float>(count: T * OC)
        let dw = only.contains("TN") ? AlignedBuffer<Float>(count: OC * C) : nil
        fillRandom(x.pointer, x.count, seed: 1)
        fillRandom(w.pointer, w.count, seed: 2)
        fillRandom(y.pointer, y.count, seed: 3)
        let wr = UnsafeRawPointer(w.pointer)
        // (variant, M, N, K, OpenBLAS, ours or nil)
        let variants: [(String, Int, Int, Int, () -> Void, (() -> Void)?)] = [
            ("NT", T, OC, C, { GEMM.blas(transA: false, transB: true, T, OC, C, x.pointer, lda: C, w.pointer, ldb: C, y.pointer, ldc: OC) },
             { GEMM.packed(transB: true, T, OC, C, x.pointer, lda: C, wr, dtype: .f32, ldb: C, y.pointer, ldc: OC) }),   // y = x·Wᵀ
            ("NN", T, C, OC, { GEMM.blas(transA: false, transB: false, T, C, OC, y.pointer, lda: OC, w.pointer, ldb: C, x.pointer, ldc: C) },
             { GEMM.packed(transB: false, T, C, OC, y.pointer, lda: OC, wr, dtype: .f32, ldb: C, x.pointer, ldc: C) }),  // dx = dy·W
            ("TN", OC, C, T, { if let dw { GEMM.tn(OC, C, T, y.pointer, x.pointer, dw.pointer) } }, nil),               // dW = dyᵀ·x
        ]
        for (name, M, N, K, blas, ours) in variants where only.contains(name) {
            let flop = 2 * Double(M) * Double(N) * Double(K)
            let tb = bestOf(repeats, blas).wall
            let tp = packed ? ours.map { bestOf(repeats, $0).wall } : nil
            let best = min(tb, tp ?? .infinity)
            if json {
                let p = tp.map { #","packed_seconds":\#($0)"# } ?? ""
                print(#"{"layer":"\#(c.layer)","variant":"\#(name)","M":\#(M),"N":\#(N),"K":\#(K),"count":\#(c.count),"seconds":\#(best),"gflops":\#(flop / best / 1e9),"blas_seconds":\#(tb)\#(p),"kernel":"\#(best == tb ? "openblas" : "packed")"}"#)
            } else {
                let dims = "\(M) x \(N) x \(K)"
                print(c.layer.padding(toLength: 24, withPad: " ", startingAt: 0) + name.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + dims.padding(toLength: 22, withPad: " ", startingAt: 0)
                      + String(format: "%9.2f  %10.1f", best * 1000, flop / tb / 1e9)
                      + (tp.map { String(format: "  %11.1f", flop / $0 / 1e9) } ?? "            -"))
            }
        }
    }
}

/// gemm --kernels: OpenBLAS's sgemm against our packed kernel on each shape's forward (NT) and
/// input gradient (NN), on 1 thread and on all of them, with an f32 weight and with a bf16 one
/// (sgemm after widening the weight into f32 tiles, as the Linear layers did; ours packing the
/// bf16 directly). Best of R by wall clock and by process CPU time (GFLOP per CPU second × the
/// threads: what the product would reach undisturbed; the one to read on a busy machine).
func runGemmKernels(tokens T: Int, repeats: Int, shapes: [GemmCase]) {
    Threading.configure(threads: nil)
    let all = Threading.count
    print("qwenft GEMM kernels, T=\(T), best of \(repeats); GFLOP/s by wall clock / by CPU time")
    print("layer                   variant thr  sgemm f32       packed f32      widen+sgemm bf16  packed bf16")
    let tileElements = 1 << 23  // LinearScratch.defaultTileElements
    for c in shapes {
        let C = c.inFeatures, OC = c.outFeatures
        let x = AlignedBuffer<Float>(count: T * C), w = AlignedBuffer<Float>(count: OC * C)
        let y = AlignedBuffer<Float>(count: T * OC), h = AlignedBuffer<UInt16>(count: OC * C)
        fillRandom(x.pointer, x.count, seed: 1)
        fillRandom(w.pointer, w.count, seed: 2)
        fillRandom(y.pointer, y.count, seed: 3)
        convertF32ToBF16(w.pointer, h.pointer, count: w.count)
        let wh = WeightMatrix(rows: OC, cols: C, dtype: .bf16, base: UnsafeRawPointer(h.pointer))
        let tile = AlignedBuffer<Float>(count: wh.widenedTileRows(tileElements: tileElements) * C)
        let wr = UnsafeRawPointer(w.pointer), hr = UnsafeRawPointer(h.pointer)
        for name in ["NT", "NN"] {
            let nt = name == "NT"
            let (M, N, K) = nt ? (T, OC, C) : (T, C, OC)
            let a = nt ? x.pointer : y.pointer, out = nt ? y.pointer : x.pointer
            // x·Wᵀ: C (T,OC), ldb C; dy·W: C (T,C), W is (K,N) = (OC,C), ldb C.
            let cases: [(Int) -> Void] = [
                { t in GEMM.blas(transA: false, transB: nt, M, N, K, a, lda: K, w.pointer, ldb: C, out, ldc: N, threads: t) },
                { t in GEMM.packed(transB: nt, M, N, K, a, lda: K, wr, dtype: .f32, ldb: C, out, ldc: N, threads: t) },
                { t in
                    wh.forEachWidenedTile(into: tile.pointer, tileElements: tileElements) { r0, rows in
                        if nt {
                            GEMM.blas(transA: false, transB: true, M, rows, K, a, lda: K, tile.pointer, ldb: C,
                                      out + r0, ldc: N, threads: t)
                        } else {
                            GEMM.blas(transA: false, transB: false, M, N, rows, a + r0, lda: K, tile.pointer, ldb: C,
                                      beta: r0 > 0 ? 1 : 0, out, ldc: N, threads: t)
                        }
                    }
                },
                { t in GEMM.packed(transB: nt, M, N, K, a, lda: K, hr, dtype: .bf16, ldb: C, out, ldc: N, threads: t) },
            ]
            let flop = 2 * Double(M) * Double(N) * Double(K)
            for t in Set([1, all]).sorted() {
                var line = c.layer.padding(toLength: 24, withPad: " ", startingAt: 0) + name.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + String(t).padding(toLength: 5, withPad: " ", startingAt: 0)
                for run in cases {
                    let b = Threading.withCount(t) { bestOf(repeats) { run(t) } }
                    line += String(format: "%6.1f / %-6.1f  ", flop / b.wall / 1e9, flop * Double(t) / b.cpu / 1e9)
                }
                print(line)
            }
        }
    }
}

/// convert: fp32 <-> bf16 / f16 over 64M elements (a 0.5B model is 494M), elements per second.
func runConvert(repeats: Int) {
    Threading.configure(threads: nil)
    let n = 1 << 26
    let f = AlignedBuffer<Float>(count: n), h = AlignedBuffer<UInt16>(count: n)
    fillRandom(f.pointer, n, seed: 4)
    print("conversions over \(n) elements, threads=\(Threading.count), best of \(repeats)")
    let cases: [(String, () -> Void)] = [
        ("f32 -> bf16", { convertF32ToBF16(f.pointer, h.pointer, count: n) }),
        ("bf16 -> f32", { convertBF16ToF32(h.pointer, f.pointer, count: n) }),
        ("f32 -> f16", { convertF32ToF16(f.pointer, h.pointer, count: n) }),
        ("f16 -> f32", { convertF16ToF32(h.pointer, f.pointer, count: n) }),
    ]
    for (name, run) in cases {
        run()
        var best = Double.infinity
        for _ in 0..<repeats { best = min(best, seconds(run)) }
        print(name.padding(toLength: 14, withPad: " ", startingAt: 0)
              + String(format: "%8.1f ms  %7.2f G elements/s  %6.1f GB/s", best * 1000, Double(n) / best / 1e9, Double(n) * 6 / best / 1e9))
    }
}

/// roundtrip: every tensor of IN widened to fp32 (kept in memory, as a trainer holds weights),
/// then narrowed back to bf16 and written to OUT.
func runRoundtrip(_ src: String, _ dst: String) throws {
    Threading.configure(threads: nil)
    var held: [(name: String, shape: [Int], values: AlignedBuffer<Float>)] = []
    let load = try seconds {
        let store = try SafeTensorsStore(path: src)
        for t in store.tensors { held.append((t.name, t.shape, try t.floatBuffer())) }
    }
    let save = try seconds {
        try SafeTensorsWriter.write(held.map { TensorToWrite(name: $0.name, shape: $0.shape, pointer: $0.values.pointer, as: .bf16) },
                                    to: dst)
    }
    print(String(format: "qwenft: load+widen %.2f s, narrow+save %.2f s, total %.2f s", load, save, load + save))
}

func seconds(_ body: () throws -> Void) throws -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}
