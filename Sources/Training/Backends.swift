import QwenCore
import Qwen2

/// The backend of a device: the one place a `Device` becomes the `TrainingBackend` that the
/// model, the training pass, the optimizer and merge run on (a `TrainingBackend` is also the
/// `ModelBackend` that generation and evaluation need).
public enum Backends {
    public static func make(_ device: Device) throws -> any TrainingBackend {
        switch device {
        case .cpu: return CPUBackend()
        case .cuda: throw BackendError.unavailable(device)
        }
    }
}
