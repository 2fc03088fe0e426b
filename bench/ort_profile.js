#!/usr/bin/env node
// Per-node times of ONNX Runtime on one model (its own profiler), to set beside
// `tessel bench MODEL.tsl --profile`: which layers ORT runs faster than tessel's kernels.
//
//   NODE_PATH=.deps/ort/node_modules node bench/ort_profile.js MODEL.onnx INPUT.npy [--threads N] [--runs R] [--top K]
//
// Prints, per node, the median of its kernel times over the runs after the first fifth
// (warm-up), largest first, and their sum. The input comes from an .npy file (float32, C order).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

function fail(msg) {
  console.error('ort_profile: ' + msg);
  process.exit(2);
}

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    fail(`${file}: cannot read (${e.code || e.message})`);
  }
  if (buf.length < 10 || buf.toString('latin1', 1, 6) !== 'NUMPY')
    fail(`${file}: not an .npy file (expected the \\x93NUMPY magic)`);
  const major = buf[6];
  const hlen = major >= 2 ? buf.readUInt32LE(8) : buf.readUInt16LE(8);
  const start = major >= 2 ? 12 : 10;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    fail(`${file}: expected float32 (<f4) data in C order, header ${header.trim()}`);
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  if (!m) fail(`${file}: no shape in header ${header.trim()}`);
  const shape = m[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  if (buf.length - off < n * 4) fail(`${file}: ${buf.length - off} data bytes, expected ${n * 4}`);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + n * 4));
  return new ort.Tensor('float32', data, shape);
}

(async () => {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = Number(args[i + 1]);
    if (!Number.isInteger(v) || v < 1) fail(`${name} ${args[i + 1]}: expected a positive integer`);
    args.splice(i, 2);
    return v;
  };
  const threads = opt('--threads', 1), runs = opt('--runs', 100), top = opt('--top', 30);
  if (args.length !== 2) fail('usage: ort_profile.js MODEL.onnx INPUT.npy [--threads N] [--runs R] [--top K]');
  const [model, input] = args;
  const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-')), 'p');
  let s;
  try {
    s = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
      executionMode: 'sequential', enableProfiling: true, profileFilePrefix: prefix});
  } catch (e) {
    fail(`${model}: ONNX Runtime cannot load it: ${e.message}`);
  }
  const feeds = {[s.inputNames[0]]: readNpy(input)};
  for (let i = 0; i < runs; ++i) await s.run(feeds);
  await s.endProfiling();
  const dir = path.dirname(prefix);
  const files = fs.readdirSync(dir).filter(f => f.endsWith('.json'));
  if (files.length !== 1) fail(`expected one profile in ${dir}, found ${files.length}`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
  fs.rmSync(dir, {recursive: true, force: true});
  const times = new Map();
  for (const e of events)
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) {
      const k = `${e.name.slice(0, -12)} (${(e.args && e.args.op_name) || '?'})`;
      if (!times.has(k)) times.set(k, []);
      times.get(k).push(e.dur);
    }
  const rows = [];
  for (const [k, v] of times) {
    const w = v.slice(Math.floor(v.length / 5)).sort((a, b) => a - b);
    rows.push([w[Math.floor(w.length / 2)], k]);
  }
  rows.sort((a, b) => b[0] - a[0]);
  const total = rows.reduce((a, r) => a + r[0], 0);
  console.log(`ort_profile ${path.basename(model)} threads=${threads} runs=${runs}: ${rows.length} nodes, sum of medians ${(total / 1000).toFixed(4)} ms`);
  for (const [us, k] of rows.slice(0, top))
    console.log(`  ${(us / 1000).toFixed(4)} ms  ${(100 * us / total).toFixed(1).padStart(5)}%  ${k}`);
})();
