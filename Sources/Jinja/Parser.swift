// Parser: tokens → statements and expressions, following jinja2's grammar and precedence:
// conditional < or < and < not < comparison < + - < ~ < * / // % < ** < unary -/+ < filters and
// tests < postfix (.attr, [index], call) < primary.

struct Parser {
    var tokens: [Token]
    var index = 0
    let map: SourceMap
    var loopDepth = 0
    var nesting = 0
    let symbols = SymbolTable()

    init(tokens: [Token], source: [UInt8]) {
        self.tokens = tokens
        self.map = SourceMap(bytes: source)
    }

    // MARK: - Token helpers

    var current: Token { tokens[index] }

    func line(of token: Token) -> Int { map.location(token.offset).line }

    func error(_ message: String, at token: Token? = nil) -> JinjaError {
        let (l, c) = map.location((token ?? current).offset)
        return .syntax(message: message, line: l, column: c)
    }

    func describe(_ kind: TokenKind) -> String {
        switch kind {
        case .text: return "template text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string: return "a string"
        case .integer(let i): return "'\(i)'"
        case .float(let d): return "'\(d)'"
        case .op(let o): return "'\(o)'"
        case .eof: return "the end of the template"
        }
    }

    mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    func isOp(_ op: String) -> Bool {
        if case .op(let o) = current.kind { return o == op }
        return false
    }

    func isName(_ name: String) -> Bool {
        if case .name(let n) = current.kind { return n == name }
        return false
    }

    func peekIsOp(_ op: String, offset: Int = 1) -> Bool {
        guard index + offset < tokens.count, case .op(let o) = tokens[index + offset].kind else { return false }
        return o == op
    }

    mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    mutating func skipName(_ name: String) -> Bool {
        if isName(name) { _ = advance(); return true }
        return false
    }

    mutating func expectOp(_ op: String, context: String) throws {
        guard skipOp(op) else {
            throw error("expected '\(op)' \(context), found \(describe(current.kind))")
        }
    }

    mutating func expectName(context: String) throws -> String {
        guard case .name(let n) = current.kind else {
            throw error("expected a name \(context), found \(describe(current.kind))")
        }
        _ = advance()
        return n
    }

    mutating func expectBlockEnd(_ tag: String) throws {
        guard case .blockEnd = current.kind else {
            throw error("expected '%}' to end the '\(tag)' tag, found \(describe(current.kind))")
        }
        _ = advance()
    }

    // MARK: - Statements

    mutating func parseTemplate() throws -> [Stmt] {
        let (body, end) = try parseStatements(until: [], opener: nil)
        if let end { throw error("unexpected '\(end.name)' with no block open", at: end.token) }
        return body
    }

    /// Parses until one of `until` tags (consumed: the caller reads the rest of that tag).
    mutating func parseStatements(until: Set<String>, opener: (String, Token)?) throws -> ([Stmt], (name: String, token: Token)?) {
        var body: [Stmt] = []
        while true {
            let token = current
            switch token.kind {
            case .eof:
                if let (tag, openToken) = opener {
                    let wanted = until.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    let (l, _) = map.location(openToken.offset)
                    throw error("unexpected end of template: looking for \(wanted) to close the '\(tag)' opened at line \(l)")
                }
                return (body, nil)
            case .text(let s):
                _ = advance()
                body.append(.text(s))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple()
                guard case .variableEnd = current.kind else {
                    throw error("expected '}}' to end the expression, found \(describe(current.kind))")
                }
                _ = advance()
                body.append(makeOutput(expr, line: line(of: token)))
            case .blockBegin:
                _ = advance()
                let nameToken = current
                guard case .name(let tag) = nameToken.kind else {
                    throw error("expected a tag name after '{%', found \(describe(nameToken.kind))")
                }
                if until.contains(tag) {
                    _ = advance()
                    return (body, (tag, nameToken))
                }
                body.append(contentsOf: try parseTag(tag, nameToken: nameToken))
            default:
                throw error("unexpected \(describe(token.kind))")
            }
        }
    }

    func makeOutput(_ expr: Expr, line: Int) -> Stmt {
        var parts: [Expr] = []
        func flatten(_ e: Expr) {
            if case .binary(.add, let a, let b) = e {
                flatten(a)
                parts.append(b)
            } else {
                parts.append(e)
            }
        }
        flatten(expr)
        return parts.count > 1 ? .outputConcat(parts, line: line) : .output(expr, line: line)
    }

