import Dispatch
import Foundation

/// A section timer for finding where a training step's time goes: with `QWENFT_PROFILE=1` in the
/// environment, `Profile.time("section") { … }` adds the wall time of its body to that section, and
/// `Profile.report()` lists the sections (largest first) with their share of the total. Off (the
/// default), `time` is one branch on a constant. Sections must not nest (their times would be
/// counted twice); call them from one thread (the one driving the pass).
/// `QWENFT_PROFILE=cpu` times the sections in the process's CPU seconds instead (every thread's,
/// so a two-thread product counts twice its wall time), which other processes' load on a shared
/// machine does not inflate; the shares are still of the steps' wall time.
public enum Profile {
    public static let enabled: Bool = {
        let v = ProcessInfo.processInfo.environment["QWENFT_PROFILE"] ?? ""
        return !v.isEmpty && v != "0"
    }()
    public static let cpuTime: Bool = ProcessInfo.processInfo.environment["QWENFT_PROFILE"] == "cpu"

    /// Nanoseconds of wall time, or of the process's CPU time with `cpuTime`.
    public static func clock() -> UInt64 {
        guard cpuTime else { return DispatchTime.now().uptimeNanoseconds }
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    nonisolated(unsafe) private static var totals: [String: (seconds: Double, calls: Int)] = [:]
    private static let lock = NSLock()

    @inlinable @inline(__always)
    public static func time<R>(_ section: String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = clock()
        defer { add(section, seconds: Double(clock() - t0) / 1e9) }
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
        var lines: [String] = cpuTime ? ["(process CPU seconds per step, every thread; shares of the wall time)"] : []
        for (name, e) in totals.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            lines.append(line(name, e.seconds, e.calls))
        }
        let covered = totals.values.reduce(0) { $0 + $1.seconds }
        if !cpuTime { lines.append(line("(other)", wall - covered, nil)) }  // CPU seconds and wall time do not subtract
        lines.append(line(cpuTime ? "step (wall)" : "step", wall, nil))
        return lines.joined(separator: "\n")
    }
}
