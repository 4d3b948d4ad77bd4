// A cassette per test with Node's built-in test runner and llm-vcr sessions (no packages).
//
// Run the tests through llm-vcr, which starts the proxy and sets the proxy variables (and, for
// Node < 24, a NODE_OPTIONS preload so that fetch uses the proxy) for them:
//
//   llm-vcr run --dir cassettes -- node --test
//
// (or against a running `llm-vcr serve`: eval "$(llm-vcr env)"; node --test).
// `cassetteTest(name, fn)` is `test(name, fn)` in a session named "node/<name>": fn gets the
// headers that put a request in it (X-VCR-Session). When the test ends the session is closed,
// and a request that found no recorded answer fails the test with the proxy's explanation.
import assert from "node:assert/strict";
import { test } from "node:test";

const CONTROL = "http://llm-vcr.invalid/v1/sessions"; // a reserved host only the proxy answers

export function cassetteTest(name, fn) {
  return test(name, async (t) => {
    const opened = await fetch(CONTROL, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ cassette: `node/${t.name}` }),
    }).catch((error) => {
      throw new Error(`llm-vcr: cannot open a session (is the proxy running? llm-vcr run -- node --test): ${error.cause ?? error}`);
    });
    assert.equal(opened.status, 201, `llm-vcr: opening a session answered ${opened.status}`);
    const { session } = await opened.json();
    try {
      await fn(t, { "X-VCR-Session": session });
    } finally {
      const closed = await fetch(`${CONTROL}/${session}`, { method: "DELETE" });
      const report = await closed.json();
      const misses = Object.entries(report.cassettes ?? {}).flatMap(([cassette, entry]) =>
        entry.missed.map((miss) => `no recorded answer in cassette '${cassette}': ${miss.request}: ${miss.reason}`));
      assert.deepEqual(misses, [], `llm-vcr:\n${misses.join("\n")}`);
    }
  });
}
