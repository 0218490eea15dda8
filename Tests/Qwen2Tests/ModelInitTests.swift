import Foundation
import QwenCore
import Testing
@testable import Qwen2

/// `qwenft init`'s random weights must be random: no 64K-value block may repeat another's values.
/// Before the fix each block's SplitMix64 was seeded with `seed ^ b·γ` (γ its own increment), so
/// block b+m replayed block b shifted by m draws; the tiny preset's embedding had duplicate rows
/// (row 23 "8" == row 131093), tied logits that made LoRA plateau at loss ~0.7 on the quickstart.
@Suite struct ModelInitTests {
    /// The values of blocks 0..<8 of one tensor, as bit patterns.
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
            // Independent normals share a float32 value only by chance: a handful in 512K.
            #expect(repeats < 100, "seed \(seed): \(repeats) values of one block repeat in another")
        }
    }

    @Test func tensorsOfTheSameSeedFamilyDiffer() {
        // Two tensors of one model (streams 1 and 2) must not replay each other either.
        let a = blockValues(seed: 0x1000_0001, blocks: 2), b = blockValues(seed: 0x1000_0002, blocks: 2)
        let common = Set(a.joined()).intersection(Set(b.joined())).count
        #expect(common < 100, "\(common) values shared by two tensors")
    }
}
