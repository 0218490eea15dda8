// `is` tests and the global functions (range, namespace, dict, raise_exception, strftime_now).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Interpreter {
    func applyTest(_ name: String, _ value: Value, _ args: Arguments) throws -> Bool {
        try test(name, value, try args.positional.map { try eval($0) })
    }

    func test(_ name: String, _ value: Value, _ args: [Value]) throws -> Bool {
        func arg() throws -> Value {
            guard let a = args.first else { throw fail("test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": return value.isString
        case "number":
            switch value { case .int, .float, .bool: return true; default: return false }
        case "integer":
            if case .int = value { return true }
            return false
        case "float": return value.isFloat
        case "boolean":
            if case .bool = value { return true }
            return false
        case "true":
            if case .bool(true) = value { return true }
            return false
        case "false":
            if case .bool(false) = value { return true }
            return false
        case "mapping":
            if case .dict = value { return true }
            return false
        case "iterable":
            switch value { case .string, .list, .dict, .undefined: return true; default: return false }
        case "sequence":
            switch value { case .string, .list, .dict, .undefined: return true; default: return false }
        case "callable":
            if case .callable = value { return true }
            return false
        case "even", "odd":
            guard let i = value.intIndex else { throw fail("test '\(name)' needs an integer, not \(value.typeName)") }
            return (i % 2 == 0) == (name == "even")
        case "divisibleby":
            guard let i = value.intIndex, let n = try arg().intIndex else { throw fail("divisibleby needs integers") }
            if n == 0 { throw fail("integer division or modulo by zero") }
            return i % n == 0
        case "eq", "equalto", "==": return value.pyEquals(try arg())
        case "ne", "!=": return !value.pyEquals(try arg())
        case "lt", "lessthan", "<": return try compare(.lt, value, try arg())
        case "le", "<=": return try compare(.le, value, try arg())
        case "gt", "greaterthan", ">": return try compare(.gt, value, try arg())
        case "ge", ">=": return try compare(.ge, value, try arg())
        case "in": return try contains(try arg(), value)
        case "sameas":
            let other = try arg()
            switch (value, other) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.list(let a), .list(let b)): return a === b
            case (.dict(let a), .dict(let b)): return a === b
            default: return false
            }
        case "lower":
            let s = value.pythonStr
            return s.contains { $0.isCased } && !s.contains { $0.isUppercase }
        case "upper":
            let s = value.pythonStr
            return s.contains { $0.isCased } && !s.contains { $0.isLowercase }
        case "escaped": return false
        default:
            throw fail("no test named '\(name)' (not a jinja2 test this renderer supports)")
        }
    }

    func callGlobal(_ name: String, _ positional: [Value], _ keyword: [(String, Value)]) throws -> Value {
        let a = ArgumentReader(positional: positional, keyword: keyword, function: name)
        switch name {
        case "range":
            var ints: [Int] = []
            for v in positional {
                guard let i = v.intIndex, !v.isFloat else { throw fail("'\(v.typeName)' object cannot be interpreted as an integer") }
                ints.append(i)
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw fail("range expected 1 to 3 arguments, got \(ints.count)")
            }
            if step == 0 { throw fail("range() arg 3 must not be zero") }
            // Counted in floating point first: extreme bounds must not overflow.
            let approx = ((Double(stop) - Double(start)) / Double(step)).rounded(.up)
            if approx > Double(options.maxRange) {
                throw JinjaError.limit(message: "range too big: the sandbox blocks ranges larger than \(options.maxRange) items", line: line)
            }
            var items: [Value] = []
            var v = start
            while step > 0 ? v < stop : v > stop {
                items.append(.int(v))
                let next = v.addingReportingOverflow(step)
                if next.overflow { break }
                v = next.partialValue
            }
            return .array(items)
        case "namespace", "dict":
            let d = DictBox()
            if case .dict(let initial)? = positional.first { for (k, v) in initial.pairs { d[k] = v } }
            for (k, v) in keyword {
                if name == "namespace" && k.hasPrefix("_") {
                    throw fail("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(k)'")
                }
                d[k] = v
            }
            return name == "namespace" ? .namespace(d) : .dict(d)
        case "raise_exception":
            throw JinjaError.raised(message: (try a.value(0, "message") ?? .string("")).pythonStr)
        case "strftime_now":
            guard case .string(let format) = try a.required(0, "format") else { throw fail("strftime_now needs a format string") }
            return .string(strftime(format))
        default:
            throw fail("the global '\(name)' is not supported by this renderer")
        }
    }

    /// Python's `datetime.now().strftime(format)` through C's strftime (same directives).
    func strftime(_ format: String) -> String {
        var t = time_t(options.fixedNow ?? Double(time(nil)))
        var tmValue = tm()
        if options.fixedNow != nil { gmtime_r(&t, &tmValue) } else { localtime_r(&t, &tmValue) }
        var buffer = [Int8](repeating: 0, count: 512)
        #if canImport(Glibc)
        let n = Glibc.strftime(&buffer, buffer.count, format, &tmValue)
        #else
        let n = Darwin.strftime(&buffer, buffer.count, format, &tmValue)
        #endif
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
