// generateText with two tools and a multi-step stop condition, as the AI SDK docs show.
// Usage: node loop.mjs BASE_URL PROMPT responses|chat  → prints {text, steps, toolCalls, toolResults} as JSON.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, tool } from "ai";
import { z } from "zod";

const [baseURL, prompt, api] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey: "unused" });
const model = api === "chat" ? openai.chat("fake-model") : openai("fake-model");

const result = await generateText({
  model,
  maxRetries: 0,
  tools: {
    weather: tool({
      description: "Get the weather in a location",
      inputSchema: z.object({ location: z.string().describe("The location to get the weather for") }),
      execute: async ({ location }) => ({ location, temperature: 21 }),
    }),
    time: tool({
      description: "Get the local time in a location",
      inputSchema: z.object({ location: z.string() }),
      execute: async ({ location }) => ({ location, time: "12:00" }),
    }),
  },
  stopWhen: stepCountIs(5),
  prompt,
});

console.log(
  JSON.stringify({
    text: result.text,
    steps: result.steps.length,
    toolCalls: result.steps.flatMap((step) => step.toolCalls.map((call) => call.toolName)),
    toolResults: result.steps.flatMap((step) => step.toolResults.map((r) => r.output)),
  }),
);
