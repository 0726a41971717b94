// solcjs-standard-json: a thin wrapper around the pinned npm `solc` package. zkml embeds
// this file and runs it with node (internal/evm):
//
//   node -e <this file> -- DIR              reads Solidity standard-JSON input on stdin and
//                                           writes the compiler's standard-JSON output on stdout
//   node -e <this file> -- DIR --version    prints the compiler version (e.g. 0.8.37+commit...)
//
// DIR holds node_modules/solc: zkml's user cache directory (where `zkml verify --evm` and
// scripts/ensure-solc.sh install it), or the directory --solc / $ZKML_SOLC names.
'use strict';

const path = require('path');

const [dir, ...flags] = process.argv.slice(1);
let solc;
try {
  solc = require(path.join(dir, 'node_modules', 'solc'));
} catch (err) {
  process.stderr.write('solc-js is not installed in ' + dir + '; run scripts/ensure-solc.sh\n' + err.message + '\n');
  process.exit(2);
}

if (flags.includes('--version')) {
  process.stdout.write(solc.version() + '\n');
  process.exit(0);
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  process.stdout.write(solc.compile(input));
});
