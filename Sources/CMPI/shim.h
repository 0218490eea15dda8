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
#endif
