#!/bin/sh
# nabla train --augment, --val-split and --early-stop as a user types them:
# every bad value (one message, exit 2, nothing written), determinism, the
# best epoch's checkpoint, and resuming.
# usage: test_cli_fitval.sh path/to/nabla source-root
set -u
nabla=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # the tests run elsewhere
readme=$(cd "$2" && pwd)/README.md
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$tmp" || exit 1

# A Fashion-MNIST-shaped IDX pair: image i is a bright band of class i%10;
# every third label is another class, so the validation loss wanders
byte() { printf "\\$(printf %03o "$1")"; }
idx() { # idx PREFIX N (N < 256)
	{ printf '\000\000\010\003\000\000\000'; byte "$2"
	  printf '\000\000\000\034\000\000\000\034'
	  i=0
	  while [ $i -lt "$2" ]; do
		k=$((i % 10))
		head -c $((k * 78)) /dev/zero
		head -c 78 /dev/zero | tr '\0' '\377'
		head -c $((784 - k * 78 - 78)) /dev/zero
		i=$((i + 1))
	  done
	} >"$1-images-idx3-ubyte"
	{ printf '\000\000\010\001\000\000\000'; byte "$2"
	  i=0
	  while [ $i -lt "$2" ]; do
		if [ $((i % 3)) -eq 0 ]; then byte $(((i * 7 + 3) % 10)); else byte $((i % 10)); fi
		i=$((i + 1))
	  done
	} >"$1-labels-idx1-ubyte"
}
idx train 200
idx t10k 40
MLP="--model mlp --data . --batch 16 --out none --threads 1"

# bad MESSAGE ARGS...: exit 2, the message once as the last line of stderr
# (a data-dependent check follows the banner), no epoch, no file
bad() {
	want=$1
	shift
	rm -f x.st
	save="--save x.st"
	[ "$1" = --compare-optim ] && save= # which refuses --save
	"$nabla" train $save "$@" >out 2>err
	rc=$?
	[ $rc -eq 2 ] || fail "train $*: exit $rc: $(cat err)"
	[ "$(tail -n 1 err)" = "$want" ] || fail "train $*: stderr
$(cat err)
expected
$want"
	[ "$(grep -cF -- "$want" err)" -eq 1 ] || fail "train $*: the message is not once"
	! grep -q "^epoch\|wrote" err out || fail "train $*: trained or wrote: $(cat err out)"
	[ ! -e x.st ] || fail "train $*: wrote x.st"
}
range="must be a number > 0 and < 1"
bad "nabla: --val-split needs a value" $MLP --val-split
for v in -0.1 abc 0 1 1.5 '' 0.5x nan inf; do
	bad "nabla train: --val-split $range, got '$v'" $MLP --val-split "$v"
done
bad "nabla train: --val-split $range, got '2'" $MLP --val-split=0.2 --val-split=2
bad "nabla train: --val-split 0.001 of 200 training samples would leave no validation sample: it must hold out at least one sample and keep at least one for training" \
	$MLP --val-split 0.001
bad "nabla train: --val-split 0.999 of 200 training samples would leave no training sample: it must hold out at least one sample and keep at least one for training" \
	$MLP --val-split 0.999
bad "nabla train: --val-split 0.75 of 2 training samples would leave no training sample: it must hold out at least one sample and keep at least one for training" \
	$MLP --val-split 0.4 --train-limit 2 --val-split 0.75
bad "nabla: --early-stop needs a value" $MLP --val-split 0.1 --early-stop
for v in -1 x 1.5 1000001 ''; do
	bad "nabla train: --early-stop must be an integer from 0 to 1000000, got '$v'" $MLP \
		--val-split 0.1 --early-stop "$v"
done
bad "nabla train: --early-stop needs a validation set to watch: add --val-split F (e.g. --val-split 0.1)" \
	$MLP --early-stop 3
any="(crop=N, flip, none or default)"
bad "nabla train: --augment '': an empty item $any" $MLP --augment=
bad "nabla train: --augment 'crop=2,': an empty item $any" $MLP --augment crop=2,
bad "nabla train: --augment 'bogus': unknown item 'bogus' $any" $MLP --augment bogus
bad "nabla train: --augment 'flip,Flip': unknown item 'Flip' $any" $MLP --augment flip,Flip
bad "nabla train: --augment crop needs its padding, e.g. crop=2 (1 to 28)" $MLP --augment crop
bad "nabla train: --augment crop needs its padding, e.g. crop=2 (1 to 28)" $MLP --augment crop=
for v in -1 abc 0 29 2.5 99999999999999999999; do
	bad "nabla train: --augment crop (for mlp's 28x28 images) must be an integer from 1 to 28, got '$v'" \
		$MLP --augment "crop=$v"
