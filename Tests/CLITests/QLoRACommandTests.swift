import Foundation
import Testing

/// `qwenft quantize`, `--load-in-4bit`, a 4-bit folder everywhere a model folder goes.
@Suite(.serialized) struct QLoRACommandTests {
    @Test func quantizeThenGenerateEvalAndInspect() throws {
        let tiny = try TinyModel.folder()
        let out = try makeTempDir().appendingPathComponent("tiny-4bit").path
        let q = try runQwenft(["quantize", "--model", tiny, "--out", out])
        #expect(q.status == 0, "\(q.stderr)")
        #expect(q.stdout.contains("quantised") && q.stdout.contains("NF4"))
        // The 4-bit folder generates; so does the 16-bit one loaded with --load-in-4bit, the same tokens.
        let a = try runQwenft(["generate", "--model", out, "--raw-prompt", "Hello", "--max-new-tokens", "6", "--json", "--greedy"])
        #expect(a.status == 0, "\(a.stderr)")
        #expect(a.stderr.contains("NF4 (bitsandbytes 4-bit folder"))
        let b = try runQwenft(["generate", "--model", tiny, "--load-in-4bit", "--raw-prompt", "Hello", "--max-new-tokens", "6", "--json", "--greedy"])
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("NF4 (quantised on load"))
        #expect(a.stdout == b.stdout && !a.stdout.isEmpty)
        let i = try runQwenft(["inspect", out])
        #expect(i.status == 0 && i.stdout.contains("bitsandbytes 4-bit"), "\(i.stdout)")
        let bad = try runQwenft(["quantize", "--model", tiny, "--out", out + "-b", "--blocksize", "48"])
        #expect(bad.status == 1 && bad.stderr.contains("--blocksize 48"))
    }
}
