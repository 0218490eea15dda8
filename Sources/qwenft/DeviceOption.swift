import ArgumentParser
import QwenCore
import Training

/// `--device cpu|cuda[:N]` of generate, chat and eval (train reads the config's `device` key,
/// which `--device` on its command line overrides like any other key).
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "Where the math runs: cpu, cuda or cuda:N. Default: cpu.")
    var device: String = "cpu"

    /// The device's backend, or the error that says why there is none (before any loading).
    func backend() throws -> any TrainingBackend {
        try Backends.make(Device(parsing: device))
    }
}
