/// What can go wrong in a collective operation.
public enum DistributedError: Error, CustomStringConvertible, Sendable {
    /// An MPI call returned an error code.
    case mpi(operation: String, code: Int32, message: String)
    /// A broadcast root outside 0..<size.
    case badRoot(root: Int, size: Int)
    /// A count beyond what one MPI call can take.
    case countTooLarge(operation: String, count: Int)

    public var description: String {
        switch self {
        case let .mpi(op, code, message):
            return "MPI \(op) failed (error \(code)): \(message); check that every rank runs the same command and can reach the others"
        case let .badRoot(root, size):
            return "broadcast from rank \(root), but the world has \(size) rank\(size == 1 ? "" : "s")"
        case let .countTooLarge(op, count):
            return "MPI \(op) of \(count) values exceeds what one call can move (2^31-1 per rank); use more ranks or smaller shards"
        }
    }
}
