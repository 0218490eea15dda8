// Expression evaluation with Python's operator semantics and jinja2's attribute/item lookup.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
let globalNames: Set<String> = ["range", "namespace", "dict", "raise_exception", "strftime_now", "lipsum", "cycler", "joiner"]

func undefinedMessage(_ reason: UndefinedReason) -> String { reason.message }

extension Interpreter {
    func eval(_ e: Expr) throws -> Value {
        switch e {
        case .literal(let v):
            return v
        case .name(let n):
            if let v = scope.lookup(n.id) { return v }
            if globalNames.contains(n.name) { return .callable(Callable(.global(n.name))) }
            return .undefined(.name(n.name))
        case .attribute(let obj, let member):
            return try getMember(try eval(obj), member)
        case .subscript(let obj, let key):
            return try getItem(try eval(obj), try eval(key))
        case .slice(let obj, let start, let stop, let step):
            return try slice(try eval(obj), start.map(eval), stop.map(eval), step.map(eval))
        case .call(let callee, let args):
            if case .attribute(let obj, let member) = callee {
                // Method call: dispatch without materialising a bound method.
                let receiver = try eval(obj)
                if let r = try callMethodDirect(receiver, member, args) { return r }
                return try callValue(try getMember(receiver, member), args)
            }
            return try callValue(try eval(callee), args)
        case .filter(let v, let name, let args):
            return try applyFilter(name, try eval(v), args)
        case .test(let v, let name, let args, let negated):
            let r = try applyTest(name, try eval(v), args)
            return .bool(negated ? !r : r)
        case .negate(let x):
            switch try eval(x) {
            case .int(let i):
                if i == Int.min { throw fail("integer overflow (beyond 64-bit) in unary -") }
                return .int(-i)
            case .float(let d): return .float(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            case let v:
                if case .undefined(let h) = v { throw fail(undefinedMessage(h)) }
                throw fail("bad operand type for unary -: '\(v.typeName)'")
            }
        case .plus(let x):
            let v = try eval(x)
            if v.numericValue == nil { throw fail("bad operand type for unary +: '\(v.typeName)'") }
            return v
        case .not(let x):
            return .bool(!(try eval(x).isTruthy))
        case .and(let a, let b):
            let l = try eval(a)
            return l.isTruthy ? try eval(b) : l
        case .or(let a, let b):
            let l = try eval(a)
            return l.isTruthy ? l : try eval(b)
        case .binary(let op, let a, let b):
            return try binary(op, try eval(a), try eval(b))
        case .compare(let first, let rest):
            var left = try eval(first)
            for (op, e) in rest {
                let right = try eval(e)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let test, let otherwise):
            if try eval(test).isTruthy { return try eval(then) }
            if let otherwise { return try eval(otherwise) }
            return .undefined(.text("the inline if-expression was false and has no else section"))
        case .list(let items):
            return .array(try items.map(eval))
        case .tuple(let items):
            return .tuple(try items.map(eval))
        case .dict(let pairs):
            let d = DictBox()
            for (k, v) in pairs {
                let key = try eval(k)
                guard case .string(let ks) = key else {
                    throw fail("dict keys must be strings in this renderer (got \(key.typeName))")
                }
                d[ks] = try eval(v)
            }
            return .dict(d)
        }
    }

    // MARK: - Attribute and item access

    /// `obj.name` with what `name` can mean worked out by the parser.
    @inline(__always) func getMember(_ obj: Value, _ member: Member) throws -> Value {
        switch obj {
        case .dict(let d):
            if member.isDictMethod { return .callable(Callable(.method(obj, member.name))) }
            if let v = d[member.name] { return v }
            return .undefined(.attribute(owner: "dict", name: member.name))
        case .loop(let state):
            if let a = member.loopAttribute { return state.attribute(a) }
            return try getAttribute(obj, member.name)
        default:
            return try getAttribute(obj, member.name)
        }
    }

    /// `obj.name`: jinja2 tries Python's getattr first (so `d.items` is the method), then `obj[name]`.
    func getAttribute(_ obj: Value, _ name: String) throws -> Value {
        switch obj {
        case .undefined(let hint):
            throw fail(undefinedMessage(hint))
        case .dict(let d):
            if dictMethods.contains(name) { return .callable(Callable(.method(obj, name))) }
            if let v = d[name] { return v }
            return .undefined(.attribute(owner: "dict", name: name))
        case .namespace(let d):
            if let v = d[name] { return v }
            return .undefined(.text("'Namespace object' has no attribute '\(name)'"))
        case .loop(let state):
            if let a = LoopAttribute(rawValue: name) { return state.attribute(a) }
            if name == "cycle" || name == "changed" { return .callable(Callable(.method(obj, name))) }
            return .undefined(.text("'LoopContext object' has no attribute '\(name)'"))
        case .string:
            if stringMethods.contains(name) { return .callable(Callable(.method(obj, name))) }
        case .list(let l):
            if (l.isTuple ? tupleMethods : listMethods).contains(name) { return .callable(Callable(.method(obj, name))) }
        default:
            break
        }
        return .undefined(.attribute(owner: obj.typeName, name: name))
    }

    /// `obj[key]`: item first, then attribute for string keys (jinja2's `getitem`).
    func getItem(_ obj: Value, _ key: Value) throws -> Value {
        switch (obj, key) {
        case (.undefined(let hint), _):
            throw fail(undefinedMessage(hint))
        case (.dict(let d), .string(let k)):
            if let v = d[k] { return v }
            return try getAttribute(obj, k)
        case (.namespace, .string(let k)), (.loop, .string(let k)):
            return try getAttribute(obj, k)
        case (.list(let l), _):
            guard let i = key.intIndex else {
                if case .string(let k) = key { return try getAttribute(obj, k) }
                return .undefined(.text("'\(obj.typeName) object' has no element \(key.pythonRepr)"))
            }
            let idx = i < 0 ? i + l.items.count : i
            guard idx >= 0 && idx < l.items.count else {
                return .undefined(.text("'\(obj.typeName) object' has no element \(i)"))
            }
            return l.items[idx]
        case (.string(let s), _):
            guard let i = key.intIndex else {
                if case .string(let k) = key { return try getAttribute(obj, k) }
                return .undefined(.text("'str object' has no element \(key.pythonRepr)"))
            }
            let scalars = Array(s.unicodeScalars)
            let idx = i < 0 ? i + scalars.count : i
            guard idx >= 0 && idx < scalars.count else { return .undefined(.text("'str object' has no element \(i)") )}
            return .string(String(scalars[idx]))
        case (_, .string(let k)):
            return try getAttribute(obj, k)
        default:
            return .undefined(.text("'\(obj.typeName) object' has no element \(key.pythonRepr)"))
        }
    }

    func slice(_ obj: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        func bound(_ v: Value?) throws -> Int? {
            guard let v, !v.isNone else { return nil }
            guard let i = v.intIndex else { throw fail("slice indices must be integers or None") }
            return i
        }
        let st = try bound(step) ?? 1
        if st == 0 { throw fail("slice step cannot be zero") }
        func indices(_ n: Int) throws -> [Int] {
            var lo = try bound(start), hi = try bound(stop)
            if st > 0 {
                var a = lo ?? 0, b = hi ?? n
                if a < 0 { a = max(0, a + n) }
                if b < 0 { b = max(0, b + n) }
                a = min(a, n); b = min(b, n)
                return a < b ? Array(stride(from: a, to: b, by: st)) : []
            } else {
                if let l = lo, l < 0 { lo = l + n }
                if let h = hi, h < 0 { hi = h + n }
                let a = min(lo ?? (n - 1), n - 1)
                let b = max(hi ?? -1, -1)
                return a > b ? Array(stride(from: a, to: b, by: st)) : []
            }
        }
        switch obj {
        case .list(let l):
            let idx = try indices(l.items.count)
            return .list(ListBox(idx.map { l.items[$0] }, isTuple: l.isTuple))
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var r = String.UnicodeScalarView()
            for i in try indices(scalars.count) { r.append(scalars[i]) }
            return .string(String(r))
        case .undefined(let hint):
            throw fail(undefinedMessage(hint))
        default:
            throw fail("'\(obj.typeName)' object is not subscriptable")
        }
    }

    // MARK: - Operators

    func binary(_ op: BinaryOp, _ a: Value, _ b: Value) throws -> Value {
        if op == .concat { return .string(a.pythonStr + b.pythonStr) }
        if case .undefined(let h) = a { throw fail(undefinedMessage(h)) }
        if case .undefined(let h) = b { throw fail(undefinedMessage(h)) }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)):
            if x.utf8.count + y.utf8.count > options.maxOutputBytes {
                throw JinjaError.limit(message: "string longer than \(options.maxOutputBytes) bytes", line: line)
            }
            return .string(x + y)
        case (.add, .list(let x), .list(let y)) where x.isTuple == y.isTuple:
            if x.items.count + y.items.count > options.maxListLength {
                throw JinjaError.limit(message: "list longer than \(options.maxListLength) items", line: line)
            }
            return .list(ListBox(x.items + y.items, isTuple: x.isTuple))
        case (.mod, .string(let format), _):
            // Python's printf-style `"%s: %d" % (a, b)`.
            if case .list(let l) = b, l.isTuple { return .string(try percentFormat(format, l.items)) }
            return .string(try percentFormat(format, [b]))
        case (.mul, .string(let s), _), (.mul, _, .string(let s)):
            guard let n = (a.isString ? b : a).intIndex else { break }
            if n > 0, s.utf8.count.multipliedReportingOverflow(by: n).overflow || s.utf8.count * n > options.maxOutputBytes { throw JinjaError.limit(message: "string repetition larger than \(options.maxOutputBytes) bytes", line: line) }
            return .string(n > 0 ? String(repeating: s, count: n) : "")
        case (.mul, .list(let l), _), (.mul, _, .list(let l)):
            guard let n = (a.isList ? b : a).intIndex else { break }
            if n > 0, l.items.count.multipliedReportingOverflow(by: n).overflow || l.items.count * n > options.maxRange { throw JinjaError.limit(message: "list repetition longer than \(options.maxRange) items", line: line) }
            var r: [Value] = []
            for _ in 0..<max(0, n) { r += l.items }
            return .list(ListBox(r, isTuple: l.isTuple))
        default:
            break
        }
        if let x = a.intIndex, let y = b.intIndex, !a.isFloat, !b.isFloat {
            return try intArithmetic(op, x, y)
        }
        if let x = a.numericValue, let y = b.numericValue {
            return try floatArithmetic(op, x, y)
        }
        let symbol = op.rawValue
        if op == .add, a.isString || b.isString {
            throw fail(a.isString ? "can only concatenate str (not \"\(b.typeName)\") to str"
                                  : "unsupported operand type(s) for +: '\(a.typeName)' and '\(b.typeName)'")
        }
        throw fail("unsupported operand type(s) for \(symbol): '\(a.typeName)' and '\(b.typeName)'")
    }

    func intArithmetic(_ op: BinaryOp, _ x: Int, _ y: Int) throws -> Value {
        func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> Value {
            if r.overflow { throw fail("integer overflow (beyond 64-bit) in '\(op.rawValue)'") }
            return .int(r.partialValue)
        }
        switch op {
        case .add: return try checked(x.addingReportingOverflow(y))
        case .sub: return try checked(x.subtractingReportingOverflow(y))
        case .mul: return try checked(x.multipliedReportingOverflow(by: y))
        case .div:
            if y == 0 { throw fail("division by zero") }
            return .float(Double(x) / Double(y))
        case .floorDiv:
            if y == 0 { throw fail("integer division or modulo by zero") }
            if x == Int.min && y == -1 { throw fail("integer overflow (beyond 64-bit) in '//'") }
            var q = x / y
            if (x % y != 0) && ((x < 0) != (y < 0)) { q -= 1 }
            return .int(q)
        case .mod:
            if y == 0 { throw fail("integer division or modulo by zero") }
            if y == -1 { return .int(0) }
            var r = x % y
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .int(r)
        case .pow:
            if y < 0 { return .float(pow(Double(x), Double(y))) }
            var result = 1, base = x, e = y
            while e > 0 {
                if e & 1 == 1 { result = try checked(result.multipliedReportingOverflow(by: base)).intIndex! }
                e >>= 1
                if e > 0 { base = try checked(base.multipliedReportingOverflow(by: base)).intIndex! }
            }
            return .int(result)
        case .concat:
            return .string(String(x) + String(y))
        }
    }

    func floatArithmetic(_ op: BinaryOp, _ x: Double, _ y: Double) throws -> Value {
        switch op {
        case .add: return .float(x + y)
        case .sub: return .float(x - y)
        case .mul: return .float(x * y)
        case .div:
            if y == 0 { throw fail("float division by zero") }
            return .float(x / y)
        case .floorDiv:
            if y == 0 { throw fail("float floor division by zero") }
            return .float((x / y).rounded(.down))
        case .mod:
            if y == 0 { throw fail("float modulo") }
            var r = x.truncatingRemainder(dividingBy: y)
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .float(r)
        case .pow: return .float(pow(x, y))
        case .concat: return .string(formatPythonFloat(x) + formatPythonFloat(y))
        }
    }

    func compare(_ op: CompareOp, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case .eq: return a.pyEquals(b)
        case .ne: return !a.pyEquals(b)
        case .in: return try contains(b, a)
        case .notIn: return !(try contains(b, a))
        default:
            if case .undefined(let h) = a { throw fail(undefinedMessage(h)) }
            if case .undefined(let h) = b { throw fail(undefinedMessage(h)) }
            guard let c = a.pyCompare(b) else {
                throw fail("'\(op.rawValue)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
            }
            switch op {
            case .lt: return c < 0
            case .le: return c <= 0
            case .gt: return c > 0
            default: return c >= 0
            }
        }
    }

    /// Python `needle in haystack`.
    func contains(_ haystack: Value, _ needle: Value) throws -> Bool {
        switch haystack {
        case .string(let s):
            guard case .string(let n) = needle else {
                throw fail("'in <string>' requires string as left operand, not \(needle.typeName)")
            }
            return n.isEmpty || s.contains(n)
        case .list(let l): return l.items.contains { $0.pyEquals(needle) }
        case .dict(let d), .namespace(let d):
            if case .string(let k) = needle { return d[k] != nil }
            return false
        case .undefined: return false
        default: throw fail("argument of type '\(haystack.typeName)' is not iterable")
        }
    }
}

extension Value {
    /// An int (or bool) usable as an index.
    var intIndex: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    var isString: Bool { if case .string = self { return true }; return false }
    var isList: Bool { if case .list = self { return true }; return false }
    var isFloat: Bool { if case .float = self { return true }; return false }
}

