#!/usr/bin/env bash
# Every bad input of the README's table, run through the release CLI: prints the table's rows
# (input, the first line the user sees, exit code) and fails if anything panicked (exit 101),
# crashed (a signal), hung (30 s) or exited 0. A second kind of row, for special files the CLI
# must use rather than refuse or replace (a device as output, a symlink, a BOM), requires exit
# 0 and checks the file system afterwards. Needs ../shared/fixtures for the checkpoint rows.
# Run as root, it also checks that a device given as output stays a device.
#
#   bash tools/bad_inputs.sh
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p regnet-cli || exit 1
regnet=$PWD/target/release/regnet
fixtures=$PWD/../shared/fixtures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# Spec files.
printf 'd: 13\nw0: [24\n' >syntax.yaml
printf -- '- 13\n- 24\n' >list.yaml
printf 'd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\ncolour: red\n' >unknown.yaml
printf 'd: 0\nw0: 20\nwa: .nan\nwm: 1\ng: 8\n' >rules.yaml
printf 'd: 13\nw0: 4294967296\nwa: 36.44\nwm: 2.49\ng: 8\n' >overflow.yaml
printf 'd: 1024\nw0: 1048576\nwa: 1e300\nwm: 1e300\ng: 8\n' >huge_widths.yaml
printf 'd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\nresolution: 4294967295\n' >resolution.yaml
printf 'depths: [1, 2]\nwidths: [32, 40]\ngroup_widths: [8, 12]\n' >groups.yaml
printf 'depths: [1, 2]\nwidths: [32]\ngroup_widths: [8, 8]\n' >lengths.yaml
printf 'd: 13\ndepths: [1]\nwidths: [32]\ngroup_widths: [8]\n' >mixed.yaml
: >empty.yaml
printf 'd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\nse: true\nse_ratio: 1e12\n' >se_ratio.yaml
printf 'd: 13\nw0: 1e308\nwa: 36.44\nwm: 2.49\ng: 8\n' >huge_w0.yaml
printf 'd: !foo 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n' >tag.yaml
printf '\xef\xbb\xbfd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n' >bom.yaml
printf 'd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: &w 8\nb: *w\n' >alias.yaml
printf 'd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\nname: \xe9t\xe9\n' >latin1.yaml
python3 - <<'PY'
base = "d: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n"
open("keys_3000.yaml", "w").write(base + "".join(f"k{i}: 1\n" for i in range(3000)))
open("keys_10000.yaml", "w").write(base + "".join(f"k{i}: 1\n" for i in range(10000)))
open("deep.yaml", "w").write(base + "b: " + "[" * 200_000 + "\n")
open("big.yaml", "w").write(base + "name: " + "x" * 5_000_000 + "\n")
PY
ln -s /etc/passwd passwd.yaml
mkfifo fifo.yaml
mkdir -p dir.yaml

# Checkpoints.
: >empty.safetensors
head -c 4096 /dev/urandom >random.safetensors
head -c 100000 "$fixtures/regnet_y_400mf/model.safetensors" >truncated.safetensors
python3 - <<'PY'
import json, struct
def write(name, header, data=b""):
    raw = json.dumps(header).encode()
    open(name, "wb").write(struct.pack("<Q", len(raw)) + raw + data)
write("past_end.safetensors", {"stem.0.weight": {"dtype": "F32", "shape": [32, 3, 3, 3], "data_offsets": [0, 3456]}})
write("huge_shape.safetensors", {"stem.0.weight": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 16]}}, bytes(16))
write("bad_dtype.safetensors", {"stem.0.weight": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}, bytes(4))
open("huge_header.safetensors", "wb").write(struct.pack("<Q", 2**63) + b"{}")
PY
mkdir -p dir.safetensors
mkfifo fifo.safetensors
# PyTorch checkpoints: cut in half, and a legacy stream whose object calls os.system.
pth=$OLDPWD/tests/fixtures/tv_y/model.pth
head -c $(( $(stat -c %s "$pth") / 2 )) "$pth" >half.pth
python3 - <<'PY'
import struct
magic = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + b"."
stream = magic + b"\x80\x02M\xe9\x03." + b"\x80\x02}q\x00X\r\x00\x00\x00little_endian\x88s."
stream += b"\x80\x02}X\x01\x00\x00\x00kcos\nsystem\nX\x06\x00\x00\x00rm -rf\x85Rs." + b"\x80\x02]."
open("system.pth", "wb").write(stream)
PY
# One BatchNorm running variance of a real checkpoint set to -1 (NaN once folded).
python3 - "$fixtures/regnet_y_400mf/model.safetensors" <<'PY'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
length = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + length])
key = sorted(k for k in header if k.endswith("running_var"))[0]
start = 8 + length + header[key]["data_offsets"][0]
raw[start:start + 4] = struct.pack("<f", -1.0)
open("negative_var.safetensors", "wb").write(raw)
PY

