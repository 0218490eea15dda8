import Testing
@testable import QwenCore
import TestSupport

@Suite(.serialized) struct ThreadingTests {
    /// The count is scoped to this test's task: tests running beside it (whose bits depend on
    /// the thread count) never see it change.
    @Test func scopedCountAndEveryIndexRunsOnce() {
        let before = Threading.count
        for threads in [1, 3] {
            Threading.withCount(threads) {
                #expect(Threading.count == threads)
                let n = 100_003
                let hits = AlignedBuffer<Int32>(count: n)
                parallelFor(n) { i in hits[i] += 1 }
                #expect(hits.toArray().allSatisfy { $0 == 1 })
            }
        }
        #expect(Threading.count == before)
        #expect(Threading.resolvedCount(0) == 1 && Threading.resolvedCount(-2) == 1 && Threading.resolvedCount(5) == 5)
        #expect(Threading.resolvedCount(nil) == Threading.defaultCount())
    }

    @Test func alignedBuffersAreAlignedAndZeroed() {
        for n in [0, 1, 17, 1000] {
            let b = AlignedBuffer<Float>(count: n)
            #expect(Int(bitPattern: b.pointer) % 64 == 0)
            #expect(b.toArray() == [Float](repeating: 0, count: n))
        }
    }
}
