import Foundation
import QwenCore
import SafeTensors

// AdamW's m and v in a checkpoint, in a layout that does not depend on the number of ranks:
// tensors are named by parameter, never by rank offset, so a run at any world size (and any ZeRO
// stage) reads what it owns without a conversion tool.
//
//   optimizer.safetensors            one process or ZeRO 0: exp_avg.<name>, exp_avg_sq.<name>
//                                    with the parameter's shape (the single-process format)
//   optimizer-rank<r>.safetensors    ZeRO 1/2, one per rank: the entries of that rank's slice;
//                                    an entry the slice boundary cuts is stored as the piece it
//                                    holds, exp_avg.<name>@<lo>:<hi> (elements lo..<hi of the
//                                    flattened tensor, shape [hi-lo]); metadata step, world_size
//
// Reading: for every entry of this optimizer's range, every piece of every file that overlaps it
// is copied in; the pieces must cover it exactly.

enum OptimizerShards {
    static let wholeFile = "optimizer.safetensors"
    static func shardFile(rank: Int) -> String { "optimizer-rank\(rank).safetensors" }

    /// The single-process file (the optimizer holds every entry).
    static func writeWhole(_ optimizer: AdamW, layout: ParameterLayout, folder: String) throws {
        var moments: [TensorToWrite] = []
        for e in layout.entries {
            guard let mv = optimizer.moments(of: e) else { continue }
            moments.append(TensorToWrite(name: "exp_avg.\(e.name)", shape: e.shape, pointer: UnsafePointer(mv.m.baseAddress!)))
            moments.append(TensorToWrite(name: "exp_avg_sq.\(e.name)", shape: e.shape, pointer: UnsafePointer(mv.v.baseAddress!)))
        }
        try write(moments, folder: folder, file: wholeFile, metadata: ["format": "pt", "step": String(optimizer.stepCount)])
    }

    /// This rank's slice: whole entries by name, cut entries as named pieces.
    static func write(_ optimizer: AdamW, layout: ParameterLayout, rank: Int, worldSize: Int, folder: String) throws {
        var moments: [TensorToWrite] = []
        let r = optimizer.range
        for seg in layout.segments(in: r) {
            guard let e = layout.entries.first(where: { $0.range.overlaps(seg.range) }) else { continue }
            let lo = seg.range.lowerBound - e.offset, hi = seg.range.upperBound - e.offset
            let whole = lo == 0 && hi == e.count
            let suffix = whole ? "" : "@\(lo):\(hi)"
            let shape = whole ? e.shape : [hi - lo]
            let m = optimizer.hostM + (seg.range.lowerBound - r.lowerBound)
            let v = optimizer.hostV + (seg.range.lowerBound - r.lowerBound)
            moments.append(TensorToWrite(name: "exp_avg.\(e.name)\(suffix)", shape: shape, pointer: UnsafePointer(m)))
            moments.append(TensorToWrite(name: "exp_avg_sq.\(e.name)\(suffix)", shape: shape, pointer: UnsafePointer(v)))
        }
        try write(moments, folder: folder, file: shardFile(rank: rank),
                  metadata: ["format": "pt", "step": String(optimizer.stepCount), "world_size": String(worldSize), "rank": String(rank)])
    }

    private static func write(_ tensors: [TensorToWrite], folder: String, file: String, metadata: [String: String]) throws {
        let path = (folder as NSString).appendingPathComponent(file)
        do { try SafeTensorsWriter.write(tensors, to: path, metadata: metadata) } catch {
            throw ModelFiles.writeFailure(path, error)
        }
    }

    /// A stored piece of one entry's moments: elements lo..<hi of the flattened tensor.
    private struct Piece {
        var lo: Int, hi: Int
        var whole: Bool
        var m: TensorView, v: TensorView
    }