# Inputs and images.
python3 - <<'PY'
import json, struct
def tensors(name, entries):
    header, data = {}, b""
    for key, shape in entries:
        n = 1
        for d in shape:
            n *= d
        header[key] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += bytes(4 * n)
    raw = json.dumps(header).encode()
    open(name, "wb").write(struct.pack("<Q", len(raw)) + raw + data)
tensors("wrong_key.safetensors", [("images", [1, 3, 224, 224])])
tensors("wrong_shape.safetensors", [("input", [1, 3, 100, 100])])
PY
printf 'not an image' >text.jpg
head -c 200 "$OLDPWD/regnet-cli/tests/images/landscape.png" >truncated.png
: >zero.png
mkdir -p no_images
photo=$OLDPWD/regnet-cli/tests/images/photo.jpg
head -c $(($(stat -c %s "$photo") / 2)) "$photo" >half.jpg
python3 - "$photo" <<'PY'
import sys
bomb = bytearray(open(sys.argv[1], "rb").read())
frame = bomb.find(b"\xff\xc0")
bomb[frame + 5:frame + 9] = b"\xff\xff\xff\xff"
open("bomb.jpg", "wb").write(bomb)
PY
mkfifo fifo.png
cp "$photo" "$(printf 'e\033[2J.jpg')"
mkdir -p loop/a
cp "$photo" loop/a/photo.jpg
ln -s .. loop/a/up
mkdir -p out_dir
mknod null c 1 3 2>/dev/null || true
printf 'old' >target.safetensors
ln -s target.safetensors link.safetensors
# A tiny batch for the output rows: one 224×224 image.
python3 - <<'PY'
import json, struct
n = 3 * 224 * 224
raw = json.dumps({"input": {"dtype": "F32", "shape": [1, 3, 224, 224], "data_offsets": [0, 4 * n]}}).encode()
open("one.safetensors", "wb").write(struct.pack("<Q", len(raw)) + raw + bytes(4 * n))
PY

y400=$fixtures/regnet_y_400mf/model.safetensors
x400=$fixtures/regnet_x_400mf/model.safetensors
status=0
# attempt LABEL ARGS...: runs the CLI (30 s at most) and prints LABEL's row of the table; leaves
# stderr in $err and the exit code in $code for the caller to judge.
attempt() {
  local label=$1
  shift
  err=$(timeout 30 "$regnet" "$@" 2>&1 >/dev/null)
  code=$?
  local first seen='(nothing printed)'
  first=$(printf '%s\n' "$err" | grep -v '^\s*$' | head -1 | sed "s|$fixtures|../shared/fixtures|g" | cut -c1-230)
  [ -n "$first" ] && seen="\`${first//|/\\|}\`"
  printf '| %s | %s | %s |\n' "$label" "$seen" "$code"
}

# row LABEL ARGS...: a bad input, which must fail cleanly (not 0, not a panic or a signal).
row() {
  attempt "$@"
  if [ "$code" -eq 0 ] || [ "$code" -ge 101 ] || printf '%s' "$err" | grep -q 'panicked'; then
    echo "^ NOT HANDLED: exit $code" >&2
    status=1
  fi
}

# ok_row LABEL CHECK ARGS...: the command must succeed and the shell test CHECK hold afterwards.
ok_row() {
  local check=$2
  attempt "$1" "${@:3}"
  if [ "$code" -ne 0 ] || ! eval "$check"; then
    echo "^ NOT HANDLED: exit $code, or \`$check\` does not hold" >&2
    status=1
  fi
}

