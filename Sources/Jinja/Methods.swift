// Python methods of str, dict and list that chat templates call (`content.strip()`,
// `message.get('x')`, `tools.items()`…), with Python's semantics.

let stringMethods: Set<String> = [
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
    "title", "capitalize", "replace", "format", "join", "find", "rfind", "count", "index",
    "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "removeprefix", "removesuffix",
    "center", "ljust", "rjust", "zfill", "swapcase", "partition", "rpartition",
]
let dictMethods: Set<String> = ["get", "items", "keys", "values", "copy", "update", "pop", "setdefault", "clear", "popitem"]
let listMethods: Set<String> = ["append", "extend", "insert", "pop", "remove", "clear", "reverse", "sort", "index", "count", "copy"]
let tupleMethods: Set<String> = ["index", "count"]
/// What jinja2's ImmutableSandboxedEnvironment refuses (`modifies_known_mutable`).
let mutatingMethods: Set<String> = ["append", "extend", "insert", "pop", "remove", "clear", "reverse", "sort", "update", "setdefault", "popitem"]

/// Python's `str.isspace` characters: what `strip()` and `split()` treat as whitespace.
@inline(__always) func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
    switch s.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
    default: return false
    }
}

func pythonStrip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
    let set = chars.map { Set($0.unicodeScalars) }
    func strip(_ c: Unicode.Scalar) -> Bool { set?.contains(c) ?? isPythonSpace(c) }
    let scalars = s.unicodeScalars
    var start = scalars.startIndex, end = scalars.endIndex
    if leading { while start < end, strip(scalars[start]) { start = scalars.index(after: start) } }
    if trailing {
        while end > start {
            let p = scalars.index(before: end)
            if !strip(scalars[p]) { break }
            end = p
        }
    }
    if start == scalars.startIndex && end == scalars.endIndex { return s }
    return String(scalars[start..<end])
}

