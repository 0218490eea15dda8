import Foundation
import Testing

// Finite-difference checking for the backward kernels. The forward kernels run in fp32, so the
// loss L = Σ w ⊙ out is summed in Double and central differences use a step of 1e-2 (relative to
// values of order 1): the truncation error (∝ step²) and the fp32 rounding (∝ 1e-7/step) then both
// stay near 1e-4 of the gradient, well inside the tolerance.

/// Seeded normal numbers (SplitMix64 + Box–Muller), the same on every machine.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    mutating func normal() -> Float {
        let u = max(uniform(), 1e-300), v = uniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
    mutating func normals(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in normal() * scale } }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Σ w[i]·out[i] in Double.
func weightedSum(_ out: [Float], _ w: [Float]) -> Double {
    var s = 0.0
    for i in out.indices { s += Double(out[i]) * Double(w[i]) }
    return s
}

/// Compares `analytic` = ∂L/∂x with central differences of `loss` at `x`: along three random
/// directions (the whole gradient at once) and at up to `coordinates` single elements.
/// Relative error: |fd − g| / max(|g|, 1e-3·‖g‖∞·√n) for directions; for elements the error is
/// measured against ‖g‖∞.
func checkGradient(_ label: String, x: [Float], analytic: [Float], step: Float = 1e-2,
                   tolerance: Double = 2e-3, coordinates: Int = 12, seed: UInt64 = 7,
                   loss: ([Float]) -> Double) {
    precondition(x.count == analytic.count)
    var rng = TestRandom(seed: seed)
    let gmax = analytic.map { Double(abs($0)) }.max() ?? 0
    #expect(gmax > 0, "\(label): gradient is identically zero")
    for _ in 0..<3 {
        let u = rng.normals(x.count)
        var plus = x, minus = x
        for i in x.indices { plus[i] += step * u[i]; minus[i] -= step * u[i] }
        let fd = (loss(plus) - loss(minus)) / (2 * Double(step))
        var g = 0.0
        for i in x.indices { g += Double(analytic[i]) * Double(u[i]) }
        let denom = max(abs(g), 1e-3 * gmax * Double(x.count).squareRoot())
        let err = abs(fd - g) / denom
        #expect(err < tolerance, "\(label): directional derivative \(g) vs finite difference \(fd) (rel \(err))")
    }
    for _ in 0..<min(coordinates, x.count) {
        let i = rng.int(x.count)
        var plus = x, minus = x
        plus[i] += step; minus[i] -= step
        let fd = (loss(plus) - loss(minus)) / (2 * Double(step))
        let err = abs(fd - Double(analytic[i])) / gmax
        #expect(err < tolerance, "\(label)[\(i)]: \(analytic[i]) vs finite difference \(fd) (rel to max \(err))")
    }
}
