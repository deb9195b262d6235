#!/usr/bin/env node
// Validate one glTF/GLB file with the Khronos glTF validator and print its JSON report on stdout.
// Usage: node validate.js FILE [MAX_ISSUES]
// Exit status: 0 when the validator ran (read numErrors from the report), 2 on usage/IO/parse failure.
'use strict';
const fs = require('fs');
const path = require('path');
const validator = require('gltf-validator');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node validate.js FILE [MAX_ISSUES]');
    process.exit(2);
  }
  const maxIssues = process.argv[3] ? parseInt(process.argv[3], 10) : 200;
  const bytes = new Uint8Array(fs.readFileSync(file));
  const report = await validator.validateBytes(bytes, {
    uri: path.basename(file),
    maxIssues,
    writeTimestamp: false,
    // GLB files are self-contained; an external URI would be our bug, so report it as unresolved.
    externalResourceFunction: (uri) => Promise.reject(new Error(`external resource not allowed: ${uri}`)),
  });
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(2);
});