/// Python `str.split(sep, maxsplit)`.
func pythonSplit(_ s: String, _ sep: String?, maxSplit: Int) -> [String] {
    var parts: [String] = []
    if let sep {
        var rest = Substring(s)
        while maxSplit < 0 || parts.count < maxSplit, let r = rangeOfBytes(sep, in: rest) {
            parts.append(String(rest[rest.startIndex..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
    let scalars = Array(s.unicodeScalars)
    var i = 0
    while i < scalars.count {
        while i < scalars.count && isPythonSpace(scalars[i]) { i += 1 }
        if i == scalars.count { break }
        if maxSplit >= 0 && parts.count == maxSplit {
            var tail = String.UnicodeScalarView()
            tail.append(contentsOf: scalars[i...])
            // Python keeps the remainder as is, minus trailing whitespace.
            parts.append(pythonStrip(String(tail), nil, leading: false, trailing: true))
            return parts
        }
        var word = String.UnicodeScalarView()
        while i < scalars.count && !isPythonSpace(scalars[i]) { word.append(scalars[i]); i += 1 }
        parts.append(String(word))
    }
    return parts
}

/// Byte-exact substring search (Swift's `String` search compares by grapheme; Python by code point).
func rangeOfBytes(_ needle: String, in hay: Substring) -> Range<String.Index>? {
    let n = Array(needle.utf8)
    guard !n.isEmpty else { return hay.startIndex..<hay.startIndex }
    let h = hay.utf8
    var i = h.startIndex
    while i != h.endIndex {
        if h[i] == n[0] {
            var j = i, k = 0
            while k < n.count && j != h.endIndex && h[j] == n[k] { j = h.index(after: j); k += 1 }
            if k == n.count { return i..<j }
        }
        i = h.index(after: i)
    }
    return nil
}

func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    if old.isEmpty {
        var out = ""
        var n = 0
        for c in s.unicodeScalars {
            if count < 0 || n < count { out += new; n += 1 }
            out.unicodeScalars.append(c)
        }
        if count < 0 || n < count { out += new }
        return out
    }
    var out = ""
    var rest = Substring(s)
    var n = 0
    while count < 0 || n < count, let r = rangeOfBytes(old, in: rest) {
        out += rest[rest.startIndex..<r.lowerBound]
        out += new
        rest = rest[r.upperBound...]
        n += 1
    }
    out += rest
    return out
}

/// Python `str.title()`: a letter after a non-letter is upper-cased, other letters lower-cased.
func pythonTitle(_ s: String) -> String {
    var out = ""
    var previousCased = false
    for c in s.unicodeScalars {
        let isLetter = c.properties.isAlphabetic
        if isLetter {
            out += previousCased ? String(c).lowercased() : String(c).uppercased()
        } else {
            out.unicodeScalars.append(c)
        }
        previousCased = isLetter
    }
    return out
}

func pythonCapitalize(_ s: String) -> String {
    guard let first = s.unicodeScalars.first else { return s }
    return String(first).uppercased() + String(s.unicodeScalars.dropFirst()).lowercased()
}

extension Interpreter {
    /// A method call `receiver.name(args)` handled without building a bound method; nil when
    /// `name` is not a method of the receiver (then it is an attribute holding a callable).
    func callMethodDirect(_ receiver: Value, _ member: Member, _ args: Arguments) throws -> Value? {
        let name = member.name
        switch receiver {
        case .string: guard member.isStringMethod else { return nil }
        case .dict: guard member.isDictMethod else { return nil }
        case .list(let l): guard l.isTuple ? member.isTupleMethod : member.isListMethod else { return nil }
        case .loop: guard name == "cycle" || name == "changed" else { return nil }
        default: return nil
        }
        let positional = try args.positional.map { try eval($0) }
        var keyword: [(String, Value)] = []
        for (k, e) in args.keyword { keyword.append((k, try eval(e))) }
        return try callMethod(receiver, name, positional, keyword)
    }

    func callMethod(_ receiver: Value, _ name: String, _ positional: [Value], _ keyword: [(String, Value)]) throws -> Value {
        let a = ArgumentReader(positional: positional, keyword: keyword, function: name)
        if options.immutable, mutatingMethods.contains(name), receiver.isList || { if case .dict = receiver { return true }; return false }() {
            throw fail("access to attribute '\(name)' of '\(receiver.typeName)' object is unsafe.")
        }
        switch receiver {
        case .string(let s): return try stringMethod(s, name, a)
        case .dict(let d):
            switch name {
            case "get":
                guard case .string(let k) = try a.required(0, "key") else { return try a.value(1, "default") ?? .none }
                if let v = d[k] { return v }
                return try a.value(1, "default") ?? .none
            case "items": return .array(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            case "keys": return .array(d.keys.map { .string($0) })
            case "values": return .array(d.pairs.map { $0.1 })
            case "copy": return .object(d.pairs)
            case "update":
                if case .dict(let other)? = try a.value(0, "other") { for (k, v) in other.pairs { d[k] = v } }
                for (k, v) in keyword { d[k] = v }
                return .none
            case "pop":
                guard case .string(let k) = try a.required(0, "key") else { return .none }
                if let v = d[k] { d[k] = nil; return v }
                if let def = try a.value(1, "default") { return def }
                throw fail("KeyError: '\(k)'")
            case "setdefault":
                guard case .string(let k) = try a.required(0, "key") else { return .none }
                if let v = d[k] { return v }
                let v = try a.value(1, "default") ?? .none
                d[k] = v
                return v
            case "clear":
                for k in d.keys { d[k] = nil }
                return .none
            default: break
            }
        case .list(let l):
            switch name {
            case "append": l.items.append(try a.required(0, "object")); return .none
            case "extend": l.items += try iterationItems(try a.required(0, "iterable")); return .none
            case "insert":
                let i = try a.int(0, "index") ?? 0
                let idx = max(0, min(l.items.count, i < 0 ? i + l.items.count : i))
                l.items.insert(try a.required(1, "object"), at: idx)
                return .none
            case "pop":
                guard !l.items.isEmpty else { throw fail("pop from empty list") }
                let i = try a.int(0, "index") ?? -1
                let idx = i < 0 ? i + l.items.count : i
                guard idx >= 0 && idx < l.items.count else { throw fail("pop index out of range") }
                return l.items.remove(at: idx)
            case "remove":
                let v = try a.required(0, "value")
                guard let i = l.items.firstIndex(where: { $0.pyEquals(v) }) else { throw fail("list.remove(x): x not in list") }
                l.items.remove(at: i)
                return .none
            case "clear": l.items.removeAll(); return .none
            case "reverse": l.items.reverse(); return .none
            case "copy": return .array(l.items)
            case "index":
                let v = try a.required(0, "value")
                guard let i = l.items.firstIndex(where: { $0.pyEquals(v) }) else { throw fail("\(v.pythonRepr) is not in list") }
                return .int(i)
            case "count":
                let v = try a.required(0, "value")
                return .int(l.items.filter { $0.pyEquals(v) }.count)
            default: break
            }
        case .loop(let state):
            if name == "cycle" {
                guard !positional.isEmpty else { throw fail("no items for cycling given") }
                return positional[state.index0 % positional.count]
            }
            if name == "changed" {
                defer { state.lastChangedArgs = positional }
                guard let last = state.lastChangedArgs else { return .bool(true) }
                return .bool(!Value.array(last).pyEquals(.array(positional)))
            }
        default: break
        }
        throw fail("'\(receiver.typeName)' object has no method '\(name)'")
    }

    func stringMethod(_ s: String, _ name: String, _ a: ArgumentReader) throws -> Value {
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try a.optionalString(0, "chars")
            return .string(pythonStrip(s, chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "split", "rsplit":
            let sep = try a.optionalString(0, "sep")
            if sep == "" { throw fail("empty separator") }
            let maxSplit = try a.int(1, "maxsplit") ?? -1
            if name == "rsplit" && maxSplit >= 0 {
                // rsplit with a limit: split from the right.
                let all = pythonSplit(s, sep, maxSplit: -1)
                if all.count <= maxSplit + 1 { return .array(all.map { .string($0) }) }
                let head = all[0..<(all.count - maxSplit)].joined(separator: sep ?? " ")
                return .array(([head] + all[(all.count - maxSplit)...]).map { .string($0) })
            }
            return .array(pythonSplit(s, sep, maxSplit: maxSplit).map { .string($0) })
        case "splitlines":
            var lines = pythonSplit(normalizeNewlines(s, keepTrailingNewline: true), "\n", maxSplit: -1)
            if lines.last == "" { lines.removeLast() }
            return .array(lines.map { .string($0) })
        case "startswith", "endswith":
            let arg = try a.required(0, name == "startswith" ? "prefix" : "suffix")
            var candidates: [String] = []
            if case .string(let p) = arg { candidates = [p] } else if case .list(let l) = arg {
                for item in l.items { if case .string(let p) = item { candidates.append(p) } }
            } else { throw fail("\(name) first arg must be str or a tuple of str, not \(arg.typeName)") }
            let bytes = Array(s.utf8)
            for p in candidates {
                let pb = Array(p.utf8)
                if pb.count <= bytes.count {
                    if name == "startswith" ? bytes[0..<pb.count].elementsEqual(pb) : bytes[(bytes.count - pb.count)...].elementsEqual(pb) { return .bool(true) }
                }
            }
            return .bool(false)
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "swapcase": return .string(String(s.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) }))
        case "title": return .string(pythonTitle(s))
        case "capitalize": return .string(pythonCapitalize(s))
        case "replace":
            guard case .string(let old) = try a.required(0, "old"), case .string(let new) = try a.required(1, "new") else {
                throw fail("replace() arguments must be str")
            }
            try checkReplaceSize(s, old, new)
            return .string(pythonReplace(s, old, new, count: try a.int(2, "count") ?? -1))
        case "format": return .string(try pythonFormat(s, a.positional, a.keyword))
        case "join":
            let items = try iterationItems(try a.required(0, "iterable"))
            var parts: [String] = []
            for item in items {
                guard case .string(let p) = item else { throw fail("sequence item: expected str instance, \(item.typeName) found") }
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "find", "rfind", "index":
            guard case .string(let sub) = try a.required(0, "sub") else { throw fail("\(name)() argument must be str") }
            let hay = Array(s.unicodeScalars), needle = Array(sub.unicodeScalars)
            var found = -1
            if needle.count <= hay.count {
                let range = name == "rfind" ? Array((0...(hay.count - needle.count)).reversed()) : Array(0...(hay.count - needle.count))
                for i in range where hay[i..<(i + needle.count)].elementsEqual(needle) { found = i; break }
            }
            if name == "index" && found < 0 { throw fail("substring not found") }
            return .int(found)
        case "count":
            guard case .string(let sub) = try a.required(0, "sub") else { throw fail("count() argument must be str") }
            if sub.isEmpty { return .int(s.unicodeScalars.count + 1) }
            return .int(pythonSplit(s, sub, maxSplit: -1).count - 1)
        case "isdigit": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonSpace))
        case "isupper": return .bool(s.contains { $0.isCased } && !s.contains { $0.isLowercase })
        case "islower": return .bool(s.contains { $0.isCased } && !s.contains { $0.isUppercase })
        case "removeprefix", "removesuffix":
            guard case .string(let p) = try a.required(0, "affix") else { throw fail("\(name)() argument must be str") }
            let b = Array(s.utf8), pb = Array(p.utf8)
            if name == "removeprefix", b.starts(with: pb) { return .string(String(decoding: b[pb.count...], as: UTF8.self)) }
            if name == "removesuffix", !pb.isEmpty, b.count >= pb.count, b[(b.count - pb.count)...].elementsEqual(pb) {
                return .string(String(decoding: b[..<(b.count - pb.count)], as: UTF8.self))
            }
            return .string(s)
        case "center", "ljust", "rjust":
            let width = try a.int(0, "width") ?? 0
            let fill = try a.optionalString(1, "fillchar") ?? " "
            return .string(try pad(s, width: width, fill: fill, mode: name))
        case "zfill":
            let width = try a.int(0, "width") ?? 0
            let n = s.unicodeScalars.count
            if n >= width { return .string(s) }
            try checkSize(width)
            var body = s
            var sign = ""
            if let f = s.first, f == "-" || f == "+" { sign = String(f); body.removeFirst() }
            return .string(sign + String(repeating: "0", count: width - n) + body)
        case "partition", "rpartition":
            guard case .string(let sep) = try a.required(0, "sep") else { throw fail("\(name)() argument must be str") }
            let parts = pythonSplit(s, sep, maxSplit: -1)
            if parts.count == 1 { return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)]) }
            if name == "partition" { return .tuple([.string(parts[0]), .string(sep), .string(parts[1...].joined(separator: sep))]) }
            return .tuple([.string(parts[..<(parts.count - 1)].joined(separator: sep)), .string(sep), .string(parts[parts.count - 1])])
        default: break
        }
        throw fail("'str' object has no method '\(name)'")
    }

    /// `replace` can multiply a string's size: refuse results beyond the output limit up front.
    func checkReplaceSize(_ s: String, _ old: String, _ new: String) throws {
        guard new.utf8.count > old.utf8.count else { return }
        let occurrences = old.isEmpty ? s.unicodeScalars.count + 1 : pythonSplit(s, old, maxSplit: -1).count - 1
        let growth = occurrences.multipliedReportingOverflow(by: new.utf8.count - old.utf8.count)
        if growth.overflow || s.utf8.count + growth.partialValue > options.maxOutputBytes {
            try checkSize(Int.max)
        }
    }

    /// Refuses a string (width, repetition) that could not fit in the output anyway.
    func checkSize(_ n: Int) throws {
        if n > options.maxOutputBytes {
            throw JinjaError.limit(message: "a string of \(n) characters is larger than the \(options.maxOutputBytes)-byte output limit", line: line)
        }
    }

    func pad(_ s: String, width: Int, fill: String, mode: String) throws -> String {
        let n = s.unicodeScalars.count
        guard width > n else { return s }
        try checkSize(width)
        let total = width - n
        switch mode {
        case "ljust": return s + String(repeating: fill, count: total)
        case "rjust": return String(repeating: fill, count: total) + s
        default:
            // Python's str.center puts the extra space on the left when the string length is odd.
            let left = total / 2 + (total & n & 1)
            return String(repeating: fill, count: left) + s + String(repeating: fill, count: total - left)
        }
    }

    /// Python `str.format` for `{}`, `{0}`, `{name}`, `{name.attr}`, `{{`/`}}` and `!r`/`!s`.
    func pythonFormat(_ format: String, _ positional: [Value], _ keyword: [(String, Value)]) throws -> String {
        var out = ""
        var auto = 0
        var it = format.unicodeScalars.makeIterator()
        while let c = it.next() {
            if c == "}" {
                if it.next() == "}" { out += "}"; continue }
                throw fail("Single '}' encountered in format string")
            }
            guard c == "{" else { out.unicodeScalars.append(c); continue }
            var field = ""
            var closed = false
            var first = true
            while let d = it.next() {
                if first && d == "{" { out += "{"; closed = true; field = "\u{0}"; break }
                first = false
                if d == "}" { closed = true; break }
                field.unicodeScalars.append(d)
            }
            if field == "\u{0}" { continue }
            guard closed else { throw fail("Single '{' encountered in format string") }
            var conversion: Character?
            if let bang = field.firstIndex(of: "!") {
                conversion = field[field.index(after: bang)...].first
                field = String(field[..<bang])
            }
            if let colon = field.firstIndex(of: ":") {
                if field[field.index(after: colon)...].isEmpty == false { throw fail("format specs in str.format ('\(field)') are not supported") }
                field = String(field[..<colon])
            }
            let pathParts = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            var value: Value
            let head = pathParts[0]
            if head.isEmpty {
                guard auto < positional.count else { throw fail("Replacement index \(auto) out of range for positional args tuple") }
                value = positional[auto]
                auto += 1
            } else if let i = Int(head) {
                guard i < positional.count else { throw fail("Replacement index \(i) out of range for positional args tuple") }
                value = positional[i]
            } else {
                guard let v = keyword.first(where: { $0.0 == head })?.1 else { throw fail("KeyError: '\(head)' in str.format") }
                value = v
            }
            for attr in pathParts.dropFirst() { value = try getAttribute(value, attr) }
            out += conversion == "r" ? value.pythonRepr : value.pythonStr
        }
        return out
    }
}

