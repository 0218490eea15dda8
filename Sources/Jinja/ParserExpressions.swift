// Expression parsing, following jinja2's precedence (see Parser.swift).

extension Parser {
    // MARK: - Expressions

    /// An expression, or a tuple when commas follow (`{{ a, b }}`, `set x = 1, 2`).
    mutating func parseTuple(withCondition: Bool = true) throws -> Expr {
        let first = withCondition ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if isTupleEnd() { break }
            items.append(withCondition ? try parseExpression() : try parseOr())
        }
        return .tuple(items)
    }

    func isTupleEnd() -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op(let o): return o == ")" || o == "]" || o == "}"
        case .name(let n): return n == "if" || n == "in" || n == "recursive"
        default: return false
        }
    }

    mutating func parseExpression() throws -> Expr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > 200 { throw error("expression nested more than 200 levels deep") }
        var expr = try parseOr()
        while skipName("if") {
            let test = try parseOr()
            var otherwise: Expr?
            if skipName("else") { otherwise = try parseExpression() }
            expr = .conditional(then: expr, test: test, otherwise: otherwise)
        }
        return expr
    }

    mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while skipName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while skipName("and") { left = .and(left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws -> Expr {
        if skipName("not") {
            nesting += 1
            defer { nesting -= 1 }
            if nesting > 200 { throw error("expression nested more than 200 levels deep") }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expr {
        let left = try parseMath1()
        var ops: [(CompareOp, Expr)] = []
        while true {
            if case .op(let o) = current.kind, let op = CompareOp(rawValue: o), op != .in, op != .notIn {
                _ = advance()
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append((.in, try parseMath1()))
            } else if isName("not"), index + 1 < tokens.count, case .name("in") = tokens[index + 1].kind {
                _ = advance(); _ = advance()
                ops.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? left : .compare(left, ops)
    }

    mutating func parseMath1() throws -> Expr {
        var left = try parseConcat()
        while true {
            if skipOp("+") { left = .binary(.add, left, try parseConcat()) } else if skipOp("-") { left = .binary(.sub, left, try parseConcat()) } else { break }
        }
        return left
    }

    mutating func parseConcat() throws -> Expr {
        var left = try parseMath2()
        while skipOp("~") { left = .binary(.concat, left, try parseMath2()) }
        return left
    }

    mutating func parseMath2() throws -> Expr {
        var left = try parsePow()
        while true {
            if skipOp("*") { left = .binary(.mul, left, try parsePow()) } else if skipOp("/") { left = .binary(.div, left, try parsePow()) } else if skipOp("//") { left = .binary(.floorDiv, left, try parsePow()) } else if skipOp("%") { left = .binary(.mod, left, try parsePow()) } else { break }
        }
        return left
    }

    mutating func parsePow() throws -> Expr {
        var left = try parseUnary()
        while skipOp("**") { left = .binary(.pow, left, try parseUnary()) }
        return left
    }

    mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > 200 { throw error("expression nested more than 200 levels deep") }
        var node: Expr
        if skipOp("-") {
            node = .negate(try parseUnary(withFilter: false))
        } else if skipOp("+") {
            node = .plus(try parseUnary(withFilter: false))
        } else {
            node = try parsePostfix(try parsePrimary())
        }
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary() throws -> Expr {
        let token = advance()
        switch token.kind {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(symbols.intern(n))
            }
        case .string(var s):
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return .literal(.string(s))
        case .integer(let i): return .literal(.int(i))
        case .float(let d): return .literal(.float(d))
        case .op("("):
            if skipOp(")") { return .tuple([]) }
            let first = try parseExpression()
            if skipOp(")") { return first }
            var items = [first]
            while skipOp(",") {
                if isOp(")") { break }
                items.append(try parseExpression())
            }
            try expectOp(")", context: "to close the parenthesis")
            return .tuple(items)
        case .op("["):
            var items: [Expr] = []
            while !skipOp("]") {
                if !items.isEmpty { try expectOp(",", context: "between list items") }
                if skipOp("]") { break }
                items.append(try parseExpression())
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !skipOp("}") {
                if !pairs.isEmpty { try expectOp(",", context: "between dict items") }
                if skipOp("}") { break }
                let k = try parseExpression()
                try expectOp(":", context: "after a dict key")
                pairs.append((k, try parseExpression()))
            }
            return .dict(pairs)
        default:
            throw error("expected an expression, found \(describe(token.kind))", at: token)
        }
    }

    mutating func parsePostfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if skipOp(".") {
                let t = advance()
                switch t.kind {
                case .name(let n): node = .attribute(node, Member(n))
                case .integer(let i): node = .subscript(node, .literal(.int(i)))
                default: throw error("expected an attribute name after '.', found \(describe(t.kind))", at: t)
                }
            } else if skipOp("[") {
                node = try parseSubscript(node)
            } else if skipOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    mutating func parseSubscript(_ target: Expr) throws -> Expr {
        func part(_ p: inout Parser) throws -> Expr? {
            if p.isOp(":") || p.isOp("]") { return nil }
            return try p.parseExpression()
        }
        let start = try part(&self)
        if skipOp("]") {
            guard let start else { throw error("expected an index inside '[]'") }
            return .subscript(target, start)
        }
        if isOp(",") { throw unsupported("tuple subscripts like x[a, b]") }
        try expectOp(":", context: "in a subscript")
        let stop = try part(&self)
        var step: Expr?
        if skipOp(":") { step = try part(&self) }
        try expectOp("]", context: "to close the subscript")
        return .slice(target, start: start, stop: stop, step: step)
    }

    mutating func parseCallArguments() throws -> Arguments {
        var args = Arguments()
        while !skipOp(")") {
            if !args.positional.isEmpty || !args.keyword.isEmpty { try expectOp(",", context: "between arguments") }
            if skipOp(")") { break }
            if isOp("*") || isOp("**") { throw unsupported("'*args' / '**kwargs' in a call") }
            if case .name(let n) = current.kind, peekIsOp("=") {
                _ = advance(); _ = advance()
                args.keyword.append((n, try parseExpression()))
            } else {
                if !args.keyword.isEmpty { throw error("positional argument after a keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        return args
    }

    mutating func parseFilterExpr(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if skipOp("|") {
                let f = try parseFilterCall()
                node = .filter(node, name: f.name, f.arguments)
            } else if skipName("is") {
                let negated = skipName("not")
                let nameToken = current
                var name: String
                if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                    _ = advance()
                    name = o
                } else {
                    name = try expectName(context: "after 'is'")
                }
                while skipOp(".") { name += "." + (try expectName(context: "in a test name")) }
                if !knownTests.contains(name) { throw error("no test named '\(name)'", at: nameToken) }
                var args = Arguments()
                if skipOp("(") {
                    args = try parseCallArguments()
                } else if startsTestArgument() {
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                node = .test(node, name: name, args, negated: negated)
            } else if skipOp("(") {
                node = .call(node, try parseCallArguments())
            } else {
                return node
            }
        }
    }

    func startsTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and", "if", "in", "is", "not"].contains(n)
        case .string, .integer, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}

let knownFilters: Set<String> = [
    "default", "d", "trim", "tojson", "length", "count", "upper", "lower", "capitalize", "title", "replace",
    "join", "first", "last", "list", "items", "string", "int", "float", "abs", "round", "indent", "safe", "e",
    "escape", "unique", "reverse", "sort", "dictsort", "batch", "wordcount", "center", "map", "select", "reject",
    "selectattr", "rejectattr", "min", "max", "sum", "attr", "format",
]
let knownTests: Set<String> = [
    "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
    "iterable", "sequence", "callable", "even", "odd", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt",
    "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "sameas", "lower", "upper", "escaped",
]
