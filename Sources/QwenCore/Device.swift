import Foundation

/// Where the math runs: `--device cpu|cuda[:N]` and the training config's `device` key are
/// parsed here, and `Backends.make` (Training) turns one into its backend — nowhere else.
public enum Device: Equatable, Sendable, CustomStringConvertible {
    case cpu
    /// A GPU by its CUDA index (`cuda` alone is `cuda:0`).
    case cuda(Int)

    /// "cpu", "cuda" or "cuda:N" (case and surrounding spaces ignored).
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "cpu" {
            self = .cpu
        } else if t == "cuda" {
            self = .cuda(0)
        } else if t.hasPrefix("cuda:"), let n = Int(t.dropFirst("cuda:".count)), n >= 0 {
            self = .cuda(n)
        } else {
            throw BackendError.unknownDevice(text)
        }
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }
}

/// Why no backend could be made for a device.
public enum BackendError: Error, Equatable, CustomStringConvertible {
    case unknownDevice(String)
    /// A device this build has no backend for.
    case unavailable(Device)

    public var description: String {
        switch self {
        case .unknownDevice(let s):
            return "unknown device \"\(s)\": expected cpu, cuda or cuda:N (N the GPU's index)"
        case .unavailable(let d):
            return "device \(d): the CUDA backend is not available in this build yet; use the CPU (--device cpu, or \"device\": \"cpu\" in a training config)"
        }
    }
}
