import ArgumentParser
import SafeTensors

/// `qwenft inspect PATH [--json]`: the tensors of a safetensors file or model folder.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors file or model folder: names, dtypes, shapes, totals.",
        discussion: """
            PATH is a .safetensors file, a shard index (*.safetensors.index.json), or a folder holding \
            model.safetensors or model.safetensors.index.json (or a single *.safetensors, as an adapter \
            folder). For a folder with config.json the architecture is shown too. Every file is fully \
            validated; no tensor data is read.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "A safetensors file, shard index, or model folder.")
    var path: String

    @Flag(name: .long, help: "Print one JSON object (tensors, totals, architecture) instead of a table.")
    var json = false

    func run() throws {
        global.apply()
        let report = try inspectModel(path: path)
        print(json ? report.json() : report.text(), terminator: "")
        if !json, let line = fourBitSummary(report) { print(line) }
    }

    /// One line for a bitsandbytes 4-bit folder: its quantised matrices and their real size
    /// (the table lists their packed bytes as U8 [(n+1)/2, 1]).
    func fourBitSummary(_ report: ModelInspection) -> String? {
        let suffix = ".quant_state.bitsandbytes__"
        let states = report.tensors.filter { $0.name.contains(suffix) }
        guard !states.isEmpty else { return nil }
        let weights = Set(states.map { String($0.name[..<$0.name.range(of: suffix)!.lowerBound]) })
        let packed = report.tensors.filter { weights.contains($0.name) }.reduce(0) { $0 + $1.parameters }
        let types = Set(states.map { String($0.name.split(separator: "_").last ?? "?") }).sorted().joined(separator: ", ")
        return "bitsandbytes 4-bit (\(types)): \(weights.count) quantised matrices, about \(packed * 2) weights in \(packed) packed bytes"
    }
}