echo '| bad input | what the user sees (first line) | exit |'
echo '|---|---|---|'
row 'spec file missing' inspect missing.yaml
row 'spec: YAML syntax error' inspect syntax.yaml
row 'spec: a list, not a mapping' inspect list.yaml
row 'spec: empty file' inspect empty.yaml
row 'spec: unknown key' inspect unknown.yaml
row 'spec: d 0, w0 not a multiple of 8, wa NaN, wm 1 (four errors)' inspect rules.yaml
row 'spec: w0 above u32' inspect overflow.yaml
row 'spec: widths that overflow (wa, wm 1e300)' inspect huge_widths.yaml
row 'spec: resolution 4294967295 (flops overflow u64)' inspect resolution.yaml
row 'spec: group width not dividing a per-stage bottleneck' inspect groups.yaml
row 'spec: per-stage lists of different lengths' inspect lengths.yaml
row 'spec: both forms mixed' inspect mixed.yaml
row 'spec: se_ratio 1e12 (an SE width past the channel cap)' inspect se_ratio.yaml
row 'spec: w0 1e308' inspect huge_w0.yaml
row 'spec: an unknown YAML tag (d: !foo 13)' inspect tag.yaml
row 'spec: a YAML alias' inspect alias.yaml
row 'spec: not UTF-8' inspect latin1.yaml
row 'spec: 3,000 unknown keys (20 listed, then a count)' inspect keys_3000.yaml
row 'spec: 10,000 unknown keys' inspect keys_10000.yaml
row 'spec: 200,000 nested [' inspect deep.yaml
row 'spec: a 5 MB file' inspect big.yaml
row 'spec: a symlink to /etc/passwd (one YAML string)' inspect passwd.yaml
row 'spec: a FIFO' inspect fifo.yaml
row 'spec: a directory' inspect dir.yaml
row 'spec: /dev/zero' inspect /dev/zero
ok_row 'spec: a UTF-8 byte-order mark (accepted)' 'true' inspect bom.yaml
row 'weights: file missing' run regnety_400mf --weights missing.safetensors --input x --output y
row 'weights: a directory' run regnety_400mf --weights dir.safetensors --input x --output y
row 'weights: empty file' run regnety_400mf --weights empty.safetensors --input x --output y
row 'weights: random bytes' run regnety_400mf --weights random.safetensors --input x --output y
row 'weights: header length 2⁶³' run regnety_400mf --weights huge_header.safetensors --input x --output y
row 'weights: truncated checkpoint' run regnety_400mf --weights truncated.safetensors --input x --output y
row 'weights: offsets past the end' run regnety_400mf --weights past_end.safetensors --input x --output y
row 'weights: shape 2⁶²×4' run regnety_400mf --weights huge_shape.safetensors --input x --output y
row 'weights: unknown dtype' run regnety_400mf --weights bad_dtype.safetensors --input x --output y
row 'weights: a FIFO' run regnety_400mf --weights fifo.safetensors --input x --output y
row 'weights: half of a .pth' run regnety_400mf --weights half.pth --input x --output y
row 'weights: a .pth pickle that calls os.system (nothing runs)' run regnety_400mf --weights system.pth --input x --output y
row 'weights: a BatchNorm running_var of -1' run regnety_400mf --weights negative_var.safetensors --input x --output y
row 'weights: another model (RegNetX-400MF for Y-400MF)' run regnety_400mf --weights "$x400" --input x --output y
row "weights: torchvision's X-400MF for pycls's spec" run regnetx_400mf --weights "$x400" --input x --output y
row 'input: file missing' run regnety_400mf --weights "$y400" --input missing.safetensors --output y.safetensors
row 'input: no tensor "input"' run regnety_400mf --weights "$y400" --input wrong_key.safetensors --output y.safetensors
row 'input: 100×100 images' run regnety_400mf --weights "$y400" --input wrong_shape.safetensors --output y.safetensors
row 'input: /dev/zero' run regnety_400mf --weights "$y400" --input /dev/zero --output y.safetensors
row 'input: a FIFO' run regnety_400mf --weights "$y400" --input fifo.safetensors --output y.safetensors
row 'output: a directory' run regnety_400mf --weights "$y400" --input one.safetensors --output out_dir
ok_row 'output: a symlink (its target written, the link kept)' '[ -L link.safetensors ] && [ "$(stat -c %s target.safetensors)" -gt 3 ]' \
  run regnety_400mf --weights "$y400" --input one.safetensors --output link.safetensors
if [ -c null ]; then
  ok_row 'output: a character device (a copy of /dev/null; written in place)' '[ -c null ]' \
    run regnety_400mf --weights "$y400" --input one.safetensors --output null
fi
row 'image: text named .jpg' classify regnety_400mf --weights "$y400" text.jpg
row 'image: truncated PNG' classify regnety_400mf --weights "$y400" truncated.png
row 'image: empty file' classify regnety_400mf --weights "$y400" zero.png
row 'image: directory without images' classify regnety_400mf --weights "$y400" no_images
row 'image: half of a JPEG' classify regnety_400mf --weights "$y400" half.jpg
row 'image: a 65535×65535 JPEG header (decompression bomb)' classify regnety_400mf --weights "$y400" bomb.jpg
row 'image: a FIFO' classify regnety_400mf --weights "$y400" fifo.png
row 'image: a name with terminal escape codes (missing file)' classify regnety_400mf --weights "$y400" "$(printf 'x\033[2J.jpg')"
ok_row 'image: a symlink to the parent directory (a cycle)' 'true' classify regnety_400mf --weights "$y400" loop
row 'CLI: unknown model' bench regnety_9gf
row 'CLI: --batch 0' bench regnety_200mf --batch 0
row 'CLI: --threads 0' bench regnety_200mf --threads 0
row 'CLI: --threads 10000' bench regnety_200mf --threads 10000
row 'CLI: sample --count 1000000000' sample regnetx --count 1000000000
row 'CLI: plot -o a directory' plot -o out_dir
row 'CLI: --flops 5G..1G' sample regnetx --flops 5G..1G
row 'CLI: plot to .gif' plot -o widths.gif
row 'CLI: graph --format png' graph --format png
row 'CLI: --device cuda:7 (no GPU or no cuda feature)' bench regnety_200mf --device cuda:7
row 'CLI: unknown subcommand' train
exit $status
