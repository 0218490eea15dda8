import Foundation
import QwenCore
import Testing
@testable import Qwen2

/// `qwenft init`'s random weights must be random: no 64K-value block may repeat another's values.
/// Before the fix each block's SplitMix64 was seeded with `seed ^ b·γ` (γ its own increment), so
/// block b+m replayed block b shifted by m draws; the tiny preset's embedding had duplicate rows
/// (row 23 "8" == row 131093), tied logits that made LoRA plateau at loss ~0.7 on the quickstart.
@Suite struct ModelInitTests {
    /// The values of blocks 0..<blocks of one tensor, as bit patterns.
    func blockValues(seed: UInt64, blocks: Int) -> [[UInt32]] {
        let block = 1 << 16
        var buf = [Float](repeating: 0, count: blocks * block)
        buf.withUnsafeMutableBytes { fillNormal($0, count: blocks * block, std: 0.3, seed: seed, dtype: .f32) }
        return (0..<blocks).map { b in buf[(b * block)..<((b + 1) * block)].map(\.bitPattern) }
    }

    @Test func blocksDoNotRepeatEachOther() {
        // 0x1000_0001: the first tensor's seed for `--seed 1` (seed · 2^28 + stream 1).
        for seed: UInt64 in [0x1000_0001, 0x7000_0002, 3] {
            let blocks = blockValues(seed: seed, blocks: 8)
            var seen = Set<UInt32>()
            var repeats = 0
            for b in blocks {
                let mine = Set(b)
                repeats += mine.intersection(seen).count
                seen.formUnion(mine)
            }
            // Independent normals share a float32 value by chance (~2,000 of these 512K: float32
            // has only 2^24 values in ±[0.25, 0.5)); the replaying blocks shared 197K to 330K.
            #expect(repeats < 10_000, "seed \(seed): \(repeats) values of one block repeat in another")
        }
    }
}
