# Writes a C++ copy of a .cu file for the CPU emulation: every kernel launch
#   name<<<grid, block[, shared[, stream]]>>>(args...)
# becomes
#   ::vimdense_cuda_emulation::kernel_launch(name, "name", __FILE__, __LINE__, grid, block[, ...])(args...)
# and nothing else changes, so the emulated code is the .cu text itself. A #line directive makes
# compiler messages, __FILE__ and __LINE__ name the original file and lines.
#   cmake -DINPUT=path/kernel.cu -DOUTPUT=path/kernel.cu.cpp -P translate_cuda_launches.cmake
if(NOT DEFINED INPUT OR NOT DEFINED OUTPUT)
  message(FATAL_ERROR "translate_cuda_launches.cmake: pass -DINPUT=<file.cu> -DOUTPUT=<file.cpp>")
endif()
file(READ "${INPUT}" source)

# The kernel: an identifier (qualified or not) with optional template arguments without nested <>.
# The configuration: everything up to the closing >>> of the same statement (no ';' inside).
set(space "[ \t\r\n]*")
set(kernel "([A-Za-z_][A-Za-z0-9_:]*(<[^<>;]*>)?)")
string(REGEX REPLACE "${kernel}${space}<<<([^;]*)>>>${space}\\("
       "::vimdense_cuda_emulation::kernel_launch(\\1, \"\\1\", __FILE__, __LINE__, \\3)("
       translated "${source}")

# A launch the pattern did not take (a kernel name it cannot read, a ';' in the configuration)
# would otherwise surface as a puzzling compiler error in the copy.
string(FIND "${translated}" "<<<" left)
if(NOT left EQUAL -1)
  string(SUBSTRING "${translated}" ${left} 80 context)
  message(FATAL_ERROR "translate_cuda_launches.cmake: ${INPUT}: a kernel launch this translator does not "
                      "understand (expected name<<<config>>>(args) with no ';' in config), near: ${context}")
endif()

file(WRITE "${OUTPUT}.tmp" "#line 1 \"${INPUT}\"\n${translated}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
