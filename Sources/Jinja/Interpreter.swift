// Interpreter: walks the statements, appending to one output string. Expressions live in
// Expressions.swift; filters, tests, globals and methods in their own files.

/// Variables visible at one level: the render context, the template's top level, a loop body,
/// a macro call. Lookups walk outwards. A level holds a handful of names, so it is two small
/// arrays scanned by interned id: no string hashing on the hot path.
final class Scope {
    // Unchecked exclusivity: these are touched on every variable access; no access overlaps.
    @exclusivity(unchecked) var ids: [Int] = []
    @exclusivity(unchecked) var values: [Value] = []
    let parent: Scope?

    init(parent: Scope?) {
        self.parent = parent
    }

    @inline(__always) func local(_ id: Int) -> Int? {
        var i = 0
        let n = ids.count
        while i < n {
            if ids[i] == id { return i }
            i += 1
        }
        return nil
    }

    @inline(__always) func lookup(_ id: Int) -> Value? {
        var s: Scope? = self
        while let c = s {
            if let i = c.local(id) { return c.values[i] }
            s = c.parent
        }
        return nil
    }

    @inline(__always) func set(_ id: Int, _ value: Value) {
        if let i = local(id) {
            values[i] = value
        } else {
            ids.append(id)
            values.append(value)
        }
    }

    func reset() {
        ids.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }
}

/// The `loop` variable.
public final class LoopState {
    @exclusivity(unchecked) var index0 = 0
    let items: [Value]
    var lastChangedArgs: [Value]?
    init(items: [Value]) { self.items = items }
    var length: Int { items.count }

    func attribute(_ name: LoopAttribute) -> Value {
        switch name {
        case .index: return .int(index0 + 1)
        case .index0: return .int(index0)
        case .revindex: return .int(length - index0)
        case .revindex0: return .int(length - index0 - 1)
        case .first: return .bool(index0 == 0)
        case .last: return .bool(index0 == length - 1)
        case .length: return .int(length)
        case .depth: return .int(1)
        case .depth0: return .int(0)
        case .previtem: return index0 > 0 ? items[index0 - 1] : .undefined(.text("there is no previous item"))
        case .nextitem: return index0 + 1 < length ? items[index0 + 1] : .undefined(.text("there is no next item"))
        }
    }
}

enum Flow {
    case normal, breakLoop, continueLoop
}

final class Interpreter {
    let options: TemplateOptions
    let globalScope: Scope
    // Unchecked exclusivity: the render loop's state, touched by every statement.
    @exclusivity(unchecked) var scope: Scope
    /// The rendering so far, as UTF-8 (appending bytes is cheaper than growing a String).
    @exclusivity(unchecked) var out: [UInt8] = []
    @exclusivity(unchecked) var line = 1
    @exclusivity(unchecked) var iterations = 0
    @exclusivity(unchecked) var depth = 0
    /// How many captures (macro calls, set/filter blocks) are open: spans are only recorded at 0.
    var captureDepth = 0
    var generationSpans: [Range<Int>] = []

    init(options: TemplateOptions, symbols: SymbolTable, context: [String: Value]) {
        self.options = options
        let contextScope = Scope(parent: nil)
        // Only names the template mentions can ever be looked up.
        for (name, value) in context {
            if let id = symbols.ids[name] { contextScope.set(id, value) }
        }
        globalScope = Scope(parent: contextScope)
        scope = globalScope
    }

    func run(_ body: [Stmt]) throws -> String {
        out.reserveCapacity(4096)
        _ = try execBlock(body)
        return String(decoding: out, as: UTF8.self)
    }

    func fail(_ message: String) -> RuntimeFailure { RuntimeFailure(message: message) }

    @inline(__always) func emit(_ s: String) throws {
        out.append(contentsOf: s.utf8)
        if out.count > options.maxOutputBytes {
            throw JinjaError.limit(message: "output larger than \(options.maxOutputBytes) bytes", line: line)
        }
    }

    /// Renders statements into a fresh buffer and returns what they printed.
    func capture(_ body: [Stmt]) throws -> String {
        let saved = out
        out = []
        captureDepth += 1
        defer {
            out = saved
            captureDepth -= 1
        }
        _ = try execBlock(body)
        return String(decoding: out, as: UTF8.self)
    }

