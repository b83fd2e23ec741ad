# `fashion_mnist train` under `mpirun -np 2` on the committed fixture: the run must finish,
# write its outputs once, and print its progress once (rank 0 only).
#   cmake -DMPIEXEC=... -DMPI_FLAGS=... -DPROGRAM=... -DDATA=... -DOUT=... -P run_example.cmake
file(REMOVE_RECURSE "${OUT}")
execute_process(
    COMMAND "${MPIEXEC}" -np 2 ${MPI_FLAGS} "${PROGRAM}" train --data "${DATA}" --val 200 --limit 512 --epochs 2
            --out "${OUT}"
    OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE status)
message("${output}${errors}")
if(NOT status EQUAL 0)
    message(FATAL_ERROR "mpirun -np 2 fashion_mnist train exited with ${status}")
endif()
foreach(file model.safetensors checkpoint.safetensors history.csv metrics.json figures/learning_curves.svg)
    if(NOT EXISTS "${OUT}/${file}")
        message(FATAL_ERROR "mpirun -np 2 fashion_mnist train did not write ${OUT}/${file}")
    endif()
endforeach()
# Each of these lines is printed once by rank 0; twice would mean every rank talks.
foreach(line "Epoch 1/2 - " "Epoch 2/2 - " "kept the weights of epoch" "2 ranks")
    string(REGEX MATCHALL "${line}" hits "${output}")
    list(LENGTH hits count)
    if(NOT count EQUAL 1)
        message(FATAL_ERROR "expected '${line}' once in the output of rank 0, found it ${count} times")
    endif()
endforeach()
file(READ "${OUT}/history.csv" history)
string(REGEX MATCHALL "\n[12]," rows "${history}")
list(LENGTH rows epochs)
if(NOT epochs EQUAL 2)
    message(FATAL_ERROR "history.csv should hold 2 epochs:\n${history}")
endif()
message(STATUS "fashion_mnist train under mpirun -np 2: outputs written once, progress printed once")
