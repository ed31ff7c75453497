#!/bin/sh
# nabla train under mpirun (docs/distributed.md), as a user types it.
# usage: test_cli_dist.sh path/to/nabla mpi|nompi [path/to/mpirun]
#   mpi:   a build with MPI: data-parallel training on 2 ranks, its bad
#          values, resuming across rank counts, a rank killed mid-run
#   nompi: a build without MPI refuses to run as one of several ranks
set -u
nabla=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # the tests run elsewhere
mode=$2
mpirun=${3:-mpirun}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
np2() { "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$@"; }

# an unknown --dist value: exit 2, one line naming the flag, nothing written
(cd "$tmp" && "$nabla" train --dist bogus) >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] || fail "--dist bogus: exit status $?"
[ "$(cat "$tmp/err")" = "nabla train: --dist wants auto (data-parallel over the ranks mpirun started) or off (one process), not 'bogus'" ] ||
	fail "--dist bogus: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] && [ ! -e "$tmp/nabla-out" ] || fail "--dist bogus wrote something"

if [ "$mode" = nompi ]; then
	# what mpirun -np 2 sets: refused, not two independent runs
	(cd "$tmp" && OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$nabla" train --model xor) \
		>"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 2 ] || fail "under a launcher without MPI: exit status $rc"
	grep -q "built without MPI" "$tmp/err" || fail "no MPI: $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "no MPI: more than one line: $(cat "$tmp/err")"
	[ ! -e "$tmp/nabla-out" ] || fail "no MPI: wrote outputs"
	# --dist off: one process as asked
	(cd "$tmp" && PMI_SIZE=2 "$nabla" train --model xor --dist off --out none) >/dev/null 2>&1 ||
		fail "--dist off under a launcher without MPI"
	echo "ok"
	exit 0
fi

data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/train-images-idx3-ubyte" ] && [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
	echo "skipped: no Fashion-MNIST in $data (apt install dataset-fashion-mnist)"
	exit 77
fi
small="--model mlp --train-limit 640 --test-limit 200 --batch 64 --threads 1"

# a global batch smaller than the ranks: refused on every rank, job ends
(cd "$tmp" && np2 "$nabla" train $small --batch 1 --out none) >"$tmp/out" 2>"$tmp/err"
[ $? -ne 0 ] || fail "--batch 1 on 2 ranks: exit status 0"
grep -q "nabla train: --batch 1 is smaller than the 2 ranks" "$tmp/err" ||
	fail "--batch 1 on 2 ranks: $(cat "$tmp/err")"

# 2 ranks: rank 0 alone prints the banner and one JSON line per epoch
(cd "$tmp" && np2 "$nabla" train $small --epochs 2 --save two.st --out none) \
	>"$tmp/out" 2>"$tmp/err" || fail "2 ranks: $(cat "$tmp/err")"
[ "$(grep -c '^epoch ' "$tmp/out")" -eq 2 ] || fail "2 ranks: epoch lines: $(cat "$tmp/out")"
[ "$(grep -c 'rank 0 of 2, global batch 64 (32 per rank)' "$tmp/err")" -eq 1 ] ||
	fail "2 ranks: banner: $(cat "$tmp/err")"
[ "$(grep -c 'wrote the checkpoint' "$tmp/err")" -eq 1 ] || fail "2 ranks: $(cat "$tmp/err")"
# only rank 0 checks and makes its outputs: a rank in another directory
# (another host) neither creates nabla-out/ nor needs rank 0's --save
# directory; --init-from's notice comes once
mkdir "$tmp/r0" "$tmp/r1" "$tmp/r0/out"
(timeout 300 "$mpirun" --allow-run-as-root --oversubscribe -np 1 --wdir "$tmp/r0" "$nabla" train \
	$small --epochs 1 --init-from "$tmp/two.st" --save out/m.st : -np 1 --wdir "$tmp/r1" \
	"$nabla" train $small --epochs 1 --init-from "$tmp/two.st" --save out/m.st) \
	>"$tmp/out" 2>"$tmp/err" || fail "2 ranks, rank 0's --save dir: $(cat "$tmp/err")"
[ -f "$tmp/r0/out/m.st" ] && [ -d "$tmp/r0/nabla-out" ] || fail "rank 0 did not write its outputs"
[ -z "$(ls -A "$tmp/r1")" ] || fail "rank 1 created $(ls -A "$tmp/r1")"
[ "$(grep -c 'init-from .*tensors loaded' "$tmp/err")" -eq 1 ] ||
	fail "--init-from's notice not once: $(cat "$tmp/err")"
