#!/usr/bin/env bash
# gpu_check.sh - everything the CUDA backend is checked and measured by, in ONE run on a GPU machine
# (device time is scarce: one call, results under $OUT). Run from the repository root with the
# diffusers sources in .ref/src and OpenAI's bpe file in .ref/ (see tools/gen_fixtures.py).
#
#   bash tools/gpu_check.sh [STEP ...]      (no STEP: all of them, in this order)
#
# Steps, each with its own time limit so one hang cannot eat the rest:
#   tests      build/gpu_tests: every CUDA op against the CPU backend (tests/gpu/)
#   conv       the convolution kernel alone (tools/kernels/bench_conv.cu)
#   convsweep  the same with other tile parameters (not part of "all")
#   convref    cuDNN and cuBLAS on the same convolution shapes (tools/kernels/bench_conv_ref.py)
#   attn       the attention kernels alone (tools/kernels/bench_attn.cu): mma.sync, then TMA + wgmma
#   gemm       the Hopper GEMM alone against cuBLASLt (tools/kernels/bench_gemm.cu), warm and with
#              L2 flushed (--cold), then compute-sanitizer racecheck and memcheck on it (every tile
#              and split-K)
#   ops        the memory-bound ops alone at SD's shapes (tools/bench_cuda_ops.c: GroupNorm at every
#              cluster size, LayerNorm, the time-embedding add)
#   ref        tools/gpu_ref.py: random-weight SD 1.5 (real configs) + diffusers' reference tensors
#   bench      build/bench: start to first image with a cold and a warm kernel cache, then
#              sdiff's correctness against the references and its timings
#   profile    ncu kernel times of one eager UNet evaluation and one VAE decode (tools/ncu_summary.py)
#   torch      tools/bench_ref.py: diffusers eager and torch.compile on the same GPU, same run
#   torchquick the same without torch.compile
#   sanitizer  compute-sanitizer memcheck on short generations at 256x256 and 1024x1024, racecheck on
#              one at 256x256 in windows of launches, without clusters (about 5 minutes)
#   clusterrace  racecheck on the cluster kernels through gpu_tests' groups (about 7 minutes)
#   ltcensus   every cuBLASLt GEMM of that generation replayed with each of the heuristic's first 8
#              algorithms under racecheck, and timed at 512x512 (tools/lt_census.c; not part of "all")
# The GPU machine has no stb headers: programs are built with -DSDIFF_NO_STB there (the CLI then
# generates but cannot write the PNG, which the sanitizer step does not need).
set -u
OUT=${OUT:-out/gpu_check}
mkdir -p "$OUT" build
export PYTHONUNBUFFERED=1 SDIFF_CACHE_DIR=${SDIFF_CACHE_DIR:-/tmp/sdiff-cache}
steps=${*:-tests conv convref attn gemm ops ref bench profile torch sanitizer clusterrace}
has() { case " $steps " in *" $1 "*) return 0;; esac; return 1; }
step() { echo; echo "=== $1 ($(date +%T))"; }
NVCC="nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a"

python3 tools/kernels/gen_kernels.py >/dev/null || echo "gen_kernels.py failed"
gcc -std=c11 -D_POSIX_C_SOURCE=200809L -DSDIFF_NO_STB -O2 tools/bench.c -o build/bench -lm -lpthread -ldl
gcc -std=c11 -DSDIFF_NO_STB -O2 examples/sdiff.c -o build/sdiff -lm -lpthread -ldl

if has tests; then
  step "gpu_tests"
  make gpu-test >"$OUT/build.log" 2>&1 || { echo "gpu-test build failed"; tail -20 "$OUT/build.log"; }
  timeout 150 ./build/gpu_tests >"$OUT/gpu_tests.log" 2>&1; echo "rc=$?"
  grep -E "FAIL|passed|failed" "$OUT/gpu_tests.log" | tail -20
fi

if has conv; then
  step "convolution kernel alone"
  $NVCC tools/kernels/bench_conv.cu -o build/bench_conv -lnvrtc -lcuda && \
    timeout 240 ./build/bench_conv --csv "$OUT/bench_conv.csv" >"$OUT/bench_conv.log" 2>&1; echo "rc=$?"
  grep -E "^\||tile|PASS|FAIL" "$OUT/bench_conv.log"
fi
if has convsweep; then
  step "convolution kernel: tile sweeps (K tiles of 64, pipeline depth)"
  [ -x build/bench_conv ] || $NVCC tools/kernels/bench_conv.cu -o build/bench_conv -lnvrtc -lcuda
  for opts in "-DCONV_BK=64 -DCONV_STAGES=3" "-DCONV_BK=64 -DCONV_STAGES=4" "-DCONV_STAGES=6"; do
    echo "--- $opts" | tee -a "$OUT/bench_conv_sweep.log"
    timeout 200 ./build/bench_conv $opts 2>&1 | tee -a "$OUT/bench_conv_sweep.log" | grep -E "^\| (unet|vae)|tile|FAIL"
  done
