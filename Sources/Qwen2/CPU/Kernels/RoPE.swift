import Foundation
import QwenCore

/// Rotary position tables, computed in fp32 as transformers' Qwen2RotaryEmbedding:
/// inv_freq[i] = 1 / theta^(2i/d), angle = position · inv_freq[i], cos/sin of the fp32 angle.
/// cos, sin (positions, d/2): the half-split form repeats each value for i and i + d/2.
public final class RoPETable: @unchecked Sendable {
    public let headDim: Int
    public let positions: Int
    public let cos: AlignedBuffer<Float>
    public let sin: AlignedBuffer<Float>

    public init(headDim: Int, theta: Double, positions: Int) {
        self.headDim = headDim
        self.positions = positions
        let half = headDim / 2
        cos = AlignedBuffer(count: positions * half)
        sin = AlignedBuffer(count: positions * half)
        let base = Float(theta)
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half {
            let exponent = Float(2 * i) / Float(headDim)
            invFreq[i] = 1 / powf(base, exponent)
        }
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]
                cos[p * half + i] = cosf(angle)
                sin[p * half + i] = sinf(angle)
            }
        }
    }
}

/// In place on x (N, H, d): rotate_half form, x1 = x[:d/2], x2 = x[d/2:],
/// out = (x1·cos − x2·sin, x2·cos + x1·sin) at position `firstPosition + (n mod T)`, or at
/// `positions[n]` (N) when given (packed training rows restart at 0 for every sample).
public func ropeForward(_ x: UnsafeMutablePointer<Float>, table: RoPETable,
                        N: Int, T: Int, H: Int, firstPosition: Int, positions: UnsafePointer<Int32>? = nil) {
    ropeRotate(x, table: table, N: N, T: T, H: H, firstPosition: firstPosition, positions: positions, sinSign: 1)
}

/// The rotation by +angle (`sinSign` 1, forward) or −angle (`sinSign` −1, backward: the rotation
/// is orthogonal, so its gradient is the inverse rotation). Negating sin is exact, so both
/// directions give the same bits as writing each out by hand.
func ropeRotate(_ x: UnsafeMutablePointer<Float>, table: RoPETable, N: Int, T: Int, H: Int,
                firstPosition: Int, positions: UnsafePointer<Int32>?, sinSign: Float) {
    let d = table.headDim, half = d / 2
    parallelFor(N, minChunk: 4) { n in
        let p = positions.map { Int($0[n]) } ?? firstPosition + n % T
        let c = table.cos.pointer + p * half, s = table.sin.pointer + p * half
        for h in 0..<H {
            let v = x + (n * H + h) * d
            for i in 0..<half {
                let x1 = v[i], x2 = v[i + half], si = sinSign * s[i]
                v[i] = x1 * c[i] - x2 * si
                v[i + half] = x2 * c[i] + x1 * si
            }
        }
    }
}