# ranks that would train different lengths (rank 1 resumes an older
# checkpoint) fail on every rank, named, rather than hang
(cd "$tmp" && "$nabla" train $small --epochs 1 --save one.st --out none) >/dev/null 2>&1 ||
	fail "1 epoch"
(cd "$tmp" && timeout 300 "$mpirun" --allow-run-as-root --oversubscribe -np 1 "$nabla" train \
	$small --epochs 3 --resume two.st --out none : -np 1 "$nabla" train $small --epochs 3 \
	--resume one.st --out none) >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "the ranks differ in the first epoch: 2 on rank 0, 1 on rank 1" \
	"$tmp/err" || fail "ranks resuming different epochs: exit $rc: $(cat "$tmp/err")"
# the same epochs in one process: the same losses (f32: the sums' order differs)
(cd "$tmp" && "$nabla" train $small --epochs 2 --json --out none) >"$tmp/one" 2>&1 ||
	fail "1 rank: $(cat "$tmp/one")"
(cd "$tmp" && np2 "$nabla" train $small --epochs 2 --json --out none) >"$tmp/two" 2>&1 ||
	fail "2 ranks --json: $(cat "$tmp/two")"
[ "$(grep -c '"epoch"' "$tmp/two")" -eq 2 ] || fail "2 ranks --json: $(cat "$tmp/two")"
loss() { sed -n 's/.*"epoch": 2, "loss": \([0-9.]*\).*/\1/p' "$1"; }
awk -v a="$(loss "$tmp/one")" -v b="$(loss "$tmp/two")" \
	'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * a) }' ||
	fail "2 ranks' loss $(loss "$tmp/two") is not one process's $(loss "$tmp/one")"

# a validation split under 2 ranks: the validation set is split over the
# ranks and its sums added, so the loss is one process's, and every rank
# takes the same early-stopping decision (the job ends, no rank left
# waiting)
(cd "$tmp" && "$nabla" train $small --epochs 3 --val-split 0.2 --early-stop 1 --json \
	--out none) >"$tmp/one" 2>&1 || fail "1 rank --val-split: $(cat "$tmp/one")"
(cd "$tmp" && timeout 300 "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$nabla" train \
	$small --epochs 3 --val-split 0.2 --early-stop 1 --json --out none) >"$tmp/two" 2>&1 ||
	fail "2 ranks --val-split: $(cat "$tmp/two")"
vloss() { sed -n 's/.*"epoch": 1,.*"val_loss": \([0-9.]*\).*/\1/p' "$1"; }
awk -v a="$(vloss "$tmp/one")" -v b="$(vloss "$tmp/two")" \
	'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-5 * a) }' ||
	fail "2 ranks' val_loss $(vloss "$tmp/two") is not one process's $(vloss "$tmp/one")"

# nabla bench under mpirun: rank 0's one JSON object with the global rate
# and the communication; benchmarks that are not training refused
(cd "$tmp" && np2 "$nabla" bench --model mlp --steps 20 --threads 1 --bucket-kib 256 --json) \
	>"$tmp/out" 2>"$tmp/err" || fail "bench under mpirun: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "bench under mpirun: $(cat "$tmp/out")"
for k in '"ranks": 2' '"global_batch": 64' '"comm_ms_per_step"' '"hidden_share"' \
	'"max_rank_wait_ms_per_step"' '"allreduces_per_step": 2.0'; do
	grep -q "$k" "$tmp/out" || fail "bench under mpirun: no $k in $(cat "$tmp/out")"
done
# the exposed part is the least any rank waited, never more than the most
/usr/bin/env python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).read())
sys.exit(0 if 0 <= d["exposed_comm_ms_per_step"] <= d["max_rank_wait_ms_per_step"] else 1)' \
	"$tmp/out" || fail "bench under mpirun: exposed above the most waited: $(cat "$tmp/out")"
(cd "$tmp" && np2 "$nabla" bench --model peak) >"$tmp/out" 2>"$tmp/err"
[ $? -ne 0 ] || fail "bench --model peak under mpirun: exit status 0"
grep -q "only the zoo models" "$tmp/err" || fail "bench --model peak: $(cat "$tmp/err")"

# nabla dot --backward under mpirun: the buckets' allreduce and wait nodes,
# which one process's graph has not
(cd "$tmp" && np2 "$nabla" dot --model lenet --backward -o two.dot) >"$tmp/out" 2>&1 ||
	fail "dot under mpirun: $(cat "$tmp/out")"
