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
            return [.generation(body)]
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
}
