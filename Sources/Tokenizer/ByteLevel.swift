/// GPT-2's byte-level alphabet: every byte is shown as one printable Unicode character, so a
/// token made of arbitrary bytes is a string in tokenizer.json. Printable Latin-1 bytes stand for
/// themselves; the other 68 bytes (controls, space, 0x7F–0xA0, 0xAD) become U+0100, U+0101, … in
/// byte order.
enum ByteLevel {
    /// byte -> the scalar that shows it.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// scalar -> byte, for scalars 0..<324; -1 where a scalar shows no byte.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The bytes a byte-level string stands for, or nil if it holds a character outside the
    /// alphabet.
    static func decode(_ utf8: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(utf8.count)
        var i = 0
        let n = utf8.count
        while i < n {
            let b0 = utf8[i]
            var scalar: UInt32
            if b0 < 0x80 {
                scalar = UInt32(b0); i += 1
            } else if b0 & 0xE0 == 0xC0, i + 1 < n {
                scalar = UInt32(b0 & 0x1F) << 6 | UInt32(utf8[i + 1] & 0x3F); i += 2
            } else {
                return nil  // every scalar of the alphabet is below U+0800
            }
            guard scalar < 324 else { return nil }
            let b = byteForScalar[Int(scalar)]
            if b < 0 { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    static func decode(_ s: String) -> [UInt8]? {
        var s = s
        return s.withUTF8 { decode($0) }
    }

    /// The byte-level string for some bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(scalarForByte[Int(b)])!) }
        return String(s)
    }
}