done
bad "nabla train: --augment crop (for resnet20's 32x32 images) must be an integer from 1 to 32, got '33'" \
	--model resnet20 --out none --augment crop=33
bad "nabla train: --augment 'crop=2,crop=3': crop given twice" $MLP --augment crop=2,crop=3
bad "nabla train: --augment 'flip,flip': flip given twice" $MLP --augment=flip,flip
bad "nabla train: --augment 'flip,none': none stands alone" $MLP --augment flip,none
bad "nabla train: --augment 'default,flip': default stands alone" $MLP --augment default,flip
for o in "--augment" "--val-split 0.1" "--early-stop 1"; do
	bad "nabla train: ${o% *} applies to the zoo models, not xor" --model xor --out none $o
done
bad "nabla train: --compare-optim compares plain training runs; --augment, --val-split and --early-stop do not apply" \
	--compare-optim --out none --augment
bad "nabla train: unknown option '--val-splitt'; did you mean --val-split? (see nabla train --help)" \
	$MLP --val-splitt 0.1

# ---- augmentation ----------------------------------------------------------
run() { # run FILE ARGS...: train 2 epochs (JSON to FILE.json), checkpoint FILE
	f=$1
	shift
	"$nabla" train $MLP --epochs 2 --json --save "$f" "$@" >"$f.json" 2>err ||
		fail "train $*: $(cat err)"
}
meta() { # meta FILE KEY: a checkpoint's metadata value
	head -c 4096 "$1" | tr -d '\000' | grep -o "\"$2\":\"[^\"]*\"" | sed 's/.*:"//; s/"$//'
}
run plain.st
run none.st --augment none
run aug1.st --augment crop=3,flip
run aug2.st --augment crop=3,flip --threads 2
run aug3.st --augment crop=3,flip --threads 3
run def.st --augment
run def2.st --augment default
run flip.st --augment=flip
# off changes nothing (the file differs by nothing but... nothing)
cmp -s plain.st none.st || fail "--augment none trained differently from no --augment"
# the same seed: the same bits at any thread count; augmentation changes training
cmp -s aug1.st aug2.st && cmp -s aug1.st aug3.st || fail "--augment: other bits at 2 or 3 threads"
! cmp -s plain.st aug1.st || fail "--augment crop=3,flip changed nothing"
[ "$(meta aug1.st augment)" = "crop=3,flip" ] || fail "augment metadata: $(meta aug1.st augment)"
[ "$(meta flip.st augment)" = "flip" ] && ! cmp -s flip.st plain.st && ! cmp -s flip.st aug1.st ||
	fail "--augment=flip"
# the default for Fashion-MNIST models: crops of 2, no flips
[ "$(meta def.st augment)" = "crop=2" ] && cmp -s def.st def2.st || fail "--augment's default"
"$nabla" train $MLP --epochs 2 --json --augment crop=2 --save def3.st >/dev/null 2>&1
cmp -s def.st def3.st || fail "--augment is not crop=2 for mlp"
"$nabla" train $MLP --epochs 1 --augment >/dev/null 2>err
grep -q "^nabla train: mlp on 200 training / 40 test samples, augmented crop=2, " err ||
	fail "the banner: $(cat err)"
"$nabla" train $MLP --epochs 1 --augment none >/dev/null 2>err
grep -q "^nabla train: mlp on 200 training / 40 test samples, [0-9]* parameters" err ||
	fail "the banner with --augment none: $(cat err)"
# ResNet-20 on synthetic CIFAR: crops of 4 and flips
"$nabla" train --model resnet20 --out none --train-limit 8 --test-limit 4 --batch 4 \
	--max-batches 1 --epochs 1 --augment --save r.st >/dev/null 2>err || fail "resnet20: $(cat err)"
[ "$(meta r.st augment)" = "crop=4,flip" ] || fail "resnet20's default: $(meta r.st augment)"
# each epoch draws anew: the second epoch of a resumed run equals the whole run's
"$nabla" train $MLP --epochs 1 --augment crop=3,flip --save half.st >/dev/null 2>&1 &&
	"$nabla" train $MLP --resume half.st --epochs 2 --save half.st >/dev/null 2>err ||
	fail "resume with --augment: $(cat err)"
cmp -s half.st aug1.st || fail "a resumed --augment run differs from the whole run"
"$nabla" train $MLP --resume half.st --epochs 3 --augment none >/dev/null 2>err
grep -q "^nabla train: --augment none overrides the checkpoint's crop=3,flip$" err ||
	fail "--augment override: $(cat err)"
