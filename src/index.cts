// CommonJS entry: require("pyisolate") returns the ES module itself (one copy of every class, so instanceof holds).

type Api = typeof import("./index.js");

function load(): Api {
  try {
    // require(esm): unflagged since Node 20.19 and 22.12. The ES module stays the only implementation.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS entry loads the ES module by require(esm)
    return require("./index.js") as Api;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ERR_REQUIRE_ESM") throw error;
    throw new Error(
      `require("pyisolate") needs Node 20.19+ or 22.12+ (this is ${process.version}); use import, or await import("pyisolate")`,
      { cause: error },
    );
  }
}

const api: Api = load();
export = api;