    func execBlock(_ stmts: [Stmt]) throws -> Flow {
        for s in stmts {
            let flow = try exec(s)
            if case .normal = flow { continue }
            return flow
        }
        return .normal
    }

    func exec(_ stmt: Stmt) throws -> Flow {
        do {
            return try execUnchecked(stmt)
        } catch let f as RuntimeFailure {
            throw JinjaError.runtime(message: f.message, line: line)
        }
    }

    private func execUnchecked(_ stmt: Stmt) throws -> Flow {
        switch stmt {
        case .text(let s):
            try emit(s)
        case .output(let e, let ln):
            line = ln
            if case .filter(let inner, "tojson", let args) = e {
                // `{{ x | tojson }}`: write the JSON straight into the output.
                let v = try eval(inner)
                try jsonWriter(v, try filterArguments(args, "tojson")).write(into: &out)
                if out.count > options.maxOutputBytes {
                    throw JinjaError.limit(message: "output larger than \(options.maxOutputBytes) bytes", line: line)
                }
                return .normal
            }
            let v = try eval(e)
            if case .string(let s) = v { try emit(s) } else { try emit(v.pythonStr) }
        case .outputConcat(let parts, let ln):
            line = ln
            try emitConcat(parts)
        case .ifChain(let branches, let otherwise, let ln):
            line = ln
            for (cond, body) in branches where try eval(cond).isTruthy {
                return try execBlock(body)
            }
            return try execBlock(otherwise)
        case .forLoop(let loop, let ln):
            line = ln
            try execFor(loop)
        case .set(let target, let e, let ln):
            line = ln
            try assign(target, try eval(e))
        case .setBlock(let target, let body, let filters, let ln):
            line = ln
            var v = Value.string(try capture(body))
            for f in filters { v = try applyFilter(f.name, v, f.arguments) }
            try assign(target, v)
        case .macro(let def, let ln):
            line = ln
            scope.set(def.name.id, .callable(Callable(.macro(def, scope))))
        case .callBlock(let call, let params, let body, let ln):
            line = ln
            guard case .call(let callee, let args) = call else { break }
            let caller = CallerBody(parameters: params, body: body, scope: scope)
            let fn = try eval(callee)
            let v = try callValue(fn, args, caller: caller)
            try emit(v.pythonStr)
        case .filterBlock(let filters, let body, let ln):
            line = ln
            var v = Value.string(try capture(body))
            for f in filters { v = try applyFilter(f.name, v, f.arguments) }
            try emit(v.pythonStr)
        case .generation(let body):
            let start = out.count
            let flow = try execBlock(body)
            if captureDepth == 0 { generationSpans.append(start..<out.count) }
            return flow
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    /// `{{ a + b + c }}`: when `a` is a string every part must be one (Python raises TypeError
    /// for str + anything else), so each is appended as it is evaluated; otherwise Python `+`.
    func emitConcat(_ parts: [Expr]) throws {
        let first = try eval(parts[0])
        guard case .string(let s0) = first else {
            var acc = first
            for p in parts.dropFirst() { acc = try binary(.add, acc, try eval(p)) }
            try emit(acc.pythonStr)
            return
        }
        out.append(contentsOf: s0.utf8)
        for p in parts.dropFirst() {
            let v = try eval(p)
            guard case .string(let s) = v else {
                _ = try binary(.add, .string(""), v)  // throws jinja2's error for this operand
                return
            }
            out.append(contentsOf: s.utf8)
        }
        if out.count > options.maxOutputBytes {
            throw JinjaError.limit(message: "output larger than \(options.maxOutputBytes) bytes", line: line)
        }
    }

    func iterationItems(_ v: Value) throws -> [Value] {
        switch v {
        case .list(let l): return l.items
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw fail("'\(v.typeName)' object is not iterable")
        }
    }

    func execFor(_ loop: ForLoop) throws {
        var items = try iterationItems(try eval(loop.iterable))
        let outer = scope
        let body = Scope(parent: outer)
        scope = body
        defer { scope = outer }
        if let cond = loop.condition {
            // `for x in xs if cond`: filtered before the loop starts, so loop.length counts only kept items.
            var kept: [Value] = []
            for item in items {
                body.reset()
                try assign(loop.target, item)
                if try eval(cond).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            scope = outer
            _ = try execBlock(loop.otherwise)
            return
        }
        let state = LoopState(items: items)
        let loopValue = Value.loop(state)
        for (i, item) in items.enumerated() {
            iterations += 1
            if iterations > options.maxLoopIterations {
                throw JinjaError.limit(message: "more than \(options.maxLoopIterations) loop iterations", line: line)
            }
            state.index0 = i
            // Each iteration starts afresh: what the previous one `set` is gone (as jinja2).
            body.reset()
            body.set(SymbolTable.loop, loopValue)
            try assign(loop.target, item)
            if case .breakLoop = try execBlock(loop.body) { break }
        }
    }

    func assign(_ target: AssignTarget, _ value: Value) throws {
        switch target {
        case .name(let n):
            scope.set(n.id, value)
        case .attribute(let obj, let attr):
            guard case .namespace(let ns) = scope.lookup(obj.id) ?? .undefinedValue else {
                throw fail("cannot assign attribute '\(attr)' on '\(obj.name)': only namespace() objects take attribute assignment")
            }
            if attr.hasPrefix("_") {
                throw fail("chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attr)'")
            }
            ns[attr] = value
        case .tuple(let targets):
            let items = try iterationItems(value)
            guard items.count == targets.count else {
                throw fail(items.count > targets.count
                    ? "too many values to unpack (expected \(targets.count))"
                    : "not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v) }
        }
    }

    // MARK: - Calls

    func callValue(_ fn: Value, _ args: Arguments, caller: CallerBody? = nil) throws -> Value {
        guard case .callable(let c) = fn else {
            if case .undefined(let reason) = fn { throw fail(reason.message) }
            throw fail("'\(fn.typeName)' object is not callable")
        }
        let positional = try args.positional.map { try eval($0) }
        var keyword: [(String, Value)] = []
        for (k, e) in args.keyword { keyword.append((k, try eval(e))) }
        return try invoke(c, positional, keyword, caller: caller)
    }

    func invoke(_ c: Callable, _ positional: [Value], _ keyword: [(String, Value)], caller: CallerBody? = nil) throws -> Value {
        switch c.kind {
        case .macro(let def, let defScope):
            return try callMacro(def, defScope, positional, keyword, caller: caller)
        case .caller(let body):
            return try callBody(body.parameters, body.body, body.scope, positional, keyword, caller: nil, name: "caller")
        case .global(let name):
            return try callGlobal(name, positional, keyword)
        case .method(let receiver, let name):
            return try callMethod(receiver, name, positional, keyword)
        }
    }

    func callMacro(_ def: MacroDefinition, _ defScope: Scope, _ positional: [Value], _ keyword: [(String, Value)], caller: CallerBody?) throws -> Value {
        try callBody(def.parameters, def.body, defScope, positional, keyword, caller: caller, name: def.name.name)
    }

    func callBody(_ params: [MacroParameter], _ body: [Stmt], _ parent: Scope, _ positional: [Value], _ keyword: [(String, Value)], caller: CallerBody?, name: String) throws -> Value {
        depth += 1
        defer { depth -= 1 }
        if depth > options.maxRecursionDepth {
            throw JinjaError.limit(message: "macro calls nested deeper than \(options.maxRecursionDepth) (runaway recursion in '\(name)'?)", line: line)
        }
        let frame = Scope(parent: parent)
        var extraKeywords: [(String, Value)] = []
        for (k, v) in keyword {
            if let p = params.first(where: { $0.name.name == k }) { frame.set(p.name.id, v) } else { extraKeywords.append((k, v)) }
        }
        let saved = scope
        scope = frame
        defer { scope = saved }
        for (i, p) in params.enumerated() where frame.local(p.name.id) == nil {
            if i < positional.count {
                frame.set(p.name.id, positional[i])
            } else if let d = p.defaultValue {
                frame.set(p.name.id, try eval(d))
            } else {
                frame.set(p.name.id, .undefined(.text("'\(p.name.name)' is undefined (missing argument of '\(name)')")))
            }
        }
        frame.set(SymbolTable.varargs, .tuple(positional.count > params.count ? Array(positional[params.count...]) : []))
        frame.set(SymbolTable.kwargs, .object(extraKeywords))
        if let caller { frame.set(SymbolTable.caller, .callable(Callable(.caller(caller)))) }
        return .string(try capture(body))
    }
}
