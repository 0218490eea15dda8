import Foundation

/// NFC normalization that keeps track of where each normalized byte came from.
///
/// A scalar with combining class 0 and NFC_Quick_Check=Yes is a boundary NFC never looks across
/// (nothing before it composes with it or reorders past it). Text made only of such scalars is
/// already NFC — nearly all text — so we scan for the rare other scalars and normalize just the
/// run from the boundary before them to the boundary after them, through Foundation.
struct NFCResult {
    /// The normalized UTF-8 bytes (empty when `unchanged`: then the input is the normalized text).
    var bytes: [UInt8] = []
    var unchanged = true
    /// Runs that changed: (normalized range, original range), in order.
    var edits: [(normalized: Range<Int>, original: Range<Int>)] = []
}

enum NFC {
    /// Normalizes p[0..<n].
    static func normalize(_ p: UnsafePointer<UInt8>, _ n: Int) -> NFCResult {
        var result = NFCResult()
        var i = 0
        var lastBoundary = 0  // start of the last safe scalar seen (or 0)
        var copiedUpTo = 0    // original bytes up to here are in result.bytes (when changed)
        while i < n {
            let b = p[i]
            if b < 0x80 { lastBoundary = i; i += 1; continue }
            let (v, len) = decodeScalar(p, i)
            if CharClasses.info(v) & 8 == 0 { lastBoundary = i; i += len; continue }
            // An unsafe scalar: the run reaches from lastBoundary to the next safe scalar.
            let runStart = max(lastBoundary, copiedUpTo)
            var j = i + len
            while j < n {
                if p[j] < 0x80 { break }
                let (w, l) = decodeScalar(p, j)
                if CharClasses.info(w) & 8 == 0 { break }
                j += l
            }
            let original = String(decoding: UnsafeBufferPointer(start: p + runStart, count: j - runStart), as: UTF8.self)
            let normalized = composeHangulLVT(original.precomposedStringWithCanonicalMapping)
            if normalized != original || !normalized.utf8.elementsEqual(original.utf8) {
                if result.unchanged {
                    result.unchanged = false
                    result.bytes.reserveCapacity(n + 16)
                }
                result.bytes.append(contentsOf: UnsafeBufferPointer(start: p + copiedUpTo, count: runStart - copiedUpTo))
                let normStart = result.bytes.count
                result.bytes.append(contentsOf: normalized.utf8)
                result.edits.append((normStart..<result.bytes.count, runStart..<j))
                copiedUpTo = j
            }
            lastBoundary = j
            i = j
        }
        if !result.unchanged {
            result.bytes.append(contentsOf: UnsafeBufferPointer(start: p + copiedUpTo, count: n - copiedUpTo))
        }
        return result
    }
}

extension String {
    /// The NFC form, as the tokenizer computes it.
    public var qwenNFC: String {
        var s = self
        return s.withUTF8 { buf -> String in
            guard let base = buf.baseAddress else { return "" }
            let r = NFC.normalize(base, buf.count)
            return r.unchanged ? String(decoding: buf, as: UTF8.self) : String(decoding: r.bytes, as: UTF8.self)
        }
    }
}

/// Foundation on Linux leaves an LV syllable followed by a trailing jamo (U+AC00 U+11A8)
/// uncomposed; NFC composes it (U+AC01). Applied after Foundation's NFC.
func composeHangulLVT(_ s: String) -> String {
    var out = String.UnicodeScalarView()
    var changed = false
    for u in s.unicodeScalars {
        if (0x11A8...0x11C2).contains(u.value), let last = out.last,
           (0xAC00...0xD7A3).contains(last.value), (last.value - 0xAC00) % 28 == 0 {
            out.removeLast()
            out.append(Unicode.Scalar(last.value + u.value - 0x11A7)!)
            changed = true
        } else {
            out.append(u)
        }
    }
    return changed ? String(out) : s
}
