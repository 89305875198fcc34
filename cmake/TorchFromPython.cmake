# Declares the imported target `torch_cpu_libs` for the torch installed in the building Python,
# and TORCH_PACKAGE_DIR, METAMLIP_TORCH_VERSION, METAMLIP_TORCH_CXX11_ABI, TORCH_CUDA_VERSION.
#
# torch's own TorchConfig.cmake is not used: for the CUDA wheels of torch it insists on a CUDA
# toolkit matching the one torch was built with, which a CPU-only build of metamlip does not need.
find_package(Python REQUIRED COMPONENTS Interpreter)
execute_process(
  COMMAND ${Python_EXECUTABLE} -c
    "import os, torch; print(os.path.dirname(torch.__file__), torch.__version__, int(torch.compiled_with_cxx11_abi()), torch.version.cuda or '', sep=';', end='')"
  OUTPUT_VARIABLE _torch_info RESULT_VARIABLE _torch_status)
if(NOT _torch_status EQUAL 0)
  message(FATAL_ERROR "metamlip: torch is not importable by ${Python_EXECUTABLE}; install torch==2.9.1 first "
                      "and build with `pip install --no-build-isolation`.")
endif()
list(GET _torch_info 0 TORCH_PACKAGE_DIR)
list(GET _torch_info 1 METAMLIP_TORCH_VERSION)
list(GET _torch_info 2 METAMLIP_TORCH_CXX11_ABI)
# CUDA version torch was built with ("12.8"), empty for a CPU-only torch.
list(LENGTH _torch_info _torch_fields)
set(TORCH_CUDA_VERSION "")
if(_torch_fields GREATER 3)
  list(GET _torch_info 3 TORCH_CUDA_VERSION)
endif()
message(STATUS "metamlip: torch ${METAMLIP_TORCH_VERSION} at ${TORCH_PACKAGE_DIR}")

add_library(torch_cpu_libs INTERFACE IMPORTED)
target_include_directories(torch_cpu_libs SYSTEM INTERFACE
  ${TORCH_PACKAGE_DIR}/include ${TORCH_PACKAGE_DIR}/include/torch/csrc/api/include)
target_link_libraries(torch_cpu_libs INTERFACE
  ${TORCH_PACKAGE_DIR}/lib/libtorch.so ${TORCH_PACKAGE_DIR}/lib/libtorch_cpu.so
  ${TORCH_PACKAGE_DIR}/lib/libc10.so)
target_compile_definitions(torch_cpu_libs INTERFACE
  _GLIBCXX_USE_CXX11_ABI=${METAMLIP_TORCH_CXX11_ABI})

# The shared libstdc++ (the one torch and Python use) comes first on the link line. A toolchain
# that links libstdc++ statically (LDFLAGS=-static-libstdc++, or only libstdc++.a to be found)
# would give our libraries a private copy whose locale facets are not the process's: the first
# number written into a stream, e.g. in an error message, then crashes (seen on a GPU machine
# with GCC 13 and torch 2.11).
execute_process(
  COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so.6
  OUTPUT_VARIABLE METAMLIP_LIBSTDCXX OUTPUT_STRIP_TRAILING_WHITESPACE)
if(IS_ABSOLUTE "${METAMLIP_LIBSTDCXX}" AND EXISTS "${METAMLIP_LIBSTDCXX}")
  target_link_libraries(torch_cpu_libs INTERFACE ${METAMLIP_LIBSTDCXX})
else()
  message(WARNING "metamlip: ${CMAKE_CXX_COMPILER} names no shared libstdc++.so.6")
endif()