    mutating func parseTag(_ tag: String, nameToken: Token) throws -> [Stmt] {
        _ = advance()
        nesting += 1
        defer { nesting -= 1 }
        if nesting > 200 { throw error("blocks nested more than 200 levels deep", at: nameToken) }
        let ln = line(of: nameToken)
        switch tag {
        case "if":
            var branches: [(Expr, [Stmt])] = []
            var cond = try parseExpression()
            try expectBlockEnd("if")
            while true {
                let (body, end) = try parseStatements(until: ["elif", "else", "endif"], opener: ("if", nameToken))
                branches.append((cond, body))
                switch end!.name {
                case "elif":
                    cond = try parseExpression()
                    try expectBlockEnd("elif")
                case "else":
                    try expectBlockEnd("else")
                    let (otherwise, _) = try parseStatements(until: ["endif"], opener: ("if", nameToken))
                    try expectBlockEnd("endif")
                    return [.ifChain(branches, otherwise: otherwise, line: ln)]
                default:
                    try expectBlockEnd("endif")
                    return [.ifChain(branches, otherwise: [], line: ln)]
                }
            }
        case "for":
            let target = try parseAssignTarget(allowAttribute: false)
            guard skipName("in") else { throw error("expected 'in' in the 'for' tag, found \(describe(current.kind))") }
            let iterable = try parseTuple(withCondition: false)
            var condition: Expr?
            if skipName("if") { condition = try parseExpression() }
            if isName("recursive") { throw unsupported("recursive for loops ('recursive')") }
            try expectBlockEnd("for")
            loopDepth += 1
            let (body, end) = try parseStatements(until: ["endfor", "else"], opener: ("for", nameToken))
            loopDepth -= 1
            var otherwise: [Stmt] = []
            if end!.name == "else" {
                try expectBlockEnd("else")
                (otherwise, _) = try parseStatements(until: ["endfor"], opener: ("for", nameToken))
            }
            try expectBlockEnd("endfor")
            return [.forLoop(ForLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise), line: ln)]
        case "set":
            let target = try parseAssignTarget(allowAttribute: true)
            if skipOp("=") {
                let value = try parseTuple()
                try expectBlockEnd("set")
                return [.set(target, value, line: ln)]
            }
            var filters: [FilterCall] = []
            while skipOp("|") { filters.append(try parseFilterCall()) }
            try expectBlockEnd("set")
            let (body, _) = try parseStatements(until: ["endset"], opener: ("set", nameToken))
            try expectBlockEnd("endset")
            return [.setBlock(target, body, filters: filters, line: ln)]
        case "macro":
            let name = symbols.intern(try expectName(context: "after 'macro'"))
            try expectOp("(", context: "after the macro name")
            let params = try parseParameters()
            try expectBlockEnd("macro")
            let saved = loopDepth
            loopDepth = 0
            let (body, _) = try parseStatements(until: ["endmacro"], opener: ("macro", nameToken))
            loopDepth = saved
            try expectBlockEnd("endmacro")
            return [.macro(MacroDefinition(name: name, parameters: params, body: body), line: ln)]
        case "call":
            var params: [MacroParameter] = []
            if skipOp("(") { params = try parseParameters() }
            let callExpr = try parseExpression()
            guard case .call = callExpr else { throw error("expected a call after 'call'", at: nameToken) }
            try expectBlockEnd("call")
            let (body, _) = try parseStatements(until: ["endcall"], opener: ("call", nameToken))
            try expectBlockEnd("endcall")
            return [.callBlock(call: callExpr, parameters: params, body: body, line: ln)]
        case "filter":
            var filters = [try parseFilterCall()]
            while skipOp("|") { filters.append(try parseFilterCall()) }
            try expectBlockEnd("filter")
            let (body, _) = try parseStatements(until: ["endfilter"], opener: ("filter", nameToken))
            try expectBlockEnd("endfilter")
            return [.filterBlock(filters, body: body, line: ln)]
        case "break", "continue":
            if loopDepth == 0 { throw error("'\(tag)' outside of a for loop", at: nameToken) }
            try expectBlockEnd(tag)
            return [tag == "break" ? .breakLoop(line: ln) : .continueLoop(line: ln)]
        case "generation":
            // transformers' extension marking assistant text; it renders its body unchanged.
            try expectBlockEnd("generation")
            let (body, _) = try parseStatements(until: ["endgeneration"], opener: ("generation", nameToken))
            try expectBlockEnd("endgeneration")
            return body
        case "include", "import", "from", "extends", "block", "with", "autoescape", "do", "trans", "pluralize":
            index -= 1
            throw unsupported("the '\(tag)' tag")
        default:
            index -= 1
            throw error("unknown tag '\(tag)'", at: nameToken)
        }
    }

    func unsupported(_ what: String) -> JinjaError {
        let (l, c) = map.location(current.offset)
        return .unsupported(construct: what, line: l, column: c)
    }

    mutating func parseParameters() throws -> [MacroParameter] {
        var params: [MacroParameter] = []
        while !skipOp(")") {
            if !params.isEmpty { try expectOp(",", context: "between parameters") }
            if skipOp(")") { break }
            let name = symbols.intern(try expectName(context: "as a parameter name"))
            var def: Expr?
            if skipOp("=") { def = try parseExpression() }
            params.append(MacroParameter(name: name, defaultValue: def))
        }
        return params
    }

    mutating func parseAssignTarget(allowAttribute: Bool) throws -> AssignTarget {
        var targets: [AssignTarget] = []
        var sawComma = false
        let parenthesized = skipOp("(")
        repeat {
            if parenthesized && isOp(")") { break }
            let name = symbols.intern(try expectName(context: "as an assignment target"))
            if allowAttribute && skipOp(".") {
                let attr = try expectName(context: "after '.'")
                targets.append(.attribute(name, attr))
            } else {
                targets.append(.name(name))
            }
            sawComma = skipOp(",")
        } while sawComma && { if case .name = current.kind { return true }; return parenthesized }()
        if parenthesized { try expectOp(")", context: "to close the target list") }
        return targets.count == 1 && !sawComma && !parenthesized ? targets[0] : .tuple(targets)
    }

    mutating func parseFilterCall() throws -> FilterCall {
        let nameToken = current
        var name = try expectName(context: "as a filter name")
        while skipOp(".") { name += "." + (try expectName(context: "in a filter name")) }
        // As jinja2, an unknown filter is an error when the template is compiled.
        if !knownFilters.contains(name) { throw error("no filter named '\(name)'", at: nameToken) }
        var args = Arguments()
        if skipOp("(") { args = try parseCallArguments() }
        return FilterCall(name: name, arguments: args)
    }

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
