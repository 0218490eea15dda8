/// Every way parsing or rendering a template can fail. Descriptions say where (line:column for
/// syntax, line for rendering) and what was expected, so a user can fix their template.
public enum JinjaError: Error, CustomStringConvertible, Equatable {
    /// The template does not parse.
    case syntax(message: String, line: Int, column: Int)
    /// A construct jinja2 has that this renderer does not (named, never silently skipped).
    case unsupported(construct: String, line: Int, column: Int)
    /// Rendering failed: a type error, an undefined value used, a bad argument.
    case runtime(message: String, line: Int)
    /// The template called `raise_exception(message)`.
    case raised(message: String)
    /// A safety bound was hit: loop iterations, recursion depth or output size.
    case limit(message: String, line: Int)

    public var description: String {
        switch self {
        case .syntax(let m, let l, let c):
            return "template syntax error at line \(l), column \(c): \(m)"
        case .unsupported(let what, let l, let c):
            return "template uses \(what) at line \(l), column \(c), which qwenft's Jinja renderer does not support"
        case .runtime(let m, let l):
            return "template error at line \(l): \(m)"
        case .raised(let m):
            return m
        case .limit(let m, let l):
            return "template stopped at line \(l): \(m)"
        }
    }
}

/// A runtime failure before the interpreter has attached the line it happened on.
struct RuntimeFailure: Error {
    let message: String
}
