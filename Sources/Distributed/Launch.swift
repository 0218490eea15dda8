import CMPI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the launcher (mpirun, srun) tells a process through its environment, read before MPI is
/// initialised: whether to initialise it at all, and how many ranks share this machine (for the
/// default thread count).
public enum Launch {
    /// True when a process manager started this process as one rank of a job: Open MPI's
    /// mpirun (OMPI_COMM_WORLD_SIZE), or srun / another PMIx or PMI launcher (PMIX_RANK,
    /// PMI_RANK). A plain `qwenft` run never touches MPI.
    public static var underMPI: Bool { underMPI(ProcessInfo.processInfo.environment) }

    static func underMPI(_ env: [String: String]) -> Bool {
        env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// Ranks of this job on this machine: OMPI_COMM_WORLD_LOCAL_SIZE (mpirun), MPI_LOCALNRANKS
    /// (MPICH), SLURM_STEP_TASKS_PER_NODE's first entry (srun: "2(x3)" → 2); 1 otherwise.
    public static var localRanks: Int { localRanks(ProcessInfo.processInfo.environment) }

    static func localRanks(_ env: [String: String]) -> Int {
        guard underMPI(env) else { return 1 }
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"] {
            if let n = env[key].flatMap({ Int($0) }), n > 0 { return n }
        }
        if let t = env["SLURM_STEP_TASKS_PER_NODE"] ?? env["SLURM_TASKS_PER_NODE"],
           let n = Int(t.prefix { $0.isNumber }), n > 0 {
            return n
        }
        return 1
    }

    /// The cores this process may run on (its affinity mask), or nil where that cannot be read.
    public static func affinityCores() -> Int? {
        let n = Int(qwenft_affinity_cores())
        return n > 0 ? n : nil
    }

    /// The default compute threads of one rank: the affinity mask's cores, shared among the local
    /// ranks when the mask is the whole machine (`--bind-to none`: every rank sees every core);
    /// a rank bound to a subset of cores (Open MPI binds to one core by default) uses that subset.
    public static func defaultThreads() -> Int {
        let online = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let mask = affinityCores() ?? online
        let local = localRanks
        if local > 1 && mask >= online { return max(1, mask / local) }
        return max(1, mask)
    }
}
