// A TypeScript SDK client for the tap's npm-peer tests. It connects to argv[2] (Streamable HTTP,
// or legacy HTTP+SSE when argv[3] is "sse") as ts-tap-test 1.2.3 with sampling and elicitation,
// calls server-everything's tools (one with progress, one that samples, one that elicits, one
// that does not exist) and prints one JSON line per step.
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
const { SSEClientTransport } = require("@modelcontextprotocol/sdk/client/sse.js");
const { CreateMessageRequestSchema, ElicitRequestSchema } = require("@modelcontextprotocol/sdk/types.js");

const out = (step, value) => console.log(JSON.stringify({ step, ...value }));
const text = (res) => (res.content && res.content[0] && res.content[0].text) || "";

async function main() {
  const [url, mode] = process.argv.slice(2);
  const client = new Client(
    { name: "ts-tap-test", version: "1.2.3" },
    { capabilities: { sampling: {}, elicitation: {} } },
  );
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: "assistant",
    content: { type: "text", text: "sampled" },
    model: "test-model",
    stopReason: "endTurn",
  }));
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "decline" }));
  const transport = mode === "sse" ? new SSEClientTransport(new URL(url)) : new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  out("connected", { sessionId: transport.sessionId || "" });

  const tools = await client.listTools();
  out("tools", { names: tools.tools.map((t) => t.name) });
  out("echo", { text: text(await client.callTool({ name: "echo", arguments: { message: "hi from ts" } })) });
  out("sum", { text: text(await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } })) });
  let progress = 0;
  const long = await client.callTool(
    { name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } },
    undefined,
    { onprogress: () => progress++ },
  );
  out("long", { text: text(long), progress });
  out("sampling", { text: text(await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "hello", maxTokens: 5 } })).slice(0, 40) });
  out("elicit", { text: text(await client.callTool({ name: "trigger-elicitation-request", arguments: {} })).slice(0, 40) });
  const missing = await client.callTool({ name: "no-such-tool", arguments: {} });
  out("missing", { isError: missing.isError === true });

  if (transport.terminateSession) await transport.terminateSession();
  await client.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