    static func load(from folder: String, into optimizer: AdamW, layout: ParameterLayout) throws {
        func bad(_ message: String) -> TrainerError { .badCheckpoint(path: folder, message: message) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var files: [String] = []
        if names.contains(wholeFile) {
            files = [wholeFile]
        } else {
            let shards = names.filter { $0.hasPrefix("optimizer-rank") && $0.hasSuffix(".safetensors") }
            guard !shards.isEmpty else { throw bad("has neither optimizer.safetensors nor optimizer-rank<r>.safetensors files") }
            files = shards.sorted()
        }
        var pieces: [String: [Piece]] = [:]
        var steps: Set<Int> = []
        var worldSize: Int?
        var opened: [SafeTensorsFile] = []
        for name in files {
            let path = (folder as NSString).appendingPathComponent(name)
            let file: SafeTensorsFile
            do { file = try SafeTensorsFile(path: path) } catch { throw bad("cannot read \(name): \(error)") }
            opened.append(file)
            guard let stepText = file.metadata?["step"], let step = Int(stepText) else { throw bad("\(name) has no step count in its metadata") }
            steps.insert(step)
            if let w = file.metadata?["world_size"].flatMap({ Int($0) }) { worldSize = w }
            for key in file.names where key.hasPrefix("exp_avg.") {
                var param = String(key.dropFirst("exp_avg.".count))
                var lo = 0, hi: Int?
                if let at = param.lastIndex(of: "@") {
                    let bounds = param[param.index(after: at)...].split(separator: ":").compactMap { Int($0) }
                    guard bounds.count == 2, bounds[0] < bounds[1] else { throw bad("\(name): tensor \(key) has a malformed element range") }
                    lo = bounds[0]; hi = bounds[1]
                    param = String(param[..<at])
                }
                guard let m = file[key], let v = file["exp_avg_sq." + String(key.dropFirst("exp_avg.".count))] else {
                    throw bad("\(name): \(key) has no matching exp_avg_sq tensor")
                }
                let n = m.elementCount
                guard v.elementCount == n, hi.map({ $0 - lo == n }) ?? true else { throw bad("\(name): \(key) does not match its element range") }
                pieces[param, default: []].append(Piece(lo: lo, hi: hi ?? n, whole: hi == nil, m: m, v: v))
            }
        }
        guard steps.count == 1, let steps = steps.first else { throw bad("its optimizer files disagree on the step count; the checkpoint is mixed") }
        if let w = worldSize, files.count != w || Set(files) != Set((0..<w).map(shardFile)) {
            throw bad("holds \(files.count) optimizer-rank files, but they were written by \(w) ranks; the checkpoint is incomplete")
        }
        let r = optimizer.range
        for e in layout.entries where e.range.overlaps(r) {
            let a = max(r.lowerBound, e.offset) - e.offset, b = min(r.upperBound, e.offset + e.count) - e.offset
            var covered = 0
            for p in pieces[e.name] ?? [] {
                let lo = max(a, p.lo), hi = min(b, p.hi)
                guard lo < hi else { continue }
                guard p.hi <= e.count, !p.whole || p.hi == e.count else {
                    throw bad("optimizer state of \(e.name) does not fit its shape \(e.shape)")
                }
                let dst = e.offset + lo - r.lowerBound
                for (view, buffer) in [(p.m, optimizer.m), (p.v, optimizer.v)] {
                    do {
                        if let src = view.f32Pointer {
                            optimizer.backend.copyToDevice(buffer.pointer + dst, from: src + (lo - p.lo), count: hi - lo)
                        } else {
                            let all = try view.floatBuffer()
                            optimizer.backend.copyToDevice(buffer.pointer + dst, from: all.pointer + (lo - p.lo), count: hi - lo)
                        }
                    } catch { throw bad("optimizer state of \(e.name): \(error)") }
                }
                covered += hi - lo
            }
            guard covered == b - a else {
                throw bad("its optimizer files lack state for \(e.name) elements \(a)..<\(b) (shape \(e.shape)); it was saved by a run with other LoRA targets, rank or mode")
            }
        }
        withExtendedLifetime(opened) {}
        optimizer.stepCount = steps
    }
}
