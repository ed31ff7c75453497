#!/bin/sh
# Checks nabla eval, nabla predict and --init-from on the command line as a
# user types them: the numbers against each other and against nabla
# train's, the confusion matrix and image grid files (the grid's pixels
# against the data set's bytes), weights under PyTorch's names giving the
# same results as the checkpoint they came from, and bad input: every flag
# with missing, negative, non-numeric and out-of-range values, a
# checkpoint of another model, images beyond the test set, unwritable
# outputs; each reported once with a non-zero exit, nothing on stdout and
# no output file written.
# usage: test_cli_eval.sh path/to/nabla path/to/source
set -u
nabla=$(realpath "$1") || exit 1
src=$(realpath "$2") || exit 1
fm=/usr/share/datasets/fashion-mnist
if [ ! -e "$fm/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$fm/t10k-images-idx3-ubyte" ]; then
	echo "skipped: Fashion-MNIST is not installed (apt install dataset-fashion-mnist)" >&2
	exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
py=python3

# expect STATUS "message part" command...: the exit status, the message on
# stderr exactly once and no line of stderr twice, nothing on stdout, no
# temporary file left
expect() {
	want=$1 text=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
	[ "$st" -eq "$want" ] || fail "$*: exit $st, expected $want: $(cat "$tmp/err")"
	[ "$(grep -cF -- "$text" "$tmp/err")" -eq 1 ] ||
		fail "$*: message '$text' not there once: $(cat "$tmp/err")"
	[ -z "$(sort "$tmp/err" | uniq -d)" ] || fail "$*: a line printed twice: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || fail "$*: printed on stdout: $(cat "$tmp/out")"
	ls | grep -q '\.tmp\.' && fail "$*: temporary files left: $(ls)"
	return 0
}
absent() { for f in "$@"; do [ ! -e "$f" ] || fail "$f was written"; done; }

# ---- help --------------------------------------------------------------------
"$nabla" help | grep -q '^  eval ' || fail "nabla help does not list eval"
"$nabla" help | grep -q '^  predict ' || fail "nabla help does not list predict"
"$nabla" help eval | grep -q -- '--confusion FILE' || fail "nabla help eval"
"$nabla" eval --help | grep -q -- '--init-from FILE' || fail "eval --help lacks --init-from"
for o in --images --first --index --grid --checkpoint --test-limit; do
	"$nabla" help predict | grep -q -- "$o" || fail "nabla help predict lacks $o"
done
"$nabla" train --help | grep -q -- '--init-from FILE' || fail "train --help lacks --init-from"

# ---- trained models ----------------------------------------------------------
train() { # model checkpoint [more flags]
	m=$1 ck=$2
	shift 2
	"$nabla" train --model "$m" --epochs 1 --max-batches 20 --batch 32 --train-limit 2000 \
		--out none --save "$ck" "$@" >"$tmp/train.out" 2>"$tmp/err" || fail "train $m: $(cat "$tmp/err")"
}
train lenet lenet.st --test-limit 300 --json
cp "$tmp/train.out" lenet-train.json
train mlp mlp.st
train mlp-binary-sigmoid bin.st --standardize
"$nabla" train --model resnet20 --epochs 1 --max-batches 2 --batch 8 --train-limit 32 --test-limit 24 \
	--lr 0.01 --out none --save r.st >/dev/null 2>"$tmp/err" || fail "train resnet20: $(cat "$tmp/err")"

# ---- eval ----------------------------------------------------------------------
"$nabla" eval --model lenet --checkpoint lenet.st --test-limit 300 --confusion cm.svg \
	>eval.txt 2>"$tmp/err" || fail "eval: $(cat "$tmp/err")"
