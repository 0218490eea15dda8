import Foundation
import Testing
@testable import Distributed

@Suite struct SingleProcessTests {
    @Test func collectivesAreTheIdentity() throws {
        let c = SingleProcessCommunicator()
        #expect(c.rank == 0 && c.size == 1 && c.isMain)
        var v: [Float] = [1, 2, 3]
        try c.allReduceSum(&v)
        #expect(v == [1, 2, 3])
        try v.withUnsafeMutableBufferPointer { p in try c.allReduceAverage(p.baseAddress!, count: 3) }
        #expect(v == [1, 2, 3])
        #expect(try c.allReduceSum(2.5) == 2.5)
        var out = [Float](repeating: 0, count: 3)
        try c.reduceScatterSum(v, &out, chunkCount: 3)
        #expect(out == v)
        var gathered = [Float](repeating: 0, count: 3)
        try c.allGather(v, &gathered, chunkCount: 3)
        #expect(gathered == v)
        var shard = [Float](repeating: 0, count: 3)
        try c.reduceScatterGradients(v, into: &shard, layout: ShardLayout(count: 3, size: 1))
        #expect(shard == v)
        var params = v
        try params.withUnsafeMutableBufferPointer { p in try c.allGatherParameters(p.baseAddress!, layout: ShardLayout(count: 3, size: 1)) }
        #expect(params == v)
        var bytes: [UInt8] = [9]
        try c.broadcast(&bytes, byteCount: 1, root: 0)
        #expect(throws: DistributedError.self) { try c.broadcast(&bytes, byteCount: 1, root: 1) }
        try c.barrier()
    }

    @Test func plainRunsGetTheSingleProcessCommunicator() throws {
        if MPICommunicator.launchedUnderMPI() { return }
        #expect(try makeCommunicator() is SingleProcessCommunicator)
    }

    @Test func shardLayoutPadsToAMultipleOfTheWorld() {
        let l = ShardLayout(count: 10, size: 4)
        #expect(l.shardCount == 3 && l.paddedCount == 12)
        #expect((0..<4).map { l.range(of: $0) } == [0..<3, 3..<6, 6..<9, 9..<10])
        let tail = ShardLayout(count: 2, size: 4)
        #expect((0..<4).map { tail.range(of: $0) } == [0..<1, 1..<2, 2..<2, 2..<2])
        #expect(ShardLayout(count: 0, size: 3).paddedCount == 0)
    }

    @Test func errorsSayWhatToDo() {
        #expect(DistributedError.badRoot(root: 3, size: 2).description.contains("rank 3"))
        #expect(DistributedError.mpi(operation: "MPI_Allreduce", code: 5, message: "x").description.contains("MPI_Allreduce"))
    }
}

