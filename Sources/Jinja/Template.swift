/// How a template is lexed and how far rendering may go. The defaults are what transformers'
/// `apply_chat_template` uses: `trim_blocks` and `lstrip_blocks` on, an immutable sandbox.
public struct TemplateOptions {
    /// Remove the first newline after a block tag (`%}`) or comment (`#}`).
    public var trimBlocks = true
    /// Strip spaces and tabs from the start of a line up to a block tag or comment.
    public var lstripBlocks = true
    /// Keep a single trailing newline of the source (jinja2 drops it by default).
    public var keepTrailingNewline = false
    /// As jinja2's `ImmutableSandboxedEnvironment`: `list.append`, `dict.update`… are refused.
    /// Set false to let templates mutate lists and dicts (plain `SandboxedEnvironment`).
    public var immutable = true
    /// Bounds for untrusted templates.
    public var maxOutputBytes = 64 << 20
    public var maxLoopIterations = 5_000_000
    public var maxRecursionDepth = 200
    /// `range()` refuses more items than this, as jinja2's sandbox (`MAX_RANGE`).
    public var maxRange = 100_000
    /// Lists built by `+` may not grow beyond this many items (doubling a list in a loop).
    public var maxListLength = 10_000_000
    /// Seconds since 1970 used by `strftime_now`, formatted as UTC; nil: the current local time.
    public var fixedNow: Double?

    public init() {}

    /// A plain `jinja2.Environment()`: no trimming (seed 000's `Template.j2` is rendered so).
    public static var plainEnvironment: TemplateOptions {
        var o = TemplateOptions()
        o.trimBlocks = false
        o.lstripBlocks = false
        o.immutable = false
        return o
    }
}

/// A parsed template: parse once, render many times.
///
///     let t = try Template(source)
///     let text = try t.render(["messages": messages, "add_generation_prompt": true])
public final class Template {
    public let options: TemplateOptions
    let body: [Stmt]
    let symbols: SymbolTable

    public init(_ source: String, options: TemplateOptions = TemplateOptions()) throws {
        self.options = options
        let normalized = normalizeNewlines(source, keepTrailingNewline: options.keepTrailingNewline)
        var lexer = Lexer(source: normalized, options: options)
        let tokens = try lexer.tokenize()
        var parser = Parser(tokens: tokens, source: lexer.src)
        body = try parser.parseTemplate()
        symbols = parser.symbols
    }

    /// Renders with the given variables (the globals `range`, `namespace`, `dict`,
    /// `raise_exception` and `strftime_now` are always there, shadowed by a variable of that name).
    public func render(_ context: [String: Value]) throws -> String {
        let interpreter = Interpreter(options: options, symbols: symbols, context: context)
        return try interpreter.run(body)
    }

    /// Renders and also returns where each `{% generation %}` block's text lies in the result,
    /// as UTF-8 byte ranges (what transformers' `return_assistant_tokens_mask` is built from).
    public func renderWithGenerationSpans(_ context: [String: Value]) throws -> (text: String, spans: [Range<Int>]) {
        let interpreter = Interpreter(options: options, symbols: symbols, context: context)
        let text = try interpreter.run(body)
        return (text, interpreter.generationSpans)
    }
}
