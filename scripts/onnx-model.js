'use strict';
// A tiny ONNX model written by hand — Y = A·B + C (MatMul then Add, float
// tensors A [1,2], B [2,2], C [1,2]) — as protobuf bytes, so that the
// onnxruntime tests and benchmark run a real inference without downloading a
// model. Only the few ModelProto fields onnxruntime needs are written.
//
//   require('./scripts/onnx-model.js').matMulAddModel()  → Uint8Array (153 bytes)

/** A protobuf varint. */
function varint(n) {
  const out = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** Field `field` as a varint (wire type 0). */
function int(field, n) {
  return [...varint(field << 3), ...varint(n)];
}

/** Field `field` as bytes, a string or a nested message (wire type 2). */
function bytes(field, content) {
  const b = typeof content === 'string' ? [...Buffer.from(content, 'utf8')] : content;
  return [...varint((field << 3) | 2), ...varint(b.length), ...b];
}

const FLOAT = 1;

/** ValueInfoProto: a float tensor input or output of the given shape. */
function tensor(name, dims) {
  const shape = dims.flatMap((d) => bytes(1, int(1, d)));
  const tensorType = [...int(1, FLOAT), ...bytes(2, shape)];
  return [...bytes(1, name), ...bytes(2, bytes(1, tensorType))];
}

/** NodeProto. */
function node(op, inputs, output) {
  return [...inputs.flatMap((i) => bytes(1, i)), ...bytes(2, output), ...bytes(3, op.toLowerCase()), ...bytes(4, op)];
}

/** The model's bytes: inputs A, B, C; output Y = A·B + C. */
function matMulAddModel() {
  const graph = [
    ...bytes(1, node('MatMul', ['A', 'B'], 'T')),
    ...bytes(1, node('Add', ['T', 'C'], 'Y')),
    ...bytes(2, 'matmul_add'),
    ...bytes(11, tensor('A', [1, 2])),
    ...bytes(11, tensor('B', [2, 2])),
    ...bytes(11, tensor('C', [1, 2])),
    ...bytes(12, tensor('Y', [1, 2])),
  ];
  // ir_version 8, the graph, opset 13 of the default domain.
  return Uint8Array.from([...int(1, 8), ...bytes(7, graph), ...bytes(8, int(2, 13))]);
}

module.exports = { matMulAddModel };