"$nabla" train $MLP --resume def.st --epochs 3 --augment >/dev/null 2>err &&
	! grep -q overrides err || fail "--augment (the default) on a file of the default: $(cat err)"

# a binary model resumes on the two classes it was trained on (its file's
# "classes"), unless --classes names others
BIN="--model mlp-binary-sigmoid --data . --batch 8 --out none --threads 1"
"$nabla" train $BIN --classes 3,5 --epochs 2 --save bin2.st >/dev/null 2>err &&
	"$nabla" train $BIN --classes 3,5 --epochs 1 --save bin1.st >/dev/null 2>&1 &&
	"$nabla" train $BIN --resume bin1.st --epochs 2 --save bin1.st >/dev/null 2>err ||
	fail "binary resume: $(cat err)"
[ "$(meta bin1.st classes)" = "3,5" ] || fail "resumed classes: $(meta bin1.st classes)"
cmp -s bin1.st bin2.st || fail "a resumed binary run differs from the whole run"
"$nabla" train $BIN --resume bin2.st --epochs 3 --classes 1,7 >/dev/null 2>err
grep -q "^nabla train: --classes 1,7 overrides the checkpoint's 3,5$" err ||
	fail "--classes override: $(cat err)"

# ---- validation and early stopping ------------------------------------------
"$nabla" train $MLP --epochs 30 --val-split 0.25 --early-stop 2 --json --save best.st \
	--plot curves.svg >es.json 2>err || fail "--early-stop: $(cat err)"
n=$(wc -l <es.json)
[ "$n" -ge 3 ] && [ "$n" -lt 30 ] || fail "--early-stop 2: $n epochs"
[ "$(grep -c '"val_loss": [0-9]' es.json)" -eq "$n" ] || fail "val_loss: $(cat es.json)"
[ "$(grep -c '"early_stop": true' es.json)" -eq 1 ] && tail -n 1 es.json | grep -q '"early_stop": true' ||
	fail "early_stop in the JSON: $(cat es.json)"
best=$(tail -n 1 es.json | grep -o '"best_epoch": [0-9]*' | sed 's/.* //')
[ "$best" -eq $((n - 2)) ] || fail "best epoch $best, stopped after $n"
# the lowest val_loss is the best epoch's, and the checkpoint holds that epoch
low=$(sed 's/.*"val_loss": \([0-9.]*\).*/\1/' es.json | sort -n | head -n 1)
grep -q "\"epoch\": $best,.*\"val_loss\": $low" es.json || fail "the best epoch is not the lowest"
[ "$(meta best.st epoch)" = "$best" ] && [ "$(meta best.st best_epoch)" = "$best" ] &&
	[ "$(meta best.st early_stop)" = 2 ] && [ "$(meta best.st val_split)" = 0.25 ] ||
	fail "the checkpoint's metadata: epoch $(meta best.st epoch), best $(meta best.st best_epoch)"
grep -q "val loss" curves.svg && grep -q "val accuracy" curves.svg || fail "--plot has no val curves"
"$nabla" train $MLP --epochs 30 --val-split 0.25 --early-stop 2 --save best2.st >out 2>err
grep -q "^nabla train: stopped early after epoch $n: no lower validation loss for 2 epochs$" err &&
	grep -q "^nabla train: the best epoch was $best (validation loss [0-9.]*); wrote its checkpoint to best2.st (--save holds the best epoch)$" err &&
	grep -q "^epoch *$best/30 .*val loss [0-9.]* (best)  val accuracy" out &&
	grep -q "^nabla train: mlp on 150 training / 50 validation / 40 test samples, " err ||
	fail "--early-stop's lines: $(cat err out)"
cmp -s best.st best2.st || fail "--early-stop: another run gave other bits"
# --save holds the best epoch: resuming it replays the epochs after it, bit for
# bit, and stops again where the whole run stopped
"$nabla" train $MLP --resume best.st --epochs 30 --json --save again.st >again.json 2>err ||
	fail "resume the best: $(cat err)"
strip() { sed 's/"seconds": [0-9.]*//; s/"samples_per_s": [0-9.]*//; s/"ms_per_step": [0-9.]*//' "$1"; }
strip es.json | tail -n 2 >want
strip again.json >got
cmp -s want got || fail "resuming the best epoch: $(cat got) instead of $(cat want)"
# said so: the best came before the resume, and its file is the resumed one
"$nabla" train $MLP --resume best.st --epochs 30 --save again.st >out 2>err
grep -q "^nabla train: the best epoch was $best (validation loss [0-9.]*), before the resume: best.st holds its checkpoint (the model has the last epoch's parameters)$" err &&
	[ ! -e again.st ] || fail "resume the best, lines: $(cat err)"