fi
if has convref; then
  step "cuDNN and cuBLAS on the same convolution shapes"
  timeout 120 python3 tools/kernels/bench_conv_ref.py >"$OUT/bench_conv_ref.log" 2>&1; echo "rc=$?"
  cat "$OUT/bench_conv_ref.log"
fi
if has attn; then
  step "attention kernel alone"
  $NVCC tools/kernels/bench_attn.cu -o build/bench_attn -lnvrtc -lcuda && \
    timeout 120 ./build/bench_attn --kernel sync >"$OUT/bench_attn.log" 2>&1; echo "rc=$?"
  grep -E "^\||PASS|FAIL" "$OUT/bench_attn.log" | tail -20
  step "attention: the TMA + wgmma kernel (tools/kernels/attn_kernel_sm90.cu; Hopper, D = 40, 64, 72, 80)"
  timeout 120 ./build/bench_attn --kernel sm90 >"$OUT/bench_attn_sm90.log" 2>&1; echo "rc=$?"
  grep -E "^\||PASS|FAIL" "$OUT/bench_attn_sm90.log" | tail -20
fi

if has gemm; then
  step "the Hopper GEMM against cuBLASLt (tools/kernels/gemm_kernel_sm90.cu)"
  $NVCC tools/kernels/bench_gemm.cu -o build/bench_gemm -lnvrtc -lcuda -lcublasLt && \
    timeout 200 ./build/bench_gemm --csv "$OUT/bench_gemm.csv" >"$OUT/bench_gemm.log" 2>&1; echo "rc=$?"
  grep -E "^\||PASS|FAIL" "$OUT/bench_gemm.log"
  echo "--- cold L2 (each launch alone after a 256 MB write; the pick is fitted to this CSV)"
  timeout 200 ./build/bench_gemm --cold --csv "$OUT/bench_gemm_cold.csv" >"$OUT/bench_gemm_cold.log" 2>&1; echo "rc=$?"
  grep -E "^\||PASS|FAIL" "$OUT/bench_gemm_cold.log"
  for tool in racecheck memcheck; do
    for only in "odd" "unet L3 128x1280x1280" "unet L0 ff1" "geglu L3" "geglu odd"; do
      printf "%s, %s: " "$tool" "$only"
      timeout 240 compute-sanitizer --tool $tool ./build/bench_gemm --no-time --only "$only" 2>&1 | \
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY" | tail -1
    done
  done
fi

if has ops; then
  step "memory-bound ops alone"
  gcc -std=c11 -D_POSIX_C_SOURCE=200809L -DSDIFF_NO_STB -O2 tools/bench_cuda_ops.c -o build/bench_cuda_ops -lm -lpthread -ldl && \
    timeout 120 ./build/bench_cuda_ops "" sweep >"$OUT/bench_cuda_ops.log" 2>&1; echo "rc=$?"
  grep -v ", forced" "$OUT/bench_cuda_ops.log"
fi

if has ref; then
  step "diffusers references"
  timeout 200 python3 tools/gpu_ref.py --out /tmp/sd15 >"$OUT/gpu_ref.log" 2>&1; echo "rc=$?"; tail -2 "$OUT/gpu_ref.log"
fi