grep -q 'nabla eval: wrote the confusion matrix to cm.svg' "$tmp/err" || fail "eval: $(cat "$tmp/err")"
grep -q 'nabla eval: lenet on 300 test samples, weights from lenet.st' "$tmp/err" || fail "eval banner"
# the rows add up to the samples, the diagonal to the accuracy's count
$py - eval.txt <<'EOF' || fail "eval: the text does not add up: $(cat eval.txt)"
import re, sys
t = open(sys.argv[1]).read().splitlines()
m = re.match(r"loss ([0-9.]+)  accuracy ([0-9.]+)% \((\d+) of (\d+)\)$", t[0])
assert m, t[0]
rows = [list(map(int, l.split()[-11:-1])) for l in t[3:13]]
assert len(rows) == 10 and t[13:] == [], t
assert t[3].startswith(" 0 T-shirt/top") and t[12].startswith(" 9 Ankle boot"), t
n, right = int(m.group(4)), int(m.group(3))
assert n == 300 and sum(map(sum, rows)) == n, rows
assert sum(rows[i][i] for i in range(10)) == right
assert abs(float(m.group(2)) - 100 * right / n) < 0.006
EOF
# the SVG: well-formed, a cell per pair of classes, the counts in them
$py - cm.svg eval.txt <<'EOF' || fail "cm.svg"
import re, sys
import xml.etree.ElementTree as ET
ET.parse(sys.argv[1])
s = open(sys.argv[1]).read()
cells = re.findall(r"<title>true (\d), predicted (\d): (\d+)</title>", s)
t = open(sys.argv[2]).read().splitlines()
rows = [list(map(int, l.split()[-11:-1])) for l in t[3:13]]
assert len(cells) == 100 and all(rows[int(i)][int(j)] == int(n) for i, j, n in cells)
assert "Ankle boot" in s and "accuracy" in s
EOF
# --json: the same numbers; the loss is train's last test loss on the same samples
"$nabla" eval --model lenet --checkpoint lenet.st --test-limit 300 --json >eval.json 2>"$tmp/err" ||
	fail "eval --json: $(cat "$tmp/err")"
[ ! -s "$tmp/err" ] || fail "eval --json wrote on stderr: $(cat "$tmp/err")"
$py - eval.json eval.txt lenet-train.json <<'EOF' || fail "eval --json: $(cat eval.json)"
import json, re, sys
j = json.loads(open(sys.argv[1]).read())
t = open(sys.argv[2]).read().splitlines()
tr = json.loads(open(sys.argv[3]).read().splitlines()[-1])
assert j["model"] == "lenet" and j["samples"] == 300 and len(j["classes"]) == 10
rows = [list(map(int, l.split()[-11:-1])) for l in t[3:13]]
assert j["confusion"] == rows and j["correct"] == sum(rows[i][i] for i in range(10))
assert abs(j["accuracy"] - j["correct"] / 300) < 1e-8
assert t[0].startswith("loss %.6f " % j["loss"]), (t[0], j["loss"])
assert abs(j["loss"] - tr["test_loss"]) < 2e-6, (j["loss"], tr["test_loss"])
assert abs(j["accuracy"] - tr["test_accuracy"]) < 2e-6, (j, tr)
EOF
# the batch size does not change the results
"$nabla" eval --model lenet --checkpoint lenet.st --test-limit 300 --json --batch 7 --threads 1 \
	>eval7.json 2>/dev/null || fail "eval --batch 7"
$py -c 'import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert a["confusion"]==b["confusion"] and abs(a["loss"]-b["loss"])<1e-6' \
	eval.json eval7.json || fail "eval --batch 7 differs: $(cat eval7.json)"
# a binary model (two classes, standardised inputs: the training set's statistics)
"$nabla" eval --model mlp-binary-sigmoid --checkpoint bin.st >bin.txt 2>"$tmp/err" ||
	fail "eval binary: $(cat "$tmp/err")"
grep -q '^ 0 Pullover ' bin.txt && grep -q '^ 1 Coat ' bin.txt && grep -q '(.* of 2000)' bin.txt ||
	fail "eval binary: $(cat bin.txt)"
"$nabla" eval --model mlp-binary-sigmoid --checkpoint bin.st --classes 0,9 >bin09.txt 2>/dev/null ||
	fail "eval --classes 0,9"
grep -q '^ 0 T-shirt/top ' bin09.txt && grep -q '^ 1 Ankle boot ' bin09.txt || fail "--classes 0,9: $(cat bin09.txt)"
# the checkpoint's classes, unless --classes says otherwise
train mlp-binary-softmax bin09.st --classes 0,9
"$nabla" eval --model mlp-binary-softmax --checkpoint bin09.st >b09.txt 2>/dev/null || fail "eval bin09"
grep -q '^ 0 T-shirt/top ' b09.txt && grep -q '^ 1 Ankle boot ' b09.txt || fail "bin09's classes: $(cat b09.txt)"
"$nabla" eval --model mlp-binary-softmax --checkpoint bin09.st --classes 2,4 >b24.txt 2>/dev/null || fail "eval bin09 --classes 2,4"
grep -q '^ 0 Pullover ' b24.txt && grep -q '^ 1 Coat ' b24.txt || fail "--classes 2,4: $(cat b24.txt)"
for v in 2,2 256,4 2,4x ' 2,4' a,b +2,4; do
	$py - bin09.st badcl.st "$v" <<'EOF' || fail "writing badcl.st"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"]["classes"] = sys.argv[3]
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
	expect 1 "metadata classes \"$v\" is not two different class ids 0 to 255" \
		"$nabla" predict --model mlp-binary-softmax --checkpoint badcl.st
