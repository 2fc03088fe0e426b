// ONNX Runtime worker of bench/compare (npm onnxruntime-node; run with
// NODE_PATH=.deps/ort/node_modules). Usage: node compare_ort.js THREADS
//
// One session per model, created with intraOpNumThreads = THREADS, interOpNumThreads 1,
// graphOptimizationLevel 'all', executionMode 'sequential' (the settings of
// /work/shared/peers/ort_bench.js). Speaks the worker protocol of bench/compare: one JSON object
// per line on stdin, one answer per line on stdout:
//
//   {"op": "load", "name": N, "onnx": PATH, "input": BIN, "shape": [...]}  -> {"ok": true, ...}
//   {"op": "run", "name": N, "n": K}          -> {"ok": true, "ns": [K wall times of one run]}
//   {"op": "output", "name": N, "path": BIN}  -> writes the output (raw float32) -> {"ok": true}
//   {"op": "quit"}
//
// A run is `await session.run(feeds)`, timed with process.hrtime.bigint(): what a Node.js
// user of ONNX Runtime waits for, binding overhead included.
'use strict';
const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

const threads = parseInt(process.argv[2] || '1', 10);
const sessions = new Map(); // name -> {sess, feeds}

async function handle(req) {
  switch (req.op) {
    case 'load': {
      const sess = await ort.InferenceSession.create(req.onnx, {
        executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
        graphOptimizationLevel: 'all', executionMode: 'sequential' });
      if (sess.inputNames.length !== 1 || sess.outputNames.length !== 1)
        throw new Error(`${req.name}: expected one input and one output, the model has ` +
                        `${sess.inputNames.length} and ${sess.outputNames.length}`);
      const buf = fs.readFileSync(req.input);
      const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', data, req.shape) };
      sessions.set(req.name, { sess, feeds });
      return { ok: true, version: ort.env.versions ? ort.env.versions.common : undefined, threads };
    }
    case 'run': {
      const { sess, feeds } = sessions.get(req.name);
      const ns = [];
      for (let i = 0; i < req.n; i++) {
        const t0 = process.hrtime.bigint();
        await sess.run(feeds);
        ns.push(Number(process.hrtime.bigint() - t0));
      }
      return { ok: true, ns };
    }
    case 'output': {
      const { sess, feeds } = sessions.get(req.name);
      const out = (await sess.run(feeds))[sess.outputNames[0]];
      if (out.type !== 'float32') throw new Error(`${req.name}: output is ${out.type}, expected float32`);
      fs.writeFileSync(req.path, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
      return { ok: true, shape: out.dims };
    }
    default:
      return { ok: false, error: `unknown op '${req.op}'` };
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    if (req.op === 'quit') break;
    let reply;
    try {
      reply = await handle(req);
    } catch (e) {
      reply = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  process.exit(0);
}

main();
