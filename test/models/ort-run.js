// node ort-run.js MODEL.onnx INPUT.npy OUTPUT.npy: runs MODEL (one input, first output) in ONNX
// Runtime (npm onnxruntime-node, all graph optimizations on, 1 thread) and writes its output.
// Used to check that a model tessel wrote is one ONNX Runtime loads and agrees with.
const ort = require('onnxruntime-node');
const fs = require('fs');

function readNpy(path) {
  const b = fs.readFileSync(path);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6];
  const hl = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = major === 1 ? 10 : 12;
  const h = b.slice(off, off + hl).toString('latin1');
  const shape = h.match(/'shape': \(([^)]*)\)/)[1].split(',').filter(s => s.trim()).map(Number);
  const descr = h.match(/'descr': '([^']*)'/)[1];
  const data = b.slice(off + hl);
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
  if (descr === '<f4') return new ort.Tensor('float32', new Float32Array(ab), shape);
  if (descr === '<i8') return new ort.Tensor('int64', new BigInt64Array(ab), shape);
  throw new Error(`${path}: unsupported dtype ${descr}`);
}

function writeNpy(path, t) {
  if (t.type !== 'float32') throw new Error(`output type ${t.type} not supported`);
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`;
  while ((10 + h.length + 1) % 64) h += ' ';
  h += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1; head[7] = 0;
  head.writeUInt16LE(h.length, 8);
  fs.writeFileSync(path, Buffer.concat([head, Buffer.from(h, 'latin1'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

(async () => {
  const [model, input, output] = process.argv.slice(2);
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const r = await s.run({ [s.inputNames[0]]: readNpy(input) });
  writeNpy(output, r[s.outputNames[0]]);
  console.log(`onnxruntime ${model}: output '${s.outputNames[0]}' [${r[s.outputNames[0]].dims}]`);
})().catch(e => { console.error(`error: ${e.message}`); process.exit(1); });
