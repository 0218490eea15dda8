import Foundation
import Testing
@testable import Training

@Suite struct DatasetCacheTests {
    @Test func secondLoadComesFromCacheAndMatches() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = try String(contentsOf: dataFixtures.appendingPathComponent("mixed.jsonl"), encoding: .utf8)
        let path = try write(src + "{\"bad\": 1}\n", "mixed.jsonl", in: dir)
        let cache = dir.appendingPathComponent("cache").path
        let options = DatasetOptions(maxSeqLength: 40, onBadRecord: .skip, cacheDirectory: cache)
        var calls = 0
        let first = try loadDataset([path], options: options, progress: { p in
            calls += 1
            #expect(p.recordsDone <= p.recordsTotal && p.recordsTotal == 17)
        })
        #expect(calls >= 1)
        #expect(!first.report.fromCache)
        #expect(first.report.truncated > 0)
        let second = try loadDataset([path], options: options)
        #expect(second.report.fromCache)
        #expect(second.ids == first.ids && second.labels == first.labels && second.starts == first.starts)
        #expect(second.report.truncated == first.report.truncated)
        // The cached report's summary gives the same counts (it once said 0 samples, 0 tokens).
        #expect(second.report.samples == first.report.samples && second.report.tokens == first.report.tokens)
        #expect(second.report.records == first.report.records && second.report.samples > 0)
        #expect(second.report.problemCount == 1 && second.report.problems == first.report.problems)
        #expect(second.report.droppedNoTargets == first.report.droppedNoTargets)
        // The cached bad record still stops an on_bad_record: error run.
        #expect(throws: TrainingError.self) {
            _ = try loadDataset([path], options: DatasetOptions(maxSeqLength: 40, cacheDirectory: cache))
        }
        // Another max_seq_length, template or file content is another cache entry.
        let longer = try loadDataset([path], options: DatasetOptions(maxSeqLength: 41, onBadRecord: .skip, cacheDirectory: cache))
        #expect(!longer.report.fromCache)
        let named = try loadDataset([path], templateName: "qwen", options: options)
        #expect(named.report.fromCache)  // the same template text: same key
        try write(src + "{\"bad\": 2}\n", "mixed.jsonl", in: dir)
        let changed = try loadDataset([path], options: options)
        #expect(!changed.report.fromCache)
    }

    @Test func damagedCacheIsRebuilt() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dataFixtures.appendingPathComponent("mixed.jsonl").path
        let cache = dir.appendingPathComponent("cache").path
        let options = DatasetOptions(maxSeqLength: 4096, cacheDirectory: cache)
        let first = try loadDataset([path], options: options)
        let file = try #require(first.report.cachePath)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: file))
        let again = try loadDataset([path], options: options)
        #expect(!again.report.fromCache && again.ids == first.ids)
        #expect(try loadDataset([path], options: options).report.fromCache)
    }

    @Test func truncationCountsAndDropsSamplesWithoutTargets() throws {
        let dir = try dataTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let long = String(repeating: "word ", count: 200)
        let path = try write("""
        {"messages": [{"role": "user", "content": "\(long)"}, {"role": "assistant", "content": "short"}]}
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\(long)"}]}
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}

        """, "long.jsonl", in: dir)
        let data = try loadDataset([path], options: DatasetOptions(maxSeqLength: 64))
        #expect(data.count == 2)
        #expect(data.report.truncated == 2)
        #expect(data.report.droppedNoTargets == 1)
        #expect(data.report.droppedExamples.first?.line == 1)
        #expect(data.length(0) == 64 && data.labels(0).last != -100)
        #expect(data.report.summary.joined().contains("2 samples truncated"))
        #expect(data.report.summary.joined().contains("1 sample left out"))
    }

    @Test func hasherIsStableAndSensitive() {
        var a = ContentHasher(), b = ContentHasher(), c = ContentHasher()
        a.update(Array("hello world, this is a test".utf8))
        b.update(Array("hello world, this is a test".utf8))
        c.update(Array("hello world, this is a tesT".utf8))
        #expect(a.hex == b.hex && a.hex != c.hex && a.hex.count == 32)
    }
}