done
# a test set without the classes: an error, not a loss and accuracy of no samples
mkdir one
$py - one <<'EOF' || fail "writing one/"
import struct, sys
for pre, n in (("train", 8), ("t10k", 4)):
    open(sys.argv[1] + "/%s-images-idx3-ubyte" % pre, "wb").write(
        struct.pack(">IIII", 0x803, n, 28, 28) + bytes(n * 784))
    open(sys.argv[1] + "/%s-labels-idx1-ubyte" % pre, "wb").write(
        struct.pack(">II", 0x801, n) + bytes([3] * n))
EOF
expect 1 "nabla eval: --classes 0,9: the test set has no samples of these classes" \
	"$nabla" eval --model mlp-binary-softmax --checkpoint bin09.st --data one --json
# synthetic data: the checkpoint's seed and sizes
"$nabla" eval --model resnet20 --checkpoint r.st >r.txt 2>"$tmp/err" || fail "eval resnet20: $(cat "$tmp/err")"
grep -q 'of 24)$' r.txt && grep -q '^ 0 class 0 ' r.txt || fail "eval resnet20: $(cat r.txt)"

# ---- predict ---------------------------------------------------------------------
"$nabla" predict --model lenet --checkpoint lenet.st --images 5 --grid grid.svg >pred.txt 2>"$tmp/err" ||
	fail "predict: $(cat "$tmp/err")"
