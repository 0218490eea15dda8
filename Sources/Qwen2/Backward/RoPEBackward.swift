import QwenCore

// RoPE backward: the rotation is orthogonal, so the gradient is the inverse rotation (by −angle).
// In place on dx (N, H, d), rows at position firstPosition + (n mod T) or positions[n], as ropeForward:
// forward  (x1, x2) → (x1·c − x2·s, x2·c + x1·s)
// backward (g1, g2) → (g1·c + g2·s, g2·c − g1·s)

public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable,
                         N: Int, T: Int, H: Int, firstPosition: Int, positions: UnsafePointer<Int32>? = nil) {
    let d = table.headDim, half = d / 2
    parallelFor(N, minChunk: 4) { n in
        let p = positions.map { Int($0[n]) } ?? firstPosition + n % T
        let c = table.cos.pointer + p * half, s = table.sin.pointer + p * half
        for h in 0..<H {
            let v = dx + (n * H + h) * d
            for i in 0..<half {
                let g1 = v[i], g2 = v[i + half]
                v[i] = g1 * c[i] + g2 * s[i]
                v[i + half] = g2 * c[i] - g1 * s[i]
            }
        }
    }
}
