import Testing
@testable import QwenCore

@Suite(.serialized) struct ThreadingTests {
    @Test func configureSetsTheCountAndEveryIndexRunsOnce() {
        let before = Threading.count
        defer { Threading.configure(threads: before) }
        for threads in [1, 3] {
            Threading.configure(threads: threads)
            #expect(Threading.count == threads)
            let n = 100_003
            let hits = AlignedBuffer<Int32>(count: n)
            parallelFor(n) { i in hits[i] += 1 }
            #expect(hits.toArray().allSatisfy { $0 == 1 })
        }
        Threading.configure(threads: 0)
        #expect(Threading.count == 1)
    }

    @Test func alignedBuffersAreAlignedAndZeroed() {
        for n in [0, 1, 17, 1000] {
            let b = AlignedBuffer<Float>(count: n)
            #expect(Int(bitPattern: b.pointer) % 64 == 0)
            #expect(b.toArray() == [Float](repeating: 0, count: n))
        }
    }
}
