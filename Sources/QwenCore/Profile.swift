import Dispatch
import Foundation

/// A section timer for finding where a training step's time goes: with `QWENFT_PROFILE=1` in the
/// environment, `Profile.time("section") { … }` adds the wall time of its body to that section, and
/// `Profile.report()` lists the sections (largest first) with their share of the total. Off (the
/// default), `time` is one branch on a constant. Sections must not nest (their times would be
/// counted twice); call them from one thread (the one driving the pass).
public enum Profile {
    public static let enabled: Bool = {
        let v = ProcessInfo.processInfo.environment["QWENFT_PROFILE"] ?? ""
        return !v.isEmpty && v != "0"
    }()

    nonisolated(unsafe) private static var totals: [String: (seconds: Double, calls: Int)] = [:]
    private static let lock = NSLock()

    @inlinable @inline(__always)
    public static func time<R>(_ section: String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { add(section, seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        return try body()
    }

    public static func add(_ section: String, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        var e = totals[section] ?? (0, 0)
        e.seconds += seconds
        e.calls += 1
        totals[section] = e
    }

    /// Clears every section (e.g. after a warm-up step).
    public static func reset() {
        lock.lock()
        defer { lock.unlock() }
        totals = [:]
    }

    /// One line per section, largest first: seconds per step, share of the steps' wall time,
    /// calls per step; then what no section covered. nil when profiling is off or nothing was timed.
    public static func report(steps: Int, wall: Double) -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard enabled, !totals.isEmpty, steps > 0, wall > 0 else { return nil }
        let d = Double(steps)
        func line(_ name: String, _ seconds: Double, _ calls: Int?) -> String {
            name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %8.4f s %6.1f%%", seconds / d, 100 * seconds / wall)
                + (calls.map { String(format: " %7d calls", $0 / steps) } ?? "")
        }
        var lines: [String] = []
        for (name, e) in totals.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            lines.append(line(name, e.seconds, e.calls))
        }
        let covered = totals.values.reduce(0) { $0 + $1.seconds }
        lines.append(line("(other)", wall - covered, nil))
        lines.append(line("step", wall, nil))
        return lines.joined(separator: "\n")
    }
}