# without --save: where the best parameters went (--export writes them)
"$nabla" train $MLP --epochs 30 --val-split 0.25 --early-stop 2 --export m.onnx >out 2>err
grep -q "^nabla train: the best epoch was $best (validation loss [0-9.]*); --export writes its parameters$" err &&
	[ -s m.onnx ] || fail "--early-stop --export: $(cat err)"
"$nabla" export --model mlp --checkpoint best.st -o best.onnx >/dev/null 2>err &&
	cmp -s m.onnx best.onnx || fail "--export after --early-stop is not the best epoch's model"
# an interrupted run resumed gives the whole run's checkpoint
"$nabla" train $MLP --epochs $((best - 1)) --val-split 0.25 --early-stop 2 --save part.st \
	>/dev/null 2>&1 &&
	"$nabla" train $MLP --resume part.st --epochs 30 --save part.st >/dev/null 2>err ||
	fail "the interrupted run: $(cat err)"
cmp -s best.st part.st || fail "an interrupted --early-stop run resumed differs from the whole run"
# another validation set: the best does not carry over, said once
"$nabla" train $MLP --resume best.st --epochs 30 --seed 7 >out 2>err
[ "$(grep -c "^nabla train: the validation set is not the checkpoint's (another --val-split, --seed or --train-limit): its best validation loss (epoch $best) does not carry over$" err)" -eq 1 ] ||
	fail "--seed on resume: $(cat err)"
# --early-stop 0 turns it off on resume: every epoch runs
"$nabla" train $MLP --resume best.st --epochs $((best + 4)) --early-stop 0 --json >out 2>err
[ "$(wc -l <out)" -eq 4 ] && ! grep -q early_stop out && grep -q "^nabla train: --early-stop 0 overrides the checkpoint's 2$" err ||
	fail "--early-stop 0: $(cat err out)"
# --val-split alone: no stopping, a checkpoint every epoch (the last)
"$nabla" train $MLP --epochs 3 --val-split 0.1 --json --save v.st >v.json 2>err || fail "$(cat err)"
[ "$(wc -l <v.json)" -eq 3 ] && [ "$(meta v.st epoch)" = 3 ] && [ -n "$(meta v.st best_epoch)" ] ||
	fail "--val-split alone: $(cat v.json)"
# a checkpoint with malformed validation metadata is refused, escaped, once
sed 's/"augment":"crop=3,flip"/"augment":"\\u001b[2Jip"/' aug1.st >badaug.st
"$nabla" train $MLP --resume badaug.st --epochs 3 >out 2>err
[ $? -eq 1 ] && [ "$(cat err)" = "nabla train: --resume: badaug.st: metadata augment is not a spec such as crop=4,flip" ] ||
	fail "bad augment metadata: $(cat err)"
zero=$(echo "$best" | tr 0-9 0) # the same length: the header stays valid
sed "s/\"best_epoch\":\"$best\"/\"best_epoch\":\"$zero\"/" best.st >badbest.st
"$nabla" train $MLP --resume badbest.st --epochs 30 >out 2>err
[ $? -eq 1 ] && [ "$(grep -c "best_epoch" err)" -eq 1 ] && [ ! -s out ] || fail "bad best_epoch: $(cat err)"
# The README's examples as typed (on the small data here; the ResNet's on
# a few synthetic images)
ex() { # ex PATTERN: the README's command line holding PATTERN, its comment cut
	grep -F -- "$1" "$readme" | grep '^nabla train' | head -n 1 | sed 's/ *#.*//; s/^nabla //'
}
line=$(ex "--val-split 0.1 --early-stop 5")
[ -n "$line" ] || fail "the README has no --early-stop example"
rm -f best.safetensors
"$nabla" $line --data . --out none >out 2>err || fail "README: $line: $(cat err)"
[ -s best.safetensors ] && grep -q "^nabla train: the best epoch was [0-9]* (validation loss [0-9.]*); wrote its checkpoint to best.safetensors (--save holds the best epoch)$" err ||
	fail "README: $line: $(cat err)"
line=$(ex "--augment   #")
[ -n "$line" ] || fail "the README has no --augment example"
"$nabla" $line --train-limit 8 --test-limit 4 --batch 4 --out none >out 2>err &&
	grep -q "augmented crop=4,flip" err || fail "README: $line: $(cat err)"
echo "cli fitval: ok"
