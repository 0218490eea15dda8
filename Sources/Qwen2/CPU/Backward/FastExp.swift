import QwenCore

// e^x eight lanes at a time, for the elementwise parts of training (SwiGLU, attention
// probabilities) where the scalar expf is a tenth of a layer's time. Cephes' expf method:
// x = n·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts), e^r by a degree-6 polynomial, 2^n in the
// exponent bits. Within 2 ulp of expf on [−87, 88]; inputs are clamped there, so −inf gives
// ≈ 1e-38, not 0 (callers zero masked entries themselves).

@inlinable @inline(__always)
public func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Masked selects, not pointwiseMin/Max: those compile to a call and a scalar loop over lanes
    // (NaN-aware), which made SwiGLU several times slower. NaN stays NaN here.
    let x = x.replacing(with: SIMD8(repeating: 88), where: x .> 88).replacing(with: SIMD8(repeating: -87), where: x .< -87)
    // n = round(x·log2 e): adding 1.5·2²³ leaves the rounded integer in the low mantissa bits
    // (the same trick gives its bits without a float-to-int conversion).
    let magic = SIMD8<Float>(repeating: 12_582_912)
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    let z = r * r
    var y = SIMD8<Float>(repeating: 1.987_569_15e-4)
    y = y * r + 1.398_199_95e-3
    y = y * r + 8.333_451_9e-3
    y = y * r + 4.166_579_59e-2
    y = y * r + 1.666_666_55e-1
    y = y * r + 5.000_000_1e-1
    y = y * z + r + 1
    let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
    let bits = (ni &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: SIMD8<Float>.self)
}

// The loops below run eight lanes at a time and give a shorter tail to load8/store8, which pad it
// with zeros, so every element gets the same arithmetic. They are explicit loops over
// @inline(__always) functions, not a map taking a closure literal: that closure was not inlined
// (a call per eight floats, several times the cost of the arithmetic).

@inlinable @inline(__always)
func load8(_ p: UnsafePointer<Float>, _ i: Int, _ lanes: Int) -> SIMD8<Float> {
    if lanes == 8 { return UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self) }
    var v = SIMD8<Float>()
    for l in 0..<lanes { v[l] = p[i + l] }
    return v
}

@inlinable @inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ lanes: Int) {
    if lanes == 8 { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: SIMD8<Float>.self); return }
    for l in 0..<lanes { p[i + l] = v[l] }
}

/// row[j] = e^(row[j] − shift) for j in 0..<count.
@inlinable
public func expShifted(_ row: UnsafeMutablePointer<Float>, count: Int, shift: Float) {
    var i = 0
    while i + 8 <= count {
        store8(fastExp(load8(row, i, 8) - shift), row, i, 8)
        i += 8
    }
    if i < count { store8(fastExp(load8(row, i, count - i) - shift), row, i, count - i) }
}

/// silu(g)·u = g·u / (1 + e^−g), eight lanes.
@inlinable @inline(__always)
func swiglu8(_ g: SIMD8<Float>, _ u: SIMD8<Float>) -> SIMD8<Float> { g * u / (1 + fastExp(-g)) }

/// The training SwiGLU: out (count) = silu(gate)·up = gate·up / (1 + e^−gate), vectorised.
/// Forward and the backward's recomputation both use it, so they agree bit for bit.
public func swigluForwardFast(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                              up: UnsafePointer<Float>, count: Int) {
    parallelChunks((count + 7) / 8, minChunk: 512) { r in
        let lo = r.lowerBound * 8, hi = min(count, r.upperBound * 8)
        var i = lo
        while i + 8 <= hi {
            store8(swiglu8(load8(gate, i, 8), load8(up, i, 8)), out, i, 8)
            i += 8
        }
        if i < hi { store8(swiglu8(load8(gate, i, hi - i), load8(up, i, hi - i)), out, i, hi - i) }
    }
}
