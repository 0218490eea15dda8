import Foundation
import Jinja
import QwenCore
import Tokenizer

extension TokenizedDataset {
    /// Reads, checks, renders and tokenises the data files (JSON arrays or JSONL, records of any
    /// of the shapes `RecordFormats` knows, mixed), on all cores, or loads the result from the
    /// cache when the files, tokenizer, template and options are unchanged.
    ///
    /// - Throws `TrainingError.badRecords` (all problems listed, capped) before anything is
    ///   returned when a record is bad and `onBadRecord` is `.error`.
    /// - `progress` is called on the calling thread after each chunk of records.
    public static func load(files: [String], tokenizer: Tokenizer, tokenizerConfig: TokenizerConfig,
                            template: ChatTemplateSource, options: DatasetOptions,
                            progress: ((PreprocessingProgress) -> Void)? = nil) throws -> TokenizedDataset {
        guard options.maxSeqLength >= 2 else {
            throw TrainingError.badOption(name: "max_seq_length", message: "must be at least 2, got \(options.maxSeqLength)")
        }
        let started = DispatchTime.now().uptimeNanoseconds
        let files = try expandDataPaths(files)
        let dataFiles = try files.map { try DataFile(path: $0) }
        var cache: DatasetCache?
        if let dir = options.cacheDirectory {
            let c = DatasetCache(directory: dir, files: dataFiles, tokenizer: tokenizer, template: template, options: options)
            cache = c
            if let hit = c.load() {
                hit.report.preference = options.preference
                hit.report.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                try hit.checkProblems(options.onBadRecord)
                return hit
            }
        }
        let builder = try SampleBuilder(source: template, tokenizer: tokenizer, tokenizerConfig: tokenizerConfig,
                                        trainOnPrompt: options.trainOnPrompt)
        var ids: [Int32] = [], labels: [Int32] = []
        var starts = [0]
        var report = DatasetReport()
        report.files = files
        report.preference = options.preference
        var problems: [RecordProblem] = []
        func note(_ p: RecordProblem) {
            report.problemCount += 1
            report.skipped[p.kind, default: 0] += 1
            if problems.count < TrainingError.shownLimit { problems.append(p) }
        }
        let total = dataFiles.reduce(0) { $0 + $1.records.count }
        var done = 0
        let window = max(256, 64 * Threading.count)
        for file in dataFiles {
            var structural = file.problems.makeIterator()
            var nextStructural = structural.next()
            var at = 0
            while at < file.records.count {
                let chunk = Array(file.records[at..<min(at + window, file.records.count)])
                var outcomes = [Outcome](repeating: .empty, count: chunk.count)
                outcomes.withUnsafeMutableBufferPointer { out in
                    let out = out
                    parallelChunks(chunk.count, minChunk: 8) { range in
                        for k in range {
                            out[k] = options.preference
                                ? processPair(chunk[k], in: file, builder: builder, options: options, eosToken: tokenizerConfig.eosToken)
                                : process(chunk[k], in: file, builder: builder, maxLength: options.maxSeqLength)
                        }
                    }
                }
                for (k, outcome) in outcomes.enumerated() {
                    // Structural problems (an unclosed array) in file order with the records.
                    while let p = nextStructural, p.location.index <= chunk[k].location.index {
                        note(p)
                        nextStructural = structural.next()
                    }
                    report.records += 1
                    switch outcome {
                    case let .sample(sampleIds, sampleLabels, truncated):
                        if truncated { report.truncated += 1 }
                        let labelled = sampleLabels.reduce(0) { $0 + ($1 == -100 ? 0 : 1) }
                        if labelled == 0 {
                            report.droppedNoTargets += 1
                            if report.droppedExamples.count < TrainingError.shownLimit { report.droppedExamples.append(chunk[k].location) }
                            continue
                        }
                        ids += sampleIds
                        labels += sampleLabels
                        starts.append(ids.count)
                        report.labelledTokens += labelled
                        report.longestSample = max(report.longestSample, sampleIds.count)
                    case let .pair(chosen, rejected, truncated):
                        if truncated { report.truncated += 1 }
                        for (sampleIds, sampleLabels) in [chosen, rejected] {
                            ids += sampleIds
                            labels += sampleLabels
                            starts.append(ids.count)
                            report.labelledTokens += sampleLabels.reduce(0) { $0 + ($1 == -100 ? 0 : 1) }
                            report.longestSample = max(report.longestSample, sampleIds.count)
                        }
                    case .promptTooLong:
                        report.droppedNoTargets += 1
                        if report.droppedExamples.count < DatasetError.shownLimit { report.droppedExamples.append(chunk[k].location) }
                    case let .problem(p):
                        note(p)
                    case .empty:
                        break
                    }
                }
                at += chunk.count
                done += chunk.count
                progress?(PreprocessingProgress(recordsDone: done, recordsTotal: total, tokens: ids.count))
            }
            while let p = nextStructural {
                note(p)
                nextStructural = structural.next()
            }
        }
        report.problems = problems
        report.samples = starts.count - 1
        report.tokens = ids.count
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let dataset = TokenizedDataset(ids: ids, labels: labels, starts: starts, report: report)
        try dataset.checkProblems(options.onBadRecord)
        if dataset.count == 0 {
            throw TrainingError.noSamples(files: files, message: "no sample to train on: "
                + (report.records == 0 ? "the files hold no records" : "every record was bad or lost its labels to truncation"))
        }
        if let cache { dataset.report.cachePath = cache.store(dataset) }
        return dataset
    }

