// SPDX-License-Identifier: MIT
// hotcell's Node.js handler wrapper (docs/executors.md). hotcell-init writes it to
// /hotcell/runtime/node.js in every guest; an executor with "runtime": "node" runs
//   node /hotcell/runtime/node.js FILE#FUNCTION
// in the image's WorkingDir with the call's input (JSON) on stdin. It loads FILE (a path
// relative to that directory; CommonJS or an ES module), calls FUNCTION(input), awaits what it
// returns and writes the value as JSON to /hotcell/result.json. An exception, a rejected
// promise, a missing handler or a value JSON cannot represent becomes {"handler_error":
// {"type", "message", "traceback"}} in result.json and exit status 1. The handler's own
// console output goes to stdout and stderr as usual.
'use strict';
const fs = require('fs');
const path = require('path');
const url = require('url');

const RESULT = '/hotcell/result.json';

function writeResult(doc) {
	fs.writeFileSync(RESULT + '.tmp', doc);
	fs.renameSync(RESULT + '.tmp', RESULT);
}

function fail(type, message, traceback) {
	writeResult(JSON.stringify({handler_error: {type, message, traceback: traceback || ''}}));
	process.exit(1);
}

function failErr(e, prefix) {
	if (e instanceof Error)
		fail(e.name || (e.constructor && e.constructor.name) || 'Error', (prefix || '') + e.message,
			String(e.stack || ''));
	fail(typeof e, (prefix || '') + String(e), '');
}

async function load(file) {
	try {
		return require(file);
	} catch (e) {
		if (e && e.code === 'ERR_REQUIRE_ESM')
			return import(url.pathToFileURL(file).href);
		throw e;
	}
}

async function main() {
	const spec = process.argv[2] || '';
	const hash = spec.lastIndexOf('#');
	if (process.argv.length !== 3 || hash <= 0 || hash === spec.length - 1)
		fail('UsageError', 'usage: node.js FILE#FUNCTION');
	const file = path.resolve(process.cwd(), spec.slice(0, hash));
	const name = spec.slice(hash + 1);
	const raw = fs.readFileSync(0, 'utf8');
	let input = null;
	try {
		if (raw.trim() !== '')
			input = JSON.parse(raw);
	} catch (e) {
		failErr(e, 'the input is not JSON: ');
	}
	let out;
	try {
		const mod = await load(file);
		let fn = mod;
		for (const part of name.split('.'))
			fn = fn == null ? undefined : fn[part];
		if (fn === undefined && mod && mod.default)
			fn = name.split('.').reduce((o, p) => (o == null ? undefined : o[p]), mod.default);
		if (typeof fn !== 'function')
			throw new TypeError(`${spec.slice(0, hash)} exports no function '${name}'`);
		out = await fn(input);
	} catch (e) {
		failErr(e);
	}
	let doc;
	try {
		doc = out === undefined ? 'null' : JSON.stringify(out);
	} catch (e) {
		failErr(e, "the handler's return value is not JSON-serialisable: ");
	}
	if (doc === undefined)
		fail('TypeError',
			`the handler's return value is not JSON-serialisable: a ${typeof out}`);
	writeResult(doc);
	// Timers or sockets the handler left open do not hold the call.
	process.exit(0);
}

main().catch((e) => failErr(e));
