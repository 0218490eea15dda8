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

/// gemm: our GEMM wrappers on Linear shapes (the Qwen2.5-0.5B ones, or a model folder's) at T
/// tokens, in the three layouts a Linear layer uses — forward y = x·Wᵀ (NT), input gradient
/// dx = dy·W (NN), weight gradient dW = dyᵀ·x (TN), or only those `variants` names. Prints the best
/// of R timed runs (after one warm-up) as GFLOP/s; the JSON lines carry each shape's `count` per
/// forward pass, so a script can weigh them into a training step's sgemm ceiling.
func runGemm(tokens T: Int, repeats: Int, json: Bool, shapes: [GemmCase] = qwen05BShapes,
             variants only: Set<String> = ["NT", "NN", "TN"]) {
    Threading.configure(threads: nil)
    if !json {
        print("qwenft GEMM (OpenBLAS via cblas_sgemm), T=\(T), threads=\(Threading.count), best of \(repeats)")
        print("layer                   variant  M x N x K                  ms    GFLOP/s")
    }
    for c in shapes {
        let C = c.inFeatures, OC = c.outFeatures
        // x (T,C), W (OC,C), y = dy (T,OC), dW (OC,C); freed before the next shape.
        let x = AlignedBuffer<Float>(count: T * C), w = AlignedBuffer<Float>(count: OC * C)
        let y = AlignedBuffer<Float>(count: T * OC), dw = AlignedBuffer<Float>(count: OC * C)
        fillRandom(x.pointer, x.count, seed: 1)
        fillRandom(w.pointer, w.count, seed: 2)
        fillRandom(y.pointer, y.count, seed: 3)
        // (variant, M, N, K, run)
        let variants: [(String, Int, Int, Int, () -> Void)] = [
            ("NT", T, OC, C, { GEMM.nt(T, OC, C, x.pointer, w.pointer, y.pointer) }),          // y = x·Wᵀ
            ("NN", T, C, OC, { GEMM.nn(T, C, OC, y.pointer, w.pointer, x.pointer) }),          // dx = dy·W
            ("TN", OC, C, T, { GEMM.tn(OC, C, T, y.pointer, x.pointer, dw.pointer) }),         // dW = dyᵀ·x
        ]
        for (name, M, N, K, run) in variants where only.contains(name) {
            run()  // warm-up: page faults, thread start
            var best = Double.infinity
            for _ in 0..<repeats { best = min(best, seconds(run)) }
            let gflops = 2 * Double(M) * Double(N) * Double(K) / best / 1e9
            if json {
                print(#"{"layer":"\#(c.layer)","variant":"\#(name)","M":\#(M),"N":\#(N),"K":\#(K),"count":\#(c.count),"seconds":\#(best),"gflops":\#(gflops)}"#)
            } else {
                let dims = "\(M) x \(N) x \(K)"
                print(c.layer.padding(toLength: 24, withPad: " ", startingAt: 0) + name.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + dims.padding(toLength: 22, withPad: " ", startingAt: 0)
                      + String(format: "%9.2f  %9.1f", best * 1000, gflops))
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