/// Positional-or-keyword argument access for filters, methods and globals.
struct ArgumentReader {
    let positional: [Value]
    let keyword: [(String, Value)]
    let function: String

    func value(_ index: Int, _ name: String) throws -> Value? {
        if let kv = keyword.first(where: { $0.0 == name }) { return kv.1 }
        return index < positional.count ? positional[index] : nil
    }

    func required(_ index: Int, _ name: String) throws -> Value {
        guard let v = try value(index, name) else {
            throw RuntimeFailure(message: "\(function)() missing required argument '\(name)'")
        }
        return v
    }

    func int(_ index: Int, _ name: String) throws -> Int? {
        guard let v = try value(index, name), !v.isNone else { return nil }
        guard let i = v.intIndex else { throw RuntimeFailure(message: "\(function)() argument '\(name)' must be an integer, not \(v.typeName)") }
        return i
    }

    func bool(_ index: Int, _ name: String) throws -> Bool? {
        guard let v = try value(index, name) else { return nil }
        return v.isTruthy
    }

    func optionalString(_ index: Int, _ name: String) throws -> String? {
        guard let v = try value(index, name), !v.isNone else { return nil }
        guard case .string(let s) = v else { throw RuntimeFailure(message: "\(function)() argument '\(name)' must be str or None, not \(v.typeName)") }
        return s
    }
}
