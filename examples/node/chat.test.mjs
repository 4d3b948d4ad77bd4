import assert from "node:assert/strict";

import { cassetteTest } from "./vcr.mjs";

async function ask(headers, prompt) {
  const response = await fetch("https://api.openai.com/v1/chat/completions", {
    method: "POST",
    headers: { ...headers, "Content-Type": "application/json", Authorization: "Bearer sk-test-not-a-real-key" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: prompt }] }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).choices[0].message.content;
}

cassetteTest("greeting", async (t, headers) => {
  assert.equal(await ask(headers, "Hello from Node"), "Echo: Hello from Node");
});

cassetteTest("farewell", async (t, headers) => {
  assert.equal(await ask(headers, "Goodbye from Node"), "Echo: Goodbye from Node");
});
