// Node.js handlers of tests/e2e/executor.sh (the image's /app, its WorkingDir).
exports.echo = (x) => {
	console.log('hello from node');
	console.error('to stderr');
	return {got: x, lang: 'node'};
};
exports.add = async (x) => {
	await new Promise((r) => setTimeout(r, 50));
	return x.a + x.b;
};
exports.boom = function boom() {
	throw new RangeError('out of range');
};
exports.nonjson = () => 10n;
exports.lingers = (x) => {
	setInterval(() => {}, 1000); // an open timer does not hold the call
	return 'done';
};
