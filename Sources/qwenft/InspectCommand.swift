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
    }
}
