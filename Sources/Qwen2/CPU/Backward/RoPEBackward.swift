import QwenCore

// RoPE backward: the rotation is orthogonal, so the gradient is the inverse rotation (by −angle).
// In place on dx (N, H, d), rows at position firstPosition + (n mod T) or positions[n], as ropeForward:
// forward  (x1, x2) → (x1·c − x2·s, x2·c + x1·s)
// backward (g1, g2) → (g1·c + g2·s, g2·c − g1·s)

public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, table: RoPETable,
                         N: Int, T: Int, H: Int, firstPosition: Int, positions: UnsafePointer<Int32>? = nil) {
    ropeRotate(dx, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions, sinSign: -1)
}
