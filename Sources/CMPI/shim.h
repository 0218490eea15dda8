#ifndef QWENFT_CMPI_SHIM_H
#define QWENFT_CMPI_SHIM_H
/* Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM…) are macros over addresses of
   globals, which Swift cannot import. These inline functions hand them over as values. */
#include <mpi.h>
static inline MPI_Comm qwenft_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype qwenft_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype qwenft_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype qwenft_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype qwenft_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op qwenft_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op qwenft_mpi_max(void) { return MPI_MAX; }
static inline int qwenft_mpi_success(void) { return MPI_SUCCESS; }
static inline void *qwenft_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler qwenft_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int qwenft_mpi_wait(MPI_Request *request) { return MPI_Wait(request, MPI_STATUS_IGNORE); }
/* The cores this process may run on (its affinity mask); 0 when it cannot be read. glibc
   declares sched_getaffinity only under _GNU_SOURCE, which a module header cannot rely on, so
   the prototype is given here and the mask (up to 4096 cores) counted by hand. */
#ifdef __linux__
#include <stddef.h>
extern int sched_getaffinity(int pid, size_t cpusetsize, void *mask);
static inline int qwenft_affinity_cores(void) {
    unsigned long mask[64] = {0};
    if (sched_getaffinity(0, sizeof(mask), mask) != 0) return 0;
    int n = 0;
    for (int i = 0; i < 64; i++) n += __builtin_popcountl(mask[i]);
    return n;
}
#else
static inline int qwenft_affinity_cores(void) { return 0; }
#endif
#endif
