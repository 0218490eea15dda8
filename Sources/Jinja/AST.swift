// The syntax tree. Statements carry the line they start on, so rendering errors can name it.

enum BinaryOp: String {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**", concat = "~"
}

enum CompareOp: String {
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", `in` = "in", notIn = "not in"
}

struct Arguments {
    var positional: [Expr] = []
    var keyword: [(String, Expr)] = []
}

indirect enum Expr {
    case literal(Value)
    case name(String)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attribute(Expr, String)
    case `subscript`(Expr, Expr)
    case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
    case call(Expr, Arguments)
    case filter(Expr, name: String, Arguments)
    case test(Expr, name: String, Arguments, negated: Bool)
    case negate(Expr)
    case plus(Expr)
    case not(Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case binary(BinaryOp, Expr, Expr)
    case compare(Expr, [(CompareOp, Expr)])
    case conditional(then: Expr, test: Expr, otherwise: Expr?)
}

/// Where a `set` or a `for` stores values.
indirect enum AssignTarget {
    case name(String)
    case attribute(String, String)  // ns.attr
    case tuple([AssignTarget])
}

struct ForLoop {
    var target: AssignTarget
    var iterable: Expr
    var condition: Expr?
    var body: [Stmt]
    var otherwise: [Stmt]
}

struct MacroParameter {
    var name: String
    var defaultValue: Expr?
}

/// A macro as written; calling it renders `body` with the arguments bound.
public final class MacroDefinition {
    let name: String
    let parameters: [MacroParameter]
    let body: [Stmt]
    init(name: String, parameters: [MacroParameter], body: [Stmt]) {
        self.name = name
        self.parameters = parameters
        self.body = body
    }
}

/// The body of a `{% call %}` block, callable from the macro as `caller()`.
final class CallerBody {
    let parameters: [MacroParameter]
    let body: [Stmt]
    let scope: Scope
    init(parameters: [MacroParameter], body: [Stmt], scope: Scope) {
        self.parameters = parameters
        self.body = body
        self.scope = scope
    }
}

struct FilterCall {
    var name: String
    var arguments: Arguments
}

indirect enum Stmt {
    case text(String)
    case output(Expr, line: Int)
    /// `{{ a + b + c }}` whose parts are appended straight to the output when they are all
    /// strings (the common chat-template case), without building the intermediate strings.
    case outputConcat([Expr], line: Int)
    case ifChain([(Expr, [Stmt])], otherwise: [Stmt], line: Int)
    case forLoop(ForLoop, line: Int)
    case set(AssignTarget, Expr, line: Int)
    case setBlock(AssignTarget, [Stmt], filters: [FilterCall], line: Int)
    case macro(MacroDefinition, line: Int)
    case callBlock(call: Expr, parameters: [MacroParameter], body: [Stmt], line: Int)
    case filterBlock([FilterCall], body: [Stmt], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}
