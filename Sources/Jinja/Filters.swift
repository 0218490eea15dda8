#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// jinja2's built-in filters that chat templates use, plus transformers' `tojson`.

extension Interpreter {
    func applyFilter(_ name: String, _ value: Value, _ args: Arguments) throws -> Value {
        try filter(name, value, try filterArguments(args, name))
    }

    func filterArguments(_ args: Arguments, _ name: String) throws -> ArgumentReader {
        let positional = args.positional.isEmpty ? [] : try args.positional.map { try eval($0) }
        var keyword: [(String, Value)] = []
        for (k, e) in args.keyword { keyword.append((k, try eval(e))) }
        return ArgumentReader(positional: positional, keyword: keyword, function: name)
    }

    /// transformers' tojson: `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
    func jsonWriter(_ value: Value, _ a: ArgumentReader) throws -> ToJSON {
        try ToJSON(value: value, indent: try a.value(0, "indent"), separators: try a.value(2, "separators"),
                       sortKeys: try a.bool(3, "sort_keys") ?? false, ensureAscii: try a.bool(1, "ensure_ascii") ?? false)
    }

    func filter(_ name: String, _ value: Value, _ a: ArgumentReader) throws -> Value {
        switch name {
        case "default", "d":
            let def = try a.value(0, "default_value") ?? .string("")
            let boolean = try a.bool(1, "boolean") ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return def }
            return value
        default:
            break
        }
        if case .undefined(let hint) = value, !["length", "count", "list", "items", "string", "trim", "upper", "lower", "title", "capitalize", "join", "first", "last", "escape", "e", "safe", "wordcount", "center", "indent", "unique", "reverse", "sort", "select", "reject", "selectattr", "rejectattr", "map", "batch", "dictsort", "int", "float", "replace"].contains(name) {
            throw fail(undefinedMessage(hint))
        }
        switch name {
        case "trim":
            return .string(pythonStrip(value.pythonStr, try a.optionalString(0, "chars"), leading: true, trailing: true))
        case "tojson":
            return .string(try jsonWriter(value, a).write())
        case "length", "count":
            switch value {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let l): return .int(l.items.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw fail("object of type '\(value.typeName)' has no len()")
            }
        case "upper": return .string(value.pythonStr.uppercased())
        case "lower": return .string(value.pythonStr.lowercased())
        case "capitalize": return .string(pythonCapitalize(value.pythonStr))
        case "title": return .string(jinjaTitle(value.pythonStr))
        case "replace":
            guard case .string(let old) = try a.required(0, "old"), case .string(let new) = try a.required(1, "new") else {
                throw fail("replace filter arguments must be strings")
            }
            try checkReplaceSize(value.pythonStr, old, new)
            return .string(pythonReplace(value.pythonStr, old, new, count: try a.int(2, "count") ?? -1))
        case "join":
            let sep = try a.optionalString(0, "d") ?? ""
            var items = try iterationItems(value)
            if let attr = try a.value(1, "attribute") { items = try items.map { try getItem($0, attr) } }
            return .string(items.map { $0.pythonStr }.joined(separator: sep))
        case "first":
            return try iterationItems(value).first ?? .undefined(.text("No first item, sequence was empty."))
        case "last":
            return try iterationItems(value).last ?? .undefined(.text("No last item, sequence was empty."))
        case "list":
            return .array(try iterationItems(value))
        case "items":
            if case .undefined = value { return .array([]) }
            guard case .dict(let d) = value else { throw fail("items filter: can only get item pairs from a mapping, not \(value.typeName)") }
            return .array(d.pairs.map { .tuple([.string($0.0), $0.1]) })
        case "string": return .string(value.pythonStr)
        case "int":
            let def = try a.value(0, "default") ?? .int(0)
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d): return d.isFinite && abs(d) < 9.2e18 ? .int(Int(d)) : def
            case .string(let s):
                let t = pythonStrip(s, nil, leading: true, trailing: true).replacingUnderscores
                if let i = Int(t, radix: try a.int(1, "base") ?? 10) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return def
            default: return def
            }
        case "float":
            let def = try a.value(0, "default") ?? .float(0)
            switch value {
            case .float: return value
            case .int(let i): return .float(Double(i))
            case .bool(let b): return .float(b ? 1 : 0)
            case .string(let s): return Double(pythonStrip(s, nil, leading: true, trailing: true)).map { .float($0) } ?? def
            default: return def
            }
        case "abs":
            switch value {
            case .int(let i):
                if i == Int.min { throw fail("integer overflow (beyond 64-bit) in abs") }
                return .int(abs(i))
            case .float(let d): return .float(abs(d))
            case .bool(let b): return .int(b ? 1 : 0)
            default: throw fail("bad operand type for abs(): '\(value.typeName)'")
            }
        case "round":
            guard let x = value.numericValue else { throw fail("round filter needs a number, not \(value.typeName)") }
            let precision = try a.int(0, "precision") ?? 0
            let method = try a.optionalString(1, "method") ?? "common"
            let scale = pow(10.0, Double(precision))
            switch method {
            case "common":
                if case .int = value { return value }
                return .float((x * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .float((x * scale).rounded(.up) / scale)
            case "floor": return .float((x * scale).rounded(.down) / scale)
            default: throw fail("method must be common, ceil or floor")
            }
        case "indent":
            return .string(try indentFilter(value.pythonStr, a))
        case "safe": return value
        case "e", "escape":
            var out = ""
            for c in value.pythonStr.unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.unicodeScalars.append(c)
                }
            }
            return .string(out)
        case "unique":
            let caseSensitive = try a.bool(0, "case_sensitive") ?? false
            let attribute = try a.value(1, "attribute")
            var seen: [Value] = []
            var out: [Value] = []
            for item in try iterationItems(value) {
                var key = attribute != nil ? try getItem(item, attribute!) : item
                if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
                if !seen.contains(where: { $0.pyEquals(key) }) { seen.append(key); out.append(item) }
            }
            return .array(out)
        case "reverse":
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try iterationItems(value).reversed())
        case "sort":
            let reverse = try a.bool(0, "reverse") ?? false
            let caseSensitive = try a.bool(1, "case_sensitive") ?? false
            let attribute = try a.value(2, "attribute")
            let items = try iterationItems(value)
            let keys = try items.map { item -> Value in
                let k = attribute != nil ? try getItem(item, attribute!) : item
                if !caseSensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }
            return .array(try stableSort(items, keys: keys, reverse: reverse))
        case "dictsort":
            guard case .dict(let d) = value else { throw fail("dictsort filter needs a mapping, not \(value.typeName)") }
            let caseSensitive = try a.bool(0, "case_sensitive") ?? false
            let by = try a.optionalString(1, "by") ?? "key"
            let reverse = try a.bool(2, "reverse") ?? false
            let items: [Value] = d.pairs.map { .tuple([.string($0.0), $0.1]) }
            let keys = d.pairs.map { pair -> Value in
                let k = by == "value" ? pair.1 : .string(pair.0)
                if !caseSensitive, case .string(let s) = k { return .string(s.lowercased()) }
                return k
            }
            return .array(try stableSort(items, keys: keys, reverse: reverse))
        case "batch":
            guard let size = try a.int(0, "linecount"), size > 0 else { throw fail("batch filter needs a positive line count") }
            let fill = try a.value(1, "fill_with")
            var out: [Value] = []
            var cur: [Value] = []
            for item in try iterationItems(value) {
                cur.append(item)
                if cur.count == size { out.append(.array(cur)); cur = [] }
            }
            if !cur.isEmpty {
                if let fill { while cur.count < size { cur.append(fill) } }
                out.append(.array(cur))
            }
            return .array(out)
        case "wordcount":
            var count = 0, inWord = false
            for c in value.pythonStr.unicodeScalars {
                let w = c.properties.isAlphabetic || c.properties.numericType != nil || c == "_"
                if w && !inWord { count += 1 }
                inWord = w
            }
            return .int(count)
        case "center":
            return .string(try pad(value.pythonStr, width: try a.int(0, "width") ?? 80, fill: " ", mode: "center"))
        case "map": return try mapFilter(value, a)
        case "select", "reject": return try selectFilter(value, a, attribute: false, keep: name == "select")
        case "selectattr", "rejectattr": return try selectFilter(value, a, attribute: true, keep: name == "selectattr")
        case "min", "max":
            let items = try iterationItems(value)
            guard var best = items.first else { return .undefined(.text("No aggregated item, sequence was empty.") )}
            for item in items.dropFirst() {
                guard let c = item.pyCompare(best) else { throw fail("cannot compare \(item.typeName) and \(best.typeName)") }
                if name == "min" ? c < 0 : c > 0 { best = item }
            }
            return best
        case "sum":
            var acc = try a.value(1, "start") ?? .int(0)
            let attribute = try a.value(0, "attribute")
            for item in try iterationItems(value) { acc = try binary(.add, acc, attribute != nil ? try getItem(item, attribute!) : item) }
            return acc
        case "attr":
            guard case .string(let n) = try a.required(0, "name") else { throw fail("attr filter needs a string name") }
            return try getAttribute(value, n)
        case "format":
            return .string(try percentFormat(value.pythonStr, a.positional))
        default:
            throw fail("no filter named '\(name)' (not a jinja2 filter this renderer supports)")
        }
    }

    func stableSort(_ items: [Value], keys: [Value], reverse: Bool) throws -> [Value] {
        var failure: String?
        let order = Array(items.indices).sorted { i, j in
            guard let c = keys[i].pyCompare(keys[j]) else {
                failure = "'<' not supported between instances of '\(keys[i].typeName)' and '\(keys[j].typeName)'"
                return i < j
            }
            if c == 0 { return i < j }
            return reverse ? c > 0 : c < 0
        }
        if let failure { throw fail(failure) }
        return order.map { items[$0] }
    }

    /// jinja2's `title` filter: capitalises after spaces and `-({[<`, lower-cases the rest.
    func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atStart = true
        for c in s.unicodeScalars {
            let boundary = isPythonSpace(c) || "-({[<".unicodeScalars.contains(c)
            if boundary {
                out.unicodeScalars.append(c)
                atStart = true
            } else {
                out += atStart ? String(c).uppercased() : String(c).lowercased()
                atStart = false
            }
        }
        return out
    }

    func indentFilter(_ text: String, _ a: ArgumentReader) throws -> String {
        var indention = "    "
        if let w = try a.value(0, "width") {
            if case .string(let s) = w { indention = s } else if let n = w.intIndex {
                try checkSize(n)
                indention = String(repeating: " ", count: max(0, n))
            }
        }
        let first = try a.bool(1, "first") ?? false
        let blank = try a.bool(2, "blank") ?? false
        // jinja2 appends a newline before splitlines(), so a trailing newline gives no extra line.
        var lines = pythonSplit(normalizeNewlines(text + "\n", keepTrailingNewline: true), "\n", maxSplit: -1)
        lines.removeLast()
        var rv: String
        if blank {
            rv = lines.joined(separator: "\n" + indention)
        } else {
            rv = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
            }
        }
        return first ? indention + rv : rv
    }

    func mapFilter(_ value: Value, _ a: ArgumentReader) throws -> Value {
        let items = try iterationItems(value)
        if let attr = a.keyword.first(where: { $0.0 == "attribute" })?.1 {
            let def = a.keyword.first(where: { $0.0 == "default" })?.1
            return .array(try items.map { item in
                let v = try getItem(item, attr)
                if v.isUndefined, let def { return def }
                return v
            })
        }
        guard case .string(let filterName)? = a.positional.first else { throw fail("map filter needs a filter name or attribute=") }
        let rest = ArgumentReader(positional: Array(a.positional.dropFirst()), keyword: a.keyword, function: filterName)
        return .array(try items.map { try filter(filterName, $0, rest) })
    }

    func selectFilter(_ value: Value, _ a: ArgumentReader, attribute: Bool, keep: Bool) throws -> Value {
        var args = a.positional
        var attr: Value?
        if attribute {
            guard !args.isEmpty else { throw fail("selectattr/rejectattr need an attribute name") }
            attr = args.removeFirst()
        }
        var testName: String?
        if !args.isEmpty {
            guard case .string(let t) = args.removeFirst() else { throw fail("test name must be a string") }
            testName = t
        }
        var out: [Value] = []
        for item in try iterationItems(value) {
            let subject = attr != nil ? try getItem(item, attr!) : item
            let ok = try testName.map { try test($0, subject, args) } ?? subject.isTruthy
            if ok == keep { out.append(item) }
        }
        return .array(out)
    }

    /// Python `"%s … %d" % args` (the `format` filter).
    func percentFormat(_ format: String, _ args: [Value]) throws -> String {
        var out = ""
        var i = 0
        var it = format.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "%" else { out.unicodeScalars.append(c); continue }
            guard let spec = it.next() else { throw fail("incomplete format") }
            if spec == "%" { out += "%"; continue }
            guard i < args.count else { throw fail("not enough arguments for format string") }
            let v = args[i]
            i += 1
            switch spec {
            case "s": out += v.pythonStr
            case "r": out += v.pythonRepr
            case "d", "i":
                guard let n = v.numericValue, abs(n) < 9.2e18 else { throw fail("%d format: a real number is required, not \(v.typeName)") }
                out += String(Int(n))
            default: throw fail("format spec '%\(spec)' is not supported")
            }
        }
        return out
    }
}

extension String {
    var replacingUnderscores: String { String(filter { $0 != "_" }) }
}
