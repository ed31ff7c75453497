// Runs an ONNX model in ONNX Runtime (onnxruntime-node, CPU) for nabla's
// export tests:  node run_ort.js MANIFEST
// MANIFEST is JSON: {"model": "m.onnx", "dtype": "float32"|"float64",
//   "inputs": [{"name": ..., "dims": [...], "file": "x.bin"}],
//   "outputs": [{"name": ..., "file": "y.bin"}]}
// Inputs are raw little-endian arrays of dtype; each output is written the
// same way, and its dims to FILE.dims as JSON.  Exit 0 on success, 1 with
// a message otherwise.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
	const man = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
	const dir = path.dirname(process.argv[2]);
	const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
	const session = await ort.InferenceSession.create(path.resolve(dir, man.model));
	const Arr = man.dtype === 'float64' ? Float64Array : Float32Array;
	const feeds = {};
	for (const inp of man.inputs) {
		const buf = fs.readFileSync(path.resolve(dir, inp.file));
		const data = new Arr(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
		feeds[inp.name] = new ort.Tensor(man.dtype, data, inp.dims);
	}
	const res = await session.run(feeds);
	for (const out of man.outputs) {
		const t = res[out.name];
		if (!t)
			throw new Error(`no output named ${out.name}`);
		const file = path.resolve(dir, out.file);
		fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
		fs.writeFileSync(file + '.dims', JSON.stringify(t.dims));
	}
}

main().catch((e) => {
	console.error(`run_ort.js: ${e.message || e}`);
	process.exit(1);
});
