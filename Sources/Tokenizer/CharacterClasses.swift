/// The character classes the Qwen pre-tokenizer regex distinguishes, as the regex engines define
/// them: \p{L} (general category L*), \p{N} (N*), \s (White_Space), with \r and \n apart; plus a
/// flag for scalars around which NFC may change the text.
enum CharClass: UInt8 {
    case other = 0      // [^\s\p{L}\p{N}]
    case letter = 1     // \p{L}
    case number = 2     // \p{N}
    case space = 3      // \s other than \r and \n
    case newline = 4    // \r or \n
}

enum CharClasses {
    /// Low 3 bits: CharClass; bit 3: not a safe NFC boundary. Indexed by BMP scalar.
    static let bmp: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            guard let u = Unicode.Scalar(UInt32(v)) else { continue }
            table[v] = classify(u).rawValue
        }
        for (lo, hi) in nfcUnsafeRanges where lo < 0x10000 {
            for v in lo...min(hi, 0xFFFF) { table[Int(v)] |= 8 }
        }
        return table
    }()

    static func classify(_ u: Unicode.Scalar) -> CharClass {
        if u == "\r" || u == "\n" { return .newline }
        let p = u.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Class and NFC flag (bit 3) of any scalar.
    @inline(__always)
    static func info(_ v: UInt32) -> UInt8 {
        if v < 0x10000 { return bmp[Int(v)] }
        return supplementaryInfo(v)
    }

    @inline(never)
    static func supplementaryInfo(_ v: UInt32) -> UInt8 {
        guard let u = Unicode.Scalar(v) else { return 0 }
        var r = classify(u).rawValue
        if isNFCUnsafe(v) { r |= 8 }
        return r
    }

    static func isNFCUnsafe(_ v: UInt32) -> Bool {
        var lo = 0, hi = nfcUnsafeRanges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let (a, b) = nfcUnsafeRanges[mid]
            if v < a { hi = mid - 1 } else if v > b { lo = mid + 1 } else { return true }
        }
        return false
    }
}

/// Decodes the scalar starting at p[i] (the text is valid UTF-8: it came from a Swift String).
@inline(__always)
func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6
            | UInt32(p[i + 3] & 0x3F), 4)
}
