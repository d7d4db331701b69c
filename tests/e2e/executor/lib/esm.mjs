// An ES module: "lib/esm.mjs#hi".
export async function hi(x) {
	return `hi ${x}`;
}
