/* Forced into every compilation of MPICH's test suite against Open MPI
 * (test/peer/mpich_testsuite.sh): Open MPI 4.1's mpi.h turns the functions
 * MPI-3.0 removed into compile errors, and its library does not export
 * them, but MPICH's tests (their datatype pool, the *_oldapi cases) use
 * them. Each is mapped onto its MPI-2 replacement. */
#ifndef CKPTMPI_OMPI_MPI1_COMPAT_H
#define CKPTMPI_OMPI_MPI1_COMPAT_H
#include <mpi.h>

#undef MPI_Address
#define MPI_Address MPI_Get_address
#undef MPI_Type_hindexed
#define MPI_Type_hindexed MPI_Type_create_hindexed
#undef MPI_Type_hvector
#define MPI_Type_hvector MPI_Type_create_hvector
#undef MPI_Type_struct
#define MPI_Type_struct MPI_Type_create_struct
#undef MPI_Errhandler_create
#define MPI_Errhandler_create MPI_Comm_create_errhandler
#undef MPI_Errhandler_get
#define MPI_Errhandler_get MPI_Comm_get_errhandler
#undef MPI_Errhandler_set
#define MPI_Errhandler_set MPI_Comm_set_errhandler

static inline int ckpt_compat_type_extent(MPI_Datatype t, MPI_Aint *extent)
{
	MPI_Aint lb;
	return MPI_Type_get_extent(t, &lb, extent);
}
static inline int ckpt_compat_type_lb(MPI_Datatype t, MPI_Aint *lb)
{
	MPI_Aint extent;
	return MPI_Type_get_extent(t, lb, &extent);
}
static inline int ckpt_compat_type_ub(MPI_Datatype t, MPI_Aint *ub)
{
	MPI_Aint lb, extent;
	int rc = MPI_Type_get_extent(t, &lb, &extent);
	*ub = lb + extent;
	return rc;
}
#undef MPI_Type_extent
#define MPI_Type_extent ckpt_compat_type_extent
#undef MPI_Type_lb
#define MPI_Type_lb ckpt_compat_type_lb
#undef MPI_Type_ub
#define MPI_Type_ub ckpt_compat_type_ub
#endif
