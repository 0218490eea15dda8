/// The Qwen pre-tokenizer: splits normalized text into the pieces that the regex
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// finds with find-all (leftmost-first alternation, greedy quantifiers with backtracking), by a
/// hand-written scanner over UTF-8. Every scalar is matched by some alternative, so the pieces tile
/// the text (HF's "Isolated" split and tiktoken's find-all agree).
///
/// How each alternative resolves, given the class of the first scalar c and the next one:
/// - `'` followed by s/t/m/d or re/ve/ll, any case (also ſ, which folds to s): the contraction.
/// - c a letter: the run of letters. c not a letter, number or \r\n, next a letter: c + the run.
/// - c a number: c alone.
/// - c other (not space, letter, number): the run of others, then any \r\n.
///   ' ' followed by an other: the space, the run of others, then any \r\n.
/// - c whitespace, no earlier case applying, W the whitespace run from c:
///   W has \r or \n -> up to and including the last one (\s*[\r\n]+ backtracks to it);
///   W reaches the end -> all of W; W has two or more scalars -> all but the last (\s+(?!\S));
///   else c alone.
struct PreTokenizer {
    let p: UnsafePointer<UInt8>
    let n: Int
    var i = 0

    init(_ p: UnsafePointer<UInt8>, _ n: Int) {
        self.p = p
        self.n = n
    }

    @inline(__always) private func scalar(at j: Int) -> (cls: UInt8, length: Int, value: UInt32) {
        let b = p[j]
        if b < 0x80 { return (asciiClass[Int(b)], 1, UInt32(b)) }
        let (v, len) = decodeScalar(p, j)
        return (CharClasses.info(v) & 7, len, v)
    }

    @inline(__always) private func cls(at j: Int) -> UInt8 {
        j < n ? scalar(at: j).cls : 255
    }

    /// Index after the run of letters starting at j.
    @inline(__always) private func letterRun(_ j: Int) -> Int {
        var j = j
        while j < n {
            let b = p[j]
            if b < 0x80 {
                if asciiClass[Int(b)] != CharClass.letter.rawValue { break }
                j += 1
            } else {
                let s = scalar(at: j)
                if s.cls != CharClass.letter.rawValue { break }
                j += s.length
            }
        }
        return j
    }

    /// Index after the run of "others" starting at j, then after any \r\n that follow.
    @inline(__always) private func otherRunThenNewlines(_ j: Int) -> Int {
        var j = j
        while j < n {
            let s = scalar(at: j)
            if s.cls != CharClass.other.rawValue { break }
            j += s.length
        }
        while j < n && (p[j] == 0x0D || p[j] == 0x0A) { j += 1 }
        return j
    }

    /// Length of a contraction after the apostrophe at j, or 0.
    @inline(__always) private func contraction(_ j: Int) -> Int {
        guard j + 1 < n else { return 0 }
        let c = p[j + 1] | 0x20
        switch p[j + 1] {
        case 0x73, 0x53, 0x74, 0x54, 0x6D, 0x4D, 0x64, 0x44: return 2  // s t m d
        case 0xC5 where j + 2 < n && p[j + 2] == 0xBF: return 3         // ſ (U+017F) folds to s
        default: break
        }
        guard j + 2 < n else { return 0 }
        let d = p[j + 2] | 0x20
        if (c == 0x72 || c == 0x76) && d == 0x65 && p[j + 1] < 0x80 && p[j + 2] < 0x80 { return 3 }  // re ve
        if c == 0x6C && d == 0x6C && p[j + 1] < 0x80 && p[j + 2] < 0x80 { return 3 }                   // ll
        return 0
    }

    /// The next piece, or nil at the end.
    @inline(__always)
    mutating func next() -> Range<Int>? {
        let start = i
        guard start < n else { return nil }
        let c = scalar(at: start)
        let after = start + c.length
        let L = CharClass.letter.rawValue
        switch c.cls {
        case L:
            i = letterRun(after)
        case CharClass.number.rawValue:
            i = after
        case CharClass.other.rawValue:
            if c.value == 0x27 {
                let k = contraction(start)
                if k > 0 { i = start + k; return start..<i }
            }
            i = cls(at: after) == L ? letterRun(after) : otherRunThenNewlines(after)
        default:  // whitespace
            let nextCls = cls(at: after)
            if c.cls == CharClass.space.rawValue && nextCls == L {
                i = letterRun(after)
            } else if c.value == 0x20 && nextCls == CharClass.other.rawValue {
                i = otherRunThenNewlines(after)
            } else {
                i = whitespace(start)
            }
        }
        return start..<i
    }

    /// The whitespace alternatives (\s*[\r\n]+ | \s+(?!\S) | \s+) from j.
    @inline(__always) private func whitespace(_ j: Int) -> Int {
        var k = j
        var afterLastNewline = -1
        var lastStart = j
        while k < n {
            let s = scalar(at: k)
            if s.cls == CharClass.newline.rawValue {
                afterLastNewline = k + s.length
            } else if s.cls != CharClass.space.rawValue {
                break
            }
            lastStart = k
            k += s.length
        }
        if afterLastNewline >= 0 { return afterLastNewline }
        if k == n { return k }
        return lastStart > j ? lastStart : k
    }
}

/// Classes of the ASCII scalars.
let asciiClass: [UInt8] = (0..<128).map { CharClasses.classify(Unicode.Scalar(UInt8($0))).rawValue }