grep -q 'dist_allreduce' "$tmp/two.dot" && grep -q 'dist_wait' "$tmp/two.dot" ||
	fail "dot under mpirun: no allreduce and wait nodes"
(cd "$tmp" && "$nabla" dot --model lenet --backward -o one.dot) >/dev/null 2>&1 &&
	! grep -q 'dist_' "$tmp/one.dot" || fail "dot in one process: dist nodes"

# --sync-bn: ResNet-20's batchnorm statistics over both ranks, so the loss
# is one process's (per-rank statistics give another, 7% off here)
res="--model resnet20 --epochs 1 --max-batches 2 --train-limit 64 --test-limit 16 --batch 16 --threads 1 --json --out none"
(cd "$tmp" && "$nabla" train $res) >"$tmp/one" 2>&1 || fail "resnet20, 1 rank: $(cat "$tmp/one")"
(cd "$tmp" && np2 "$nabla" train $res --sync-bn) >"$tmp/two" 2>&1 ||
	fail "resnet20 --sync-bn: $(cat "$tmp/two")"
loss1() { sed -n 's/.*"epoch": 1, "loss": \([0-9.]*\).*/\1/p' "$1"; }
awk -v a="$(loss1 "$tmp/one")" -v b="$(loss1 "$tmp/two")" \
	'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-4 * a) }' ||
	fail "--sync-bn: 2 ranks' loss $(loss1 "$tmp/two") is not one process's $(loss1 "$tmp/one")"

# resume 2 -> 1 and 1 -> 2
(cd "$tmp" && "$nabla" train $small --resume two.st --epochs 3 --save one.st --out none) \
	>"$tmp/out" 2>"$tmp/err" || fail "resume 2 -> 1: $(cat "$tmp/err")"
grep -q '^epoch 3/3' "$tmp/out" || fail "resume 2 -> 1: $(cat "$tmp/out")"
(cd "$tmp" && np2 "$nabla" train $small --resume one.st --epochs 4 --out none) \
	>"$tmp/out" 2>"$tmp/err" || fail "resume 1 -> 2: $(cat "$tmp/err")"
[ "$(grep -c '^epoch 4/4' "$tmp/out")" -eq 1 ] || fail "resume 1 -> 2: $(cat "$tmp/out")"
# the notices about the resumed recipe come from rank 0 alone
(cd "$tmp" && np2 "$nabla" train $small --resume one.st --epochs 4 --lr 0.01 --out none) \
	>"$tmp/out" 2>"$tmp/err" || fail "resume with --lr on 2 ranks: $(cat "$tmp/err")"
[ "$(grep -c "^nabla train: --lr 0.01 overrides the checkpoint's" "$tmp/err")" -eq 1 ] &&
	[ "$(grep -c '^nabla train: resumed mlp from one.st' "$tmp/err")" -eq 1 ] ||
	fail "resume notices on 2 ranks: $(cat "$tmp/err")"

# a rank killed mid-run, just after the first epoch's checkpoint: the job
# ends (within a bounded time) with a message naming the rank, and the
# checkpoint stays the complete one of epoch 1
(cd "$tmp" && np2 "$nabla" train $small --train-limit 6400 --epochs 50 --save run.st \
	--out none >"$tmp/out" 2>"$tmp/err") &
job=$!
i=0
while [ ! -s "$tmp/run.st" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$tmp/run.st" ] || fail "kill: no checkpoint after 60 s: $(cat "$tmp/err")"
victim=""
for p in $(pgrep -f "$nabla train" 2>/dev/null); do # rank 1
	if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then
		victim=$p
	fi
done
[ -n "$victim" ] || fail "kill: rank 1 not found"
kill -9 "$victim"
saved=$(cksum <"$tmp/run.st")
i=0
while kill -0 $job 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 $job 2>/dev/null && fail "kill: the job still runs 60 s after rank 1 died"
wait $job
[ $? -ne 0 ] || fail "kill: exit status 0"
grep -q "rank 1" "$tmp/err" || fail "kill: no message naming rank 1: $(cat "$tmp/err")"
[ "$(cksum <"$tmp/run.st")" = "$saved" ] || fail "kill: the checkpoint changed"
ls "$tmp"/run.st.tmp* >/dev/null 2>&1 && fail "kill: a temporary checkpoint was left"
(cd "$tmp" && "$nabla" train $small --resume run.st --epochs 50 --max-batches 1 --out none) \
	>/dev/null 2>"$tmp/err" || fail "kill: the checkpoint does not resume: $(cat "$tmp/err")"
echo "ok"