if has bench; then
  step "start to first image: cold kernel cache, then warm (weights in the page cache both times)"
  cat /tmp/sd15/*/*.safetensors >/dev/null 2>&1
  rm -rf "$SDIFF_CACHE_DIR"
  timeout 120 ./build/bench /tmp/sd15 cuda first 2>&1 | tail -1
  timeout 120 ./build/bench /tmp/sd15 cuda first 2>&1 | tail -1
  timeout 60 ./build/bench /tmp/sd15 cuda first 2>&1 | tail -1
  step "sdiff bench"
  timeout 300 ./build/bench /tmp/sd15 cuda 16 >"$OUT/bench.log" 2>&1; echo "rc=$?"
  grep -E "check|\||batch" "$OUT/bench.log"
fi

if has profile && command -v ncu >/dev/null; then
  step "ncu: one eager UNet evaluation, one VAE decode"
  for what in unet vae; do
    timeout 240 ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum --csv --print-units base \
      ./build/bench /tmp/sd15 cuda profile:$what >"$OUT/ncu_$what.csv" 2>"$OUT/ncu_$what.err"; echo "$what rc=$?"
    python3 tools/ncu_summary.py "$OUT/ncu_$what.csv" 25 || tail -5 "$OUT/ncu_$what.err"
  done
fi

if has torch || has torchquick; then
  step "diffusers eager + torch.compile (same run)"
  if has torch; then extra=""; else extra="--quick --no-compile"; fi
  timeout 480 python3 tools/bench_ref.py --model /tmp/sd15 --json "$OUT/bench_ref.json" $extra >"$OUT/bench_ref.log" 2>&1
  echo "rc=$?"; grep -E "^\|" "$OUT/bench_ref.log"
fi

if has sanitizer && command -v compute-sanitizer >/dev/null; then
  # The CLI exits 1 at the end here (PNG writing is compiled out): the verdict is the ERROR SUMMARY.
  # Both must report nothing (the issue's bar; since the thirteenth session every Hopper GEMM is
  # sdiff's own: cuBLASLt's nvjet_* kernels were flagged, tools/PERF.md S12); any hazard is listed by
  # kernel below.
  gen() { echo ./build/sdiff -m /tmp/sd15 -p cat -W "$1" -H "$1" --steps "$2" --backend cuda -o /tmp/san.png; }
  # memcheck: 256x256, 4 steps: every kernel of a 512x512 generation at a quarter of the work;
  # 1024x1024, 2 steps: the launches that only large images make (the attention's split tails).
  for size in "256 4" "1024 2"; do
    set -- $size
    step "compute-sanitizer memcheck (a $2-step generation at $1x$1 on the real model)"
    timeout 600 compute-sanitizer --tool memcheck $(gen $1 $2) >"$OUT/sanitizer_memcheck_$1.log" 2>&1
    echo "memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/sanitizer_memcheck_$1.log" | tail -1)"
  done
  # racecheck, as compute-sanitizer 2025.3 allows (tools/PERF.md S18): its host memory grows by
  # about half a GiB with every launch of a TMA kernel it checks and is not given back until the
  # process ends, so a whole generation is checked as windows of RC_WINDOW launches, one process
  # each (--launch-skip, --launch-count), which together check every launch once; and a cluster
  # launch it does not check faults (an illegal address in our split-K GEMM, and in cuBLASLt's first
  # GEMM when ours are off), so the windows
  # run without clusters (SDIFF_CUDA_CLUSTERS=0). The cluster kernels (split-K GEMM and convolution,
  # group_norm_cluster) are checked whole in gpu_tests' linear, convolution and norm groups: step
  # clusterrace.
  step "compute-sanitizer racecheck (a 1-step generation at 256x256, in windows of launches)"
  launches=$(timeout 300 ncu --metrics gpu__time_duration.sum --csv $(gen 256 1) 2>/dev/null | grep -c '"gpu__time_duration.sum"')
  echo "kernel launches in the generation (ncu): $launches"
  [ "$launches" -gt 0 ] || echo "racecheck NOT RUN: ncu counted no launches (needed for the windows)"
  W=${RC_WINDOW:-80}
  for ((skip = 0; skip < launches; skip += W)); do
    log="$OUT/sanitizer_racecheck_w$((skip / W)).log"
    SDIFF_CUDA_CLUSTERS=0 timeout 300 compute-sanitizer --tool racecheck --launch-skip $skip --launch-count $W \
      $(gen 256 1) >"$log" 2>&1
    verdict=$(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$log" | tail -1)
    echo "launches $skip-$((skip + W - 1)): ${verdict:-NO SUMMARY (the process died): see $log}"
    grep "Race reported" "$log" | sed 's/+0x[0-9a-f]*//g' | sort | uniq -c
  done
fi
if has clusterrace && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer racecheck on the cluster kernels (gpu_tests' linear, norm and convolution groups)"
  [ -x build/gpu_tests ] || make gpu-test >/dev/null 2>&1
  for group in cuda_linear cuda_norms cuda_conv2d; do
    timeout 400 compute-sanitizer --tool racecheck ./build/gpu_tests $group >"$OUT/sanitizer_racecheck_$group.log" 2>&1
    echo "racecheck, gpu_tests $group: $(grep -E 'RACECHECK SUMMARY' "$OUT/sanitizer_racecheck_$group.log" | tail -1)," \
         "$(grep -E 'passed|failed' "$OUT/sanitizer_racecheck_$group.log" | tail -1)"
  done
fi
if has ltcensus; then
  step "cuBLASLt census: which of the heuristic's algorithms racecheck flags, and their times"
  gcc -O2 -I/usr/local/cuda/include tools/lt_census.c -o build/lt_census -L/usr/local/cuda/lib64 -lcublasLt -lcudart
  for px in 256 512; do
    ./build/sdiff -v -m /tmp/sd15 -p "a cat" -W $px -H $px --steps 2 --backend cuda -o /tmp/census.png 2>&1 | \
      grep "gemm plan:" | sort -u >"$OUT/gemm_shapes_$px.txt"
  done
  wc -l "$OUT"/gemm_shapes_*.txt
  timeout 200 ./build/lt_census "$OUT/gemm_shapes_512.txt" time 16 >"$OUT/lt_census_time512.txt" 2>&1; echo "time rc=$?"
  timeout 300 compute-sanitizer --tool racecheck --print-limit 100000 ./build/lt_census "$OUT/gemm_shapes_256.txt" race 8 \
    >"$OUT/lt_census_race256.txt" 2>&1; echo "race rc=$?"
  # per shape, one character per algorithm: X = racecheck reported a hazard in it, . = none
  awk '/^== shape/ { split($0, p, " [|] "); s = p[1]; if (!(s in seen)) { seen[s] = 1; order[++n] = s } cur = s; flag[s] = flag[s] "." }
       /Race reported/ && cur != "" { f = flag[cur]; if (substr(f, length(f)) == ".") flag[cur] = substr(f, 1, length(f) - 1) "X" }
       END { for (i = 1; i <= n; i++) print flag[order[i]], order[i] }' "$OUT/lt_census_race256.txt"
fi
echo; echo "=== done ($(date +%T))"
