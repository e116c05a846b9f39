// callingExtension(): what runAsCaller sets, across awaits and timers; and startCallerTracking, which turns the
// store on before any call (caller.ts says why), leaves nothing behind.

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { callingExtension, runAsCaller, startCallerTracking } from "../src/caller.js";

describe("callingExtension", () => {
  it("is undefined after startCallerTracking, outside any call, however often it is started", () => {
    startCallerTracking();
    startCallerTracking();
    assert.equal(callingExtension(), undefined);
  });

  it("names the caller in the call, after its awaits and in a timer it set, and nothing after it", async () => {
    startCallerTracking();
    const seen: (string | undefined)[] = [];
    const fromTimer = new Promise<string | undefined>((resolve) => {
      void runAsCaller("ext_a", async () => {
        seen.push(callingExtension());
        await sleep(1);
        seen.push(callingExtension());
        setTimeout(() => resolve(callingExtension()), 1);
      });
    });
    const other = runAsCaller("ext_b", async () => {
      await Promise.resolve();
      return callingExtension();
    });
    assert.equal(await fromTimer, "ext_a");
    assert.equal(await other, "ext_b");
    assert.deepEqual(seen, ["ext_a", "ext_a"]);
    assert.equal(callingExtension(), undefined);
  });
});
