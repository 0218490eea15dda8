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

/// A variable name, interned when parsing so lookups compare small integers, not strings.
struct Symbol {
    let id: Int
    let name: String
}

/// Names the parser hands out; ids 0…3 are the ones the interpreter binds itself.
final class SymbolTable {
    private(set) var ids: [String: Int] = [:]
    private(set) var names: [String] = []
    static let loop = 0, caller = 1, varargs = 2, kwargs = 3

    init() {
        for n in ["loop", "caller", "varargs", "kwargs"] { _ = intern(n) }
    }

    func intern(_ name: String) -> Symbol {
        if let id = ids[name] { return Symbol(id: id, name: name) }
        let id = names.count
        ids[name] = id
        names.append(name)
        return Symbol(id: id, name: name)
    }
}

/// An attribute name with what it can mean decided once, at parse time (`.items` on a dict is the
/// method, `.role` the key; `loop.index` a loop property).
struct Member {
    let name: String
    let isDictMethod: Bool
    let isStringMethod: Bool
    let isListMethod: Bool
    let isTupleMethod: Bool
    let loopAttribute: LoopAttribute?

    init(_ name: String) {
        self.name = name
        isDictMethod = dictMethods.contains(name)
        isStringMethod = stringMethods.contains(name)
        isListMethod = listMethods.contains(name)
        isTupleMethod = tupleMethods.contains(name)
        loopAttribute = LoopAttribute(rawValue: name)
    }
}

enum LoopAttribute: String {
    case index, index0, revindex, revindex0, first, last, length, depth, depth0, previtem, nextitem
}

indirect enum Expr {
    case literal(Value)
    case name(Symbol)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case attribute(Expr, Member)
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
    case name(Symbol)
    case attribute(Symbol, String)  // ns.attr
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
    var name: Symbol
    var defaultValue: Expr?
}

/// A macro as written; calling it renders `body` with the arguments bound.
public final class MacroDefinition {
    let name: Symbol
    let parameters: [MacroParameter]
    let body: [Stmt]
    init(name: Symbol, parameters: [MacroParameter], body: [Stmt]) {
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
    /// transformers' `{% generation %}…{% endgeneration %}`: renders its body unchanged and
    /// records where that text lies (the assistant tokens a trainer computes the loss on).
    case generation([Stmt])
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}
