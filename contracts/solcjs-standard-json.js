#!/usr/bin/env node
// solcjs-standard-json: a thin wrapper around the pinned npm `solc` package.
//
//   node solcjs-standard-json.js            reads Solidity standard-JSON input on stdin and
//                                           writes the compiler's standard-JSON output on stdout
//   node solcjs-standard-json.js --version  prints the compiler version (e.g. 0.8.37+commit...)
//
// It resolves `solc` from the node_modules next to this file (installed by
// scripts/ensure-solc.sh), so it works from any working directory. Go code calls it through
// internal/evm.
'use strict';

const path = require('path');

let solc;
try {
  solc = require(path.join(__dirname, 'node_modules', 'solc'));
} catch (err) {
  process.stderr.write('solc-js is not installed; run scripts/ensure-solc.sh\n' + err.message + '\n');
  process.exit(2);
}

if (process.argv.includes('--version')) {
  process.stdout.write(solc.version() + '\n');
  process.exit(0);
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  process.stdout.write(solc.compile(input));
});
