import CMPI

public enum MPIInfo {
    /// The MPI library's own version line ("Open MPI v4.1.4, package: …"), first line only.
    /// MPI_Get_library_version may be called before MPI_Init.
    public static func libraryVersion() -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == qwenft_mpi_success() else { return "unknown version" }
        let text = String(cString: buffer)
        return text.split(whereSeparator: \.isNewline).first.map(String.init) ?? text
    }
}