/// Runs only under mpirun, by hand:
///   mpirun -np 3 --allow-run-as-root --oversubscribe \
///     .build/debug/qwenftPackageTests.xctest --testing-library swift-testing --filter MPIWorldTests
@Suite struct MPIWorldTests {
    @Test func collectivesAcrossRanks() throws {
        guard MPICommunicator.launchedUnderMPI() else { return }
        let c = try makeCommunicator()
        let n = c.size, r = c.rank
        #expect(n > 1)
        // all-reduce: rank r contributes (r+1)·(i+1)
        var v = (0..<5).map { Float((r + 1) * ($0 + 1)) }
        try c.allReduceSum(&v)
        let ranksSum = Float(n * (n + 1) / 2)
        #expect(v == (0..<5).map { ranksSum * Float($0 + 1) })
        try v.withUnsafeMutableBufferPointer { p in try c.allReduceAverage(p.baseAddress!, count: 5) }
        #expect(v == (0..<5).map { ranksSum * Float($0 + 1) })  // average of equal values
        #expect(try c.allReduceSum(Double(r)) == Double(n * (n - 1) / 2))
        // reduce-scatter: input[j] = r + j; chunk k sums to Σ_r (r + j)
        let chunk = 2
        let input = (0..<(n * chunk)).map { Float(r + $0) }
        var mine = [Float](repeating: 0, count: chunk)
        try c.reduceScatterSum(input, &mine, chunkCount: chunk)
        let rankTotal = Float(n * (n - 1) / 2)
        #expect(mine == (0..<chunk).map { rankTotal + Float(n * (r * chunk + $0)) })
        // all-gather, out of place and in place
        var all = [Float](repeating: -1, count: n * chunk)
        let shard = [Float](repeating: Float(r), count: chunk)
        try c.allGather(shard, &all, chunkCount: chunk)
        #expect(all == (0..<(n * chunk)).map { Float($0 / chunk) })
        var inPlace = [Float](repeating: -1, count: n * chunk)
        for k in 0..<chunk { inPlace[r * chunk + k] = Float(r) }
        try inPlace.withUnsafeMutableBufferPointer { p in
            try c.allGather(UnsafePointer(p.baseAddress! + r * chunk), p.baseAddress!, chunkCount: chunk)
        }
        #expect(inPlace == all)
        // ZeRO: gradients (padded) → averaged shard; parameters shard → whole buffer
        let layout = ShardLayout(count: 7, size: n)
        let grads = (0..<layout.paddedCount).map { Float(($0 + 1) * (r + 1)) }
        var gshard = [Float](repeating: 0, count: layout.shardCount)
        try c.reduceScatterGradients(grads, into: &gshard, layout: layout)
        let meanFactor = Float(n + 1) / 2
        #expect(gshard == (0..<layout.shardCount).map { Float(r * layout.shardCount + $0 + 1) * meanFactor })
        var params = [Float](repeating: -1, count: layout.paddedCount)
        for k in 0..<layout.shardCount { params[r * layout.shardCount + k] = Float(r * layout.shardCount + k) }
        try params.withUnsafeMutableBufferPointer { p in try c.allGatherParameters(p.baseAddress!, layout: layout) }
        #expect(params == (0..<layout.paddedCount).map { Float($0) })
        // broadcast from the last rank
        var word: [UInt8] = r == n - 1 ? Array("qwen".utf8) : [0, 0, 0, 0]
        try c.broadcast(&word, byteCount: 4, root: n - 1)
        #expect(word == Array("qwen".utf8))
        try c.barrier()
    }
}

/// Runs MPIWorldTests above in 3 ranks under mpirun (Open MPI's, as Scripts/setup.sh installs).
@Suite struct MPILaunchTests {
    @Test func threeRanksUnderMpirun() throws {
        if MPICommunicator.launchedUnderMPI() { return }
        let binary = CommandLine.arguments[0]
        guard binary.hasSuffix(".xctest") else { return }  // not the SwiftPM test runner
        let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let launcher = try #require(mpirun, "mpirun not found: install openmpi-bin (Scripts/setup.sh does)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher)
        p.arguments = ["-np", "3", "--allow-run-as-root", "--oversubscribe", binary,
                       "--testing-library", "swift-testing", "--filter", "MPIWorldTests"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        nonisolated(unsafe) var text = Data()
        let reader = Thread { text = out.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        let log = String(decoding: text, as: UTF8.self)
        #expect(p.terminationStatus == 0, "mpirun: \(log)")
        #expect(log.components(separatedBy: "Test collectivesAcrossRanks() passed").count == 4, "\(log)")
    }
}

@Suite struct LaunchTests {
    @Test func launchersAreRecognisedFromTheEnvironment() {
        #expect(!Launch.underMPI([:]))
        #expect(Launch.underMPI(["OMPI_COMM_WORLD_SIZE": "2"]))
        #expect(Launch.underMPI(["PMIX_RANK": "0"]))
        #expect(Launch.underMPI(["PMI_RANK": "3"]))
        #expect(!Launch.underMPI(["SLURM_NTASKS": "4"]))  // an sbatch script, not an srun step
        #expect(Launch.localRanks(["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"]) == 2)
        #expect(Launch.localRanks(["PMIX_RANK": "0", "SLURM_STEP_TASKS_PER_NODE": "4(x2)"]) == 4)
        #expect(Launch.localRanks(["OMPI_COMM_WORLD_LOCAL_SIZE": "2"]) == 1)  // not launched: one
        #expect(Launch.defaultThreads() >= 1)
        #expect((Launch.affinityCores() ?? 1) >= 1)
    }
}