grep -q 'nabla predict: wrote the image grid to grid.svg' "$tmp/err" || fail "predict: $(cat "$tmp/err")"
[ "$(awk 'NR > 1 && NR < 7 {print $1}' pred.txt | tr '\n' ' ')" = "0 1 2 3 4 " ] || fail "predict: $(cat pred.txt)"
wrong=$(grep -c ' wrong$' pred.txt)
grep -q "^$((5 - wrong)) of 5 right\$" pred.txt || fail "predict: the count: $(cat pred.txt)"
# the grid: five 28x28 grey PNGs holding the test images' bytes, a red
# frame for each wrong prediction
$py - grid.svg "$fm" "$wrong" <<'EOF' || fail "grid.svg"
import base64, gzip, os, re, struct, sys, zlib
import xml.etree.ElementTree as ET
ET.parse(sys.argv[1])
s = open(sys.argv[1]).read()
pngs = [base64.b64decode(p) for p in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', s)]
assert len(pngs) == 5, len(pngs)
path = os.path.join(sys.argv[2], "t10k-images-idx3-ubyte")
raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
for k, p in enumerate(pngs):
    assert p[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, colour = struct.unpack(">IIBB", p[16:26])
    assert (w, h, depth, colour) == (28, 28, 8, 0)
    assert zlib.crc32(p[12:29]) == struct.unpack(">I", p[29:33])[0]
    n = struct.unpack(">I", p[33:37])[0]
    rows = zlib.decompress(p[41:41 + n])
    pix = b"".join(rows[r * 29 + 1:(r + 1) * 29] for r in range(28))
    assert all(rows[r * 29] == 0 for r in range(28))
    assert pix == raw[16 + k * 784:16 + (k + 1) * 784], k
assert s.count('stroke="#d62728"') == int(sys.argv[3])
assert s.count("true: ") == 5
EOF
"$nabla" predict --model lenet --checkpoint lenet.st --first 9997 --images 3 >p2.txt 2>/dev/null ||
	fail "predict --first 9997"
[ "$(awk 'NR > 1 && NR < 5 {print $1}' p2.txt | tr '\n' ' ')" = "9997 9998 9999 " ] || fail "--first: $(cat p2.txt)"
"$nabla" predict --model lenet --checkpoint lenet.st --index 9999,3,3 --json >p3.json 2>/dev/null ||
	fail "predict --index"
$py - p3.json p2.txt <<'EOF' || fail "predict --index --json: $(cat p3.json)"
import json, sys
j = [json.loads(l) for l in open(sys.argv[1])]
assert [o["index"] for o in j] == [9999, 3, 3] and j[1] == j[2]
t = open(sys.argv[2]).read().splitlines()[3].split()
assert int(t[0]) == 9999 and int(t[1]) == j[0]["predicted"]
for o in j:
    assert 0.1 <= o["probability"] <= 1 and o["correct"] == (o["predicted"] == o["true"])
EOF
# predict's classes are eval's: the same count right on the same images
"$nabla" predict --model lenet --checkpoint lenet.st --images 300 >p300.txt 2>/dev/null || fail "predict 300"
grep -q "^$(sed -n 's/.*(\([0-9]*\) of 300)$/\1/p' eval.txt) of 300 right\$" p300.txt ||
	fail "predict and eval disagree: $(tail -n 1 p300.txt) vs $(head -n 1 eval.txt)"
# a sigmoid model: the probability of the predicted class, at least 1/2
"$nabla" predict --model mlp-binary-sigmoid --checkpoint bin.st --images 20 --json >pb.json 2>/dev/null ||
	fail "predict binary"
$py -c 'import json,sys; j=[json.loads(l) for l in open(sys.argv[1])]; assert len(j)==20 and all(0.5<=o["probability"]<=1 and o["class"] in ("Pullover","Coat") for o in j)' pb.json ||
	fail "predict binary: $(cat pb.json)"
"$nabla" predict --model resnet20 --checkpoint r.st --images 24 --grid rgrid.svg >/dev/null 2>&1 ||
	fail "predict resnet20 --grid"
[ "$(grep -o 'data:image/png' rgrid.svg | wc -l)" -eq 24 ] || fail "rgrid.svg"

# the grid as PNG, drawn by Graphviz where it renders PNG (its temporary
# images removed); refused up front where it does not
if "$nabla" dot --help | sed -n '/formats Graphviz renders here/,$p' | grep -qw png; then
	mkdir -p "$tmp/t"
	TMPDIR="$tmp/t" "$nabla" predict --model lenet --checkpoint lenet.st --images 6 --grid grid.png \
		>/dev/null 2>"$tmp/err" || fail "predict --grid grid.png: $(cat "$tmp/err")"
	$py -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); assert b[:8]==b"\x89PNG\r\n\x1a\n"; w,h=struct.unpack(">II",b[16:24]); assert w>3*84 and h>2*84, (w,h)' \
		grid.png || fail "grid.png is not a PNG of the grid"
	[ -z "$(ls -A "$tmp/t")" ] || fail "temporary files left: $(ls -R "$tmp/t")"
else
	expect 2 "--grid g.png: PNG needs Graphviz's libgvc" "$nabla" predict --model lenet \
		--checkpoint lenet.st --grid g.png
fi

# ---- --init-from: PyTorch's names ---------------------------------------------------
$py "$src/tests/torch_names.py" lenet.st torch.st || fail "torch_names.py"
"$nabla" eval --model lenet --init-from torch.st --test-limit 300 >ti.txt 2>"$tmp/err" ||
	fail "eval --init-from: $(cat "$tmp/err")"
grep -q 'nabla eval: --init-from torch.st: 10 tensors loaded (10 under PyTorch.s names), 0 of the file.s left unused' \
	"$tmp/err" || fail "eval --init-from: $(cat "$tmp/err")"
cmp -s ti.txt eval.txt || fail "eval --init-from differs from --checkpoint"
"$nabla" predict --model lenet --init-from torch.st --images 300 >tp.txt 2>/dev/null && cmp -s tp.txt p300.txt ||
	fail "predict --init-from differs from --checkpoint"
# batchnorm's weight, bias and running statistics, "module." and num_batches_tracked
$py "$src/tests/torch_names.py" r.st rt.st --module || fail "torch_names.py --module"
"$nabla" eval --model resnet20 --init-from rt.st --test-limit 24 >rt.txt 2>"$tmp/err" ||
	fail "eval resnet20 --init-from: $(cat "$tmp/err")"
grep -q '97 tensors loaded (59 under PyTorch.s names), 19 of the file.s left unused' "$tmp/err" ||
	fail "resnet20 --init-from: $(cat "$tmp/err")"
cmp -s rt.txt r.txt || fail "resnet20: eval --init-from differs from --checkpoint"
# train from it: a step of lr 1e-30 changes no float32 weight, so the
# saved weights evaluate as the file's
"$nabla" train --model lenet --init-from torch.st --optim sgd --lr 1e-30 --epochs 1 --max-batches 1 \
	--train-limit 64 --test-limit 32 --out none --save ti.st >/dev/null 2>"$tmp/err" ||
	fail "train --init-from: $(cat "$tmp/err")"
grep -q 'nabla train: --init-from torch.st: 10 tensors loaded' "$tmp/err" || fail "train --init-from: $(cat "$tmp/err")"
"$nabla" eval --model lenet --checkpoint ti.st --test-limit 300 >tit.txt 2>/dev/null && cmp -s tit.txt eval.txt ||
	fail "train --init-from did not start from the file's weights"

# ---- bad input -----------------------------------------------------------------------
for cmd in eval predict; do
	out=out.svg
	oflag=--confusion
	[ $cmd = predict ] && oflag=--grid
	ck="--model lenet --checkpoint lenet.st"
	for v in 0 -1 abc 1e3 2147483648 ''; do
		expect 2 "--test-limit must be an integer from 1 to 2147483647, got '$v'" "$nabla" $cmd $ck --test-limit "$v" $oflag $out
		absent $out
	done
	expect 2 "--test-limit needs a value" "$nabla" $cmd $ck --test-limit
	for v in 0 -3 x 1048577; do
		expect 2 "--batch must be an integer from 1 to 1048576, got '$v'" "$nabla" $cmd $ck --batch "$v"
	done
	for v in -1 1025 two; do
		expect 2 "--threads must be an integer from 0 to 1024, got '$v'" "$nabla" $cmd $ck --threads "$v"
	done
	expect 2 "--classes wants two different classes, got 2 twice" "$nabla" $cmd $ck --classes 2,2
	expect 2 "--classes must be an integer from 0 to 255, got '256'" "$nabla" $cmd $ck --classes 2,256
	expect 2 "--classes must be an integer from 0 to 255, got '-1'" "$nabla" $cmd $ck --classes -1,2
	expect 2 "--classes wants two class ids 0 to 255, e.g. 2,4" "$nabla" $cmd $ck --classes 2
	expect 2 "$oflag out.gif: the file name must end in .svg" "$nabla" $cmd $ck $oflag out.gif
	expect 1 "$oflag: $tmp/nodir/x.svg: the directory $tmp/nodir does not exist" \
		"$nabla" $cmd $ck $oflag "$tmp/nodir/x.svg"
	mkdir -p dir.svg
	expect 1 "$oflag: dir.svg: is a directory" "$nabla" $cmd $ck $oflag dir.svg
	expect 1 "--checkpoint lenet.st holds model 'lenet', not 'mlp'" "$nabla" $cmd --model mlp --checkpoint lenet.st $oflag $out
	expect 1 "--checkpoint mlp.st holds model 'mlp', not 'lenet'" "$nabla" $cmd --model lenet --checkpoint mlp.st
	expect 1 "missing.st: cannot open" "$nabla" $cmd --model lenet --checkpoint missing.st
	printf 'not a checkpoint' >junk.st
	expect 1 "junk.st" "$nabla" $cmd --model lenet --checkpoint junk.st
	expect 1 "not a checkpoint of nabla train (its metadata has no model); for weights from elsewhere use --init-from" \
		"$nabla" $cmd --model lenet --checkpoint torch.st
	expect 2 "--checkpoint and --init-from both give the weights" "$nabla" $cmd $ck --init-from torch.st
	expect 2 "the weights are needed: --checkpoint FILE" "$nabla" $cmd --model lenet
	expect 2 "--model NAME is required" "$nabla" $cmd --checkpoint lenet.st
	expect 2 "unknown model 'nope'" "$nabla" $cmd --model nope --checkpoint lenet.st
	expect 2 "no test set for the notes' model 'xor'" "$nabla" $cmd --model xor --checkpoint lenet.st
	expect 2 "--checkpoint is empty" "$nabla" $cmd --model lenet --checkpoint ''
	expect 2 "--data synthetic is CIFAR-shaped" "$nabla" $cmd $ck --data synthetic
	expect 1 "lenet trains on Fashion-MNIST: apt install dataset-fashion-mnist" "$nabla" $cmd $ck --data "$tmp/nodir"
	expect 2 "unknown option '--chekpoint'; did you mean --checkpoint?" "$nabla" $cmd --model lenet --chekpoint lenet.st
	expect 1 "the model's parameter conv1.w [6,1,5,5] is not in the file (looked for conv1.w or conv1.weight); the closest names there: " \
		"$nabla" $cmd --model lenet --init-from mlp.st
	expect 1 "fc1.w has shape [120,400], the model's fc1.w is [256,784]" "$nabla" $cmd --model mlp --init-from lenet.st
	absent $out
done
expect 2 "nabla: no command 'predcit'; did you mean 'predict'?" "$nabla" predcit --model lenet
expect 2 "nabla: no command 'evl'; did you mean 'eval'?" "$nabla" evl --model lenet
expect 2 "unknown option '--confsion'; did you mean --confusion?" "$nabla" eval --model lenet --checkpoint lenet.st --confsion x.svg
expect 2 "--confusion cm.png: the file name must end in .svg" "$nabla" eval --model lenet --checkpoint lenet.st --confusion cm.png
ck="--model lenet --checkpoint lenet.st"
for v in 0 -1 x 10001 1.5; do
	expect 2 "--images must be an integer from 1 to 10000, got '$v'" "$nabla" predict $ck --images "$v" --grid out.svg
done
expect 2 "--images needs a value" "$nabla" predict $ck --images
for v in -1 x 2147483648; do
	expect 2 "--first must be an integer from 0 to 2147483647, got '$v'" "$nabla" predict $ck --first "$v"
done
expect 2 "--first 9990 --images 16 reach image 10005, beyond the test set, which has 10000 images (0 to 9999)" \
	"$nabla" predict $ck --first 9990 --images 16 --grid out.svg
expect 2 "--images 301 reach image 300, beyond the test set, which has 300 images (0 to 299)" \
	"$nabla" predict $ck --test-limit 300 --images 301
expect 2 "--index 10000 is beyond the test set, which has 10000 images (0 to 9999)" \
	"$nabla" predict $ck --index 3,10000 --grid out.svg
for v in -1 1,,2 a 1, ,1; do
	expect 2 "--index must be an integer from 0" "$nabla" predict $ck --index "$v"
done
expect 2 "--index names the images; leave out --images" "$nabla" predict $ck --index 1 --images 2
expect 2 "--index names the images; leave out --first" "$nabla" predict $ck --first 1 --index 1
absent out.svg
# a file with a NaN, and one whose tensor is of another dtype
$py - torch.st nan.st i32.st <<'EOF' || fail "writing nan.st"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data = bytearray(b[8 + n:])
o = h["fc2.bias"]["data_offsets"][0]
data[o:o + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(b[:8 + n] + bytes(data))
h["fc2.bias"]["dtype"] = "I32"
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(sys.argv[3], "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
expect 1 "fc2.bias: element 0 is NaN; the model's fc2.b must be finite" "$nabla" eval --model lenet --init-from nan.st
expect 1 "fc2.bias (for the model's fc2.b) is I32; nabla reads F32, F64, F16 and BF16" "$nabla" predict --model lenet --init-from i32.st
# nabla train --init-from
tr="--epochs 1 --max-batches 1 --train-limit 64 --test-limit 32 --out none --save never.st"
expect 1 "the model's parameter conv1.w [6,1,5,5] is not in the file" "$nabla" train --model lenet --init-from mlp.st $tr
expect 1 "missing.st: cannot open" "$nabla" train --model lenet --init-from missing.st $tr
expect 1 "element 0 is NaN" "$nabla" train --model lenet --init-from nan.st $tr
expect 2 "--init-from applies to the zoo models, not xor" "$nabla" train --model xor --init-from torch.st --out none
expect 2 "--init-from starts a new run from other weights, --resume goes on with one" \
	"$nabla" train --model lenet --init-from torch.st --resume lenet.st $tr
expect 2 "--init-from does not apply to --compare-optim" "$nabla" train --compare-optim --init-from torch.st --out none
expect 2 "--init-from is empty" "$nabla" train --model lenet --init-from '' $tr
expect 2 "--init-from needs a value" "$nabla" train --model lenet $tr --init-from
absent never.st
exit 0
