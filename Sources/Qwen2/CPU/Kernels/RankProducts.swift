import QwenCore
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

// LoRA's rank-r products: every product of an adapter's forward and backward has one side r
// (8 by default), where sgemm spends much of its time packing the long operand and on edge tiles
// (OpenBLAS 0.3.21, one thread, 0.5B shapes, warm caches: x·Aᵀ 36–43 GFLOP/s, all six 50 weighted
// by a step, against 85 on the base products). Three loops over the operands as they lie, 8-wide
// fused multiply-adds in registers, no packing: 68 GFLOP/s weighted, the same shapes. In a training
// step the operands mostly come from memory (the base products stream their weights through the
// caches in between), where the gain shrinks to about 20 % (Scripts/bench/README.md, issue 17).
//
//   rankProject  Y (M,r)  = α · X (M,K) · Wᵀ, W (r,K)        x·Aᵀ, and dout·B through Bᵀ
//   rankExpand   Y (M,N) (+)= α · X (M,r) · W (r,N)          xa·Bᵀ through Bᵀ, and dxa·A
//   rankGather   Y (r,N) (+)= α · Xᵀ · Z, X (M,r), Z (M,N)   dA, and dB stored transposed
//
// Each element of Y is summed in one fixed order whichever tile or thread computes it — in
// rankProject 8 lane sums over K in steps of 8, added as (0+4, 1+5, 2+6, 3+7) then pairwise, then
// K's tail in order; in the other two one fused chain over r or M from zero — and then combined
// as α·s or, accumulating, fma(α, s, y). So the bits do not depend on the thread count or on
// where a split falls (unlike sgemm's edge tiles).

/// Below this many multiply-adds a product stays on the calling thread (as GEMM.splitThreshold).
private let rankSplitThreshold = 1 << 18

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ p: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// c + a·b, rounded once (vfmadd231ps on x86-64; the same bits as Float.addingProduct per lane).
@inline(__always)
private func fma8(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64)
    return _mm256_fmadd_ps(a, b, c)
    #else
    return c.addingProduct(a, b)
    #endif
}

@inline(__always)
private func laneSum(_ v: SIMD8<Float>) -> Float {
    let h = v.lowHalf + v.highHalf
    let q = h.lowHalf + h.highHalf
    return q[0] + q[1]
}

/// The result element: α·s, or with `accumulate` fma(α, s, y).
@inline(__always)
private func combine(_ y: Float, _ s: Float, _ alpha: Float, _ accumulate: Bool) -> Float {
    accumulate ? y.addingProduct(alpha, s) : alpha * s
}

@inline(__always)
private func combine8(_ y: UnsafeMutablePointer<Float>, _ s: SIMD8<Float>, _ alpha: SIMD8<Float>, _ accumulate: Bool) {
    store8(y, accumulate ? fma8(alpha, s, load8(y)) : alpha * s)
}

/// Y (M,r) = alpha · X (M,K) · Wᵀ, W (r,K): each row of X against the r rows of W (dot products
/// over K). Tiles of 3 rows × 4 ranks (12 accumulators: 7 loads feed 12 multiply-adds, the most
/// that 16 registers allow); a partial tile repeats its last row or rank (computed, not stored).
public func rankProject(_ M: Int, _ r: Int, _ K: Int, _ X: UnsafePointer<Float>, _ W: UnsafePointer<Float>,
                        _ Y: UnsafeMutablePointer<Float>, alpha: Float = 1) {
    guard M > 0, r > 0 else { return }
    let groups = (M + 2) / 3
    let K8 = K & ~7
    parallelChunks(groups, minChunk: M * r * K < rankSplitThreshold ? groups : 1) { range in
        for g in range {
            let i0 = g * 3, rows = min(3, M - i0)
            let x0 = X + i0 * K, x1 = X + min(i0 + 1, M - 1) * K, x2 = X + min(i0 + 2, M - 1) * K
            var k0 = 0
            while k0 < r {
                let ranks = min(4, r - k0)
                let w0 = W + k0 * K, w1 = W + min(k0 + 1, r - 1) * K
                let w2 = W + min(k0 + 2, r - 1) * K, w3 = W + min(k0 + 3, r - 1) * K
                var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
                var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
                var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>(), a23 = SIMD8<Float>()
                var p = 0
                while p < K8 {
                    let u0 = load8(x0 + p), u1 = load8(x1 + p), u2 = load8(x2 + p)
                    var v = load8(w0 + p)
                    a00 = fma8(u0, v, a00); a10 = fma8(u1, v, a10); a20 = fma8(u2, v, a20)
                    v = load8(w1 + p)
                    a01 = fma8(u0, v, a01); a11 = fma8(u1, v, a11); a21 = fma8(u2, v, a21)
                    v = load8(w2 + p)
                    a02 = fma8(u0, v, a02); a12 = fma8(u1, v, a12); a22 = fma8(u2, v, a22)
                    v = load8(w3 + p)
                    a03 = fma8(u0, v, a03); a13 = fma8(u1, v, a13); a23 = fma8(u2, v, a23)
                    p += 8
                }
                @inline(__always) func put(_ i: Int, _ k: Int, _ acc: SIMD8<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>) {
                    var s = laneSum(acc)
                    for q in K8..<K { s = s.addingProduct(x[q], w[q]) }
                    Y[(i0 + i) * r + k0 + k] = alpha * s
                }
                put(0, 0, a00, x0, w0)
                if ranks > 1 { put(0, 1, a01, x0, w1) }
                if ranks > 2 { put(0, 2, a02, x0, w2) }
                if ranks > 3 { put(0, 3, a03, x0, w3) }
                if rows > 1 {
                    put(1, 0, a10, x1, w0)
                    if ranks > 1 { put(1, 1, a11, x1, w1) }
                    if ranks > 2 { put(1, 2, a12, x1, w2) }
                    if ranks > 3 { put(1, 3, a13, x1, w3) }
                }
                if rows > 2 {
                    put(2, 0, a20, x2, w0)
                    if ranks > 1 { put(2, 1, a21, x2, w1) }
                    if ranks > 2 { put(2, 2, a22, x2, w2) }
                    if ranks > 3 { put(2, 3, a23, x2, w3) }
                }
                k0 += 4
            }
        }
    }
}