    /// A folder stands for the .jsonl and .json files in it (Firefly's pre-training train_file),
    /// in name order.
    static func expandDataPaths(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for path in paths {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasSuffix(".jsonl") || $0.hasSuffix(".json") }.sorted()
                if names.isEmpty {
                    throw TrainingError.unreadableFile(path: path, message: "the folder holds no .jsonl or .json files")
                }
                out += names.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
            } else {
                out.append(path)
            }
        }
        if out.isEmpty { throw TrainingError.badOption(name: "train_file", message: "no data file given") }
        return out
    }

    func checkProblems(_ policy: BadRecordPolicy) throws {
        if policy == .error && report.problemCount > 0 {
            throw TrainingError.badRecords(problems: report.problems, total: report.problemCount)
        }
    }
}

private enum Outcome {
    case empty
    case sample([Int32], [Int32], truncated: Bool)
    /// A preference pair: prompt+chosen and prompt+rejected (ids, labels).
    case pair(([Int32], [Int32]), ([Int32], [Int32]), truncated: Bool)
    /// A preference pair whose prompt alone reaches max_seq_length (TRL drops it).
    case promptTooLong
    case problem(RecordProblem)
}

private func parse(_ raw: RawRecord, in file: DataFile) throws -> Value {
    guard let text = file.text(of: raw) else { throw RecordIssue(.badJSON, "not valid UTF-8") }
    do {
        return try Value.parseJSON(text)
    } catch let e as JSONParseError {
        throw RecordIssue(.badJSON, "invalid JSON at line \(raw.location.line + e.line - 1), column \(e.column): \(e.message)")
    } catch {
        throw RecordIssue(.badJSON, "invalid JSON: \(error)")
    }
}

private func processPair(_ raw: RawRecord, in file: DataFile, builder: SampleBuilder, options: DatasetOptions, eosToken: String?) -> Outcome {
    do {
        let value = try parse(raw, in: file)
        let tokens = try builder.preferenceTokens(try PreferenceFormats.normalize(value), eosToken: eosToken)
        guard let t = truncatePreference(tokens, maxLength: options.maxSeqLength, maxPromptLength: options.maxPromptLength) else {
            return .promptTooLong
        }
        return .pair(t.chosen, t.rejected, truncated: t.truncated)
    } catch let issue as RecordIssue {
        return .problem(RecordProblem(location: raw.location, kind: issue.kind, message: issue.message))
    } catch {
        return .problem(RecordProblem(location: raw.location, kind: .templateFailed, message: "\(error)"))
    }
}

private func process(_ raw: RawRecord, in file: DataFile, builder: SampleBuilder, maxLength: Int) -> Outcome {
    func problem(_ kind: RecordProblemKind, _ message: String) -> Outcome {
        .problem(RecordProblem(location: raw.location, kind: kind, message: message))
    }
    guard let text = file.text(of: raw) else { return problem(.badJSON, "not valid UTF-8") }
    let value: Value
    do {
        value = try Value.parseJSON(text)
    } catch let e as JSONParseError {
        // The parser counts lines within the record; report them within the file.
        return problem(.badJSON, "invalid JSON at line \(raw.location.line + e.line - 1), column \(e.column): \(e.message)")
    } catch {
        return problem(.badJSON, "invalid JSON: \(error)")
    }
    do {
        let record = try RecordFormats.normalize(value, forRecordTemplate: builder.source.isRecordTemplate)
        var (ids, labels) = try builder.build(record)
        if ids.isEmpty { return problem(.empty, "the record renders to no tokens") }
        let truncated = ids.count > maxLength
        if truncated {
            ids.removeLast(ids.count - maxLength)
            labels.removeLast(labels.count - maxLength)
        }
        return .sample(ids, labels, truncated: truncated)
    } catch let issue as RecordIssue {
        return problem(issue.kind, issue.message)
    } catch {
        return problem(.templateFailed, "\(error)")
    }
}
