# RM_CHECK_CUDA
# -------------
# The optional CUDA backend: nvcc, the CUDA runtime, cuBLAS and cuDNN.
#
#   --with-cuda=DIR   use the toolkit in DIR; fail if any piece is missing
#   --with-cuda=yes   the same with DIR=/usr/local/cuda
#   --with-cuda=no    (or --without-cuda) build the CPU backend only
#   (not given)       use /usr/local/cuda when every piece is there,
#                     otherwise build without CUDA and say so in the summary
#
# Compiling and linking needs no GPU, so a machine without one still builds
# the CUDA backend when the toolkit is installed; the backend is chosen at run
# time.
#
# Results: HAVE_CUDA (config.h define and AM_CONDITIONAL), CUDA_DIR,
# CUDA_CFLAGS, CUDA_LIBS, NVCC, NVCC_ARCH and NVCC_FLAGS (substituted).
# NVCC_ARCH (default sm_90, Hopper: H100/H200) and NVCC_FLAGS may be set on
# the configure command line.
# _RM_CUDA_CHECK_LIB(LIB, FUNCTION, OTHER-LIBS)
# ---------------------------------------------
# Link FUNCTION from -lLIB OTHER-LIBS; on failure set rm_cuda_ok=no and add
# libLIB to rm_cuda_missing.  Not AC_CHECK_LIB: its cached result would be
# reused for another toolkit directory.
AC_DEFUN([_RM_CUDA_CHECK_LIB], [
  AC_MSG_CHECKING([for $2 in -l$1])
  LIBS="-l$1 $3 $rm_save_LIBS"
  AC_LINK_IFELSE([AC_LANG_CALL([], [$2])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     rm_cuda_ok=no; rm_cuda_missing="$rm_cuda_missing lib$1"])
])

AC_DEFUN([RM_CHECK_CUDA], [
AC_ARG_WITH([cuda],
  [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@],
    [build the CUDA backend (nvcc, cudart, cuBLAS, cuDNN) from the toolkit
     in DIR @<:@default: /usr/local/cuda when complete, else without CUDA@:>@])],
  [], [with_cuda=check])
AC_ARG_VAR([NVCC], [CUDA compiler driver])
AC_ARG_VAR([NVCC_ARCH], [GPU architecture for nvcc -arch (default: sm_90)])
AC_ARG_VAR([NVCC_FLAGS], [flags for nvcc (default: -O2 -g -arch=$NVCC_ARCH)])

rm_cuda_ok=no
rm_cuda_missing=
CUDA_DIR=
CUDA_CFLAGS=
CUDA_LIBS=
AS_CASE([$with_cuda],
  [no], [],
  [yes|check], [CUDA_DIR=/usr/local/cuda],
  [CUDA_DIR=$with_cuda])

AS_IF([test "x$with_cuda" != xno], [
  AC_MSG_NOTICE([looking for the CUDA toolkit in $CUDA_DIR])
  rm_cuda_ok=yes

  AS_IF([test -z "$NVCC"],
    [AC_PATH_PROG([NVCC], [nvcc], [], [$CUDA_DIR/bin])])
  AS_IF([test -z "$NVCC"],
    [rm_cuda_ok=no; rm_cuda_missing="$rm_cuda_missing nvcc"])

  rm_cuda_libdir=$CUDA_DIR/lib64
  AS_IF([test -d "$rm_cuda_libdir"], [], [rm_cuda_libdir=$CUDA_DIR/lib])
  CUDA_CFLAGS="-I$CUDA_DIR/include"
  rm_cuda_ldflags="-L$rm_cuda_libdir -Wl,-rpath,$rm_cuda_libdir"

  rm_save_CPPFLAGS=$CPPFLAGS
  rm_save_LDFLAGS=$LDFLAGS
  rm_save_LIBS=$LIBS
  CPPFLAGS="$CPPFLAGS $CUDA_CFLAGS"
  LDFLAGS="$LDFLAGS $rm_cuda_ldflags"

  # Headers are checked directly, not through AC_CHECK_HEADERS, so a result
  # cached for one toolkit directory is never reused for another.
  for rm_cuda_h in cuda_runtime.h cublas_v2.h cudnn.h; do
    AC_MSG_CHECKING([for $rm_cuda_h in $CUDA_DIR/include])
    AC_COMPILE_IFELSE([AC_LANG_SOURCE([[#include <$rm_cuda_h>]])],
      [AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])
       rm_cuda_ok=no; rm_cuda_missing="$rm_cuda_missing $rm_cuda_h"])
  done

  # Each library is linked together with the ones it depends on.
  _RM_CUDA_CHECK_LIB([cudart], [cudaMalloc], [])
  _RM_CUDA_CHECK_LIB([cublas], [cublasCreate_v2], [-lcudart])
  _RM_CUDA_CHECK_LIB([cudnn], [cudnnCreate], [-lcudart])

  CPPFLAGS=$rm_save_CPPFLAGS
  LDFLAGS=$rm_save_LDFLAGS
  LIBS=$rm_save_LIBS

  AS_IF([test "x$rm_cuda_ok" = xno], [
    AS_IF([test "x$with_cuda" = xcheck],
      [AC_MSG_NOTICE([CUDA not used: missing$rm_cuda_missing in $CUDA_DIR])],
      [AC_MSG_ERROR([--with-cuda=$with_cuda: missing$rm_cuda_missing in $CUDA_DIR; install the CUDA toolkit with cuBLAS and cuDNN 9 there, give --with-cuda=DIR for another place, or configure --without-cuda])])
  ])
])

AS_IF([test "x$rm_cuda_ok" = xyes], [
  # nvcc objects are C++: libstdc++ is linked for the runtime they may need.
  CUDA_LIBS="$rm_cuda_ldflags -lcudnn -lcublas -lcudart -lstdc++"
  AS_IF([test -z "$NVCC_ARCH"], [NVCC_ARCH=sm_90])
  AS_IF([test -z "$NVCC_FLAGS"], [NVCC_FLAGS="-O2 -g -arch=$NVCC_ARCH -Xcompiler -Wall,-Wextra"])
  AC_DEFINE([HAVE_CUDA], [1],
    [Define to 1 to build the CUDA backend (cuDNN, cuBLAS, kernels).])
], [
  CUDA_DIR=
  CUDA_CFLAGS=
  CUDA_LIBS=
])
AC_SUBST([CUDA_DIR])
AC_SUBST([CUDA_CFLAGS])
AC_SUBST([CUDA_LIBS])
AM_CONDITIONAL([HAVE_CUDA], [test "x$rm_cuda_ok" = xyes])
])