/// Y (M,N) = alpha · X (M,r) · W (r,N), or with `accumulate` Y += …: each row of Y a combination
/// of W's r rows. Tiles of 6 rows × 16 columns (12 accumulators), then 8 columns, then single ones.
public func rankExpand(_ M: Int, _ N: Int, _ r: Int, _ X: UnsafePointer<Float>, _ W: UnsafePointer<Float>,
                       _ Y: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) {
    guard M > 0, N > 0 else { return }
    let blocks = (N + 15) / 16
    let av = SIMD8<Float>(repeating: alpha)
    parallelChunks(blocks, minChunk: M * N * r < rankSplitThreshold ? blocks : 1) { range in
        // Row groups outer, so Y streams row by row; the thread's columns of W (r × its share of
        // N) stay in L1/L2.
        let j0 = range.lowerBound * 16, j1 = min(N, range.upperBound * 16)
        let j16 = j0 + (j1 - j0) / 16 * 16
        var i0 = 0
        while i0 < M {
            let xs0 = X + i0 * r, xs1 = X + min(i0 + 1, M - 1) * r, xs2 = X + min(i0 + 2, M - 1) * r
            let xs3 = X + min(i0 + 3, M - 1) * r, xs4 = X + min(i0 + 4, M - 1) * r, xs5 = X + min(i0 + 5, M - 1) * r
            let rows = min(6, M - i0)
            var j = j0
            while j < j16 {
                var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
                var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
                var a40 = SIMD8<Float>(), a41 = SIMD8<Float>(), a50 = SIMD8<Float>(), a51 = SIMD8<Float>()
                for k in 0..<r {
                    let w = W + k * N + j
                    let v0 = load8(w), v1 = load8(w + 8)
                    var b = SIMD8<Float>(repeating: xs0[k])
                    a00 = fma8(b, v0, a00); a01 = fma8(b, v1, a01)
                    b = SIMD8<Float>(repeating: xs1[k])
                    a10 = fma8(b, v0, a10); a11 = fma8(b, v1, a11)
                    b = SIMD8<Float>(repeating: xs2[k])
                    a20 = fma8(b, v0, a20); a21 = fma8(b, v1, a21)
                    b = SIMD8<Float>(repeating: xs3[k])
                    a30 = fma8(b, v0, a30); a31 = fma8(b, v1, a31)
                    b = SIMD8<Float>(repeating: xs4[k])
                    a40 = fma8(b, v0, a40); a41 = fma8(b, v1, a41)
                    b = SIMD8<Float>(repeating: xs5[k])
                    a50 = fma8(b, v0, a50); a51 = fma8(b, v1, a51)
                }
                let y = Y + i0 * N + j
                combine8(y, a00, av, accumulate); combine8(y + 8, a01, av, accumulate)
                if rows > 1 { combine8(y + N, a10, av, accumulate); combine8(y + N + 8, a11, av, accumulate) }
                if rows > 2 { combine8(y + 2 * N, a20, av, accumulate); combine8(y + 2 * N + 8, a21, av, accumulate) }
                if rows > 3 { combine8(y + 3 * N, a30, av, accumulate); combine8(y + 3 * N + 8, a31, av, accumulate) }
                if rows > 4 { combine8(y + 4 * N, a40, av, accumulate); combine8(y + 4 * N + 8, a41, av, accumulate) }
                if rows > 5 { combine8(y + 5 * N, a50, av, accumulate); combine8(y + 5 * N + 8, a51, av, accumulate) }
                j += 16
            }
            i0 += 6
        }
        var j = j16
        if j + 8 <= j1 {
            for i in 0..<M {
                var a = SIMD8<Float>()
                for k in 0..<r { a = fma8(SIMD8<Float>(repeating: X[i * r + k]), load8(W + k * N + j), a) }
                combine8(Y + i * N + j, a, av, accumulate)
            }
            j += 8
        }
        while j < j1 {
            for i in 0..<M {
                var s: Float = 0
                for k in 0..<r { s = s.addingProduct(X[i * r + k], W[k * N + j]) }
                Y[i * N + j] = combine(Y[i * N + j], s, alpha, accumulate)
            }
            j += 1
        }
    }
}

/// Y (r,N) = alpha · Xᵀ · Z, X (M,r), Z (M,N), or with `accumulate` Y += …: the sum over M of
/// outer products, the weight-gradient form. With `transposed`, Y is stored (N,r) (dB from
/// doutᵀ·xa without a transposed copy). Tiles of 4 ranks × 24 columns (12 accumulators); the
/// ranks of a partial tile repeat its last rank (computed, not stored).
public func rankGather(_ M: Int, _ r: Int, _ N: Int, _ X: UnsafePointer<Float>, _ Z: UnsafePointer<Float>,
                       _ Y: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false,
                       transposed: Bool = false) {
    guard r > 0, N > 0 else { return }
    let blocks = (N + 23) / 24
    let av = SIMD8<Float>(repeating: alpha)
    /// Stores the 8 columns j… of rank k.
    @inline(__always) func put(_ k: Int, _ j: Int, _ s: SIMD8<Float>) {
        if transposed {
            for l in 0..<8 { Y[(j + l) * r + k] = combine(Y[(j + l) * r + k], s[l], alpha, accumulate) }
        } else {
            combine8(Y + k * N + j, s, av, accumulate)
        }
    }
    parallelChunks(blocks, minChunk: M * N * r < rankSplitThreshold ? blocks : 1) { range in
        let j0 = range.lowerBound * 24, j1 = min(N, range.upperBound * 24)
        var j = j0
        while j + 24 <= j1 {
            var k0 = 0
            while k0 < r {
                let k1 = min(k0 + 1, r - 1), k2 = min(k0 + 2, r - 1), k3 = min(k0 + 3, r - 1)
                var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
                var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
                var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>()
                var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>()
                var x = X, z = Z + j
                for _ in 0..<M {
                    let v0 = load8(z), v1 = load8(z + 8), v2 = load8(z + 16)
                    var b = SIMD8<Float>(repeating: x[k0])
                    a00 = fma8(b, v0, a00); a01 = fma8(b, v1, a01); a02 = fma8(b, v2, a02)
                    b = SIMD8<Float>(repeating: x[k1])
                    a10 = fma8(b, v0, a10); a11 = fma8(b, v1, a11); a12 = fma8(b, v2, a12)
                    b = SIMD8<Float>(repeating: x[k2])
                    a20 = fma8(b, v0, a20); a21 = fma8(b, v1, a21); a22 = fma8(b, v2, a22)
                    b = SIMD8<Float>(repeating: x[k3])
                    a30 = fma8(b, v0, a30); a31 = fma8(b, v1, a31); a32 = fma8(b, v2, a32)
                    x += r; z += N
                }
                let ranks = min(4, r - k0)
                put(k0, j, a00); put(k0, j + 8, a01); put(k0, j + 16, a02)
                if ranks > 1 { put(k1, j, a10); put(k1, j + 8, a11); put(k1, j + 16, a12) }
                if ranks > 2 { put(k2, j, a20); put(k2, j + 8, a21); put(k2, j + 16, a22) }
                if ranks > 3 { put(k3, j, a30); put(k3, j + 8, a31); put(k3, j + 16, a32) }
                k0 += 4
            }
            j += 24
        }
        while j + 8 <= j1 {
            for k in 0..<r {
                var a = SIMD8<Float>()
                for i in 0..<M { a = fma8(SIMD8<Float>(repeating: X[i * r + k]), load8(Z + i * N + j), a) }
                put(k, j, a)
            }
            j += 8
        }
        while j < j1 {
            for k in 0..<r {
                var s: Float = 0
                for i in 0..<M { s = s.addingProduct(X[i * r + k], Z[i * N + j]) }
                let y = transposed ? Y + j * r + k : Y + k * N + j
                y.pointee = combine(y.pointee, s, alpha, accumulate)
            }
            j += 1
        }
    }
}

/// out (C,R) = inp (R,C)ᵀ: B (OC,r) as Bᵀ (r,OC) for rankProject and rankExpand.
public func transposeInto(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, rows R: Int, cols C: Int) {
    for j in 0..<C {  // writes in order; the reads stride by C (r floats: a cache line or two)
        for i in 0..<R { out[j * R + i] = inp[i * C + j] }
    }
}
