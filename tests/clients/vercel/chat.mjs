// A multi-turn chat as the AI SDK docs show: each turn's response.messages appended to the history.
// Usage: node chat.mjs BASE_URL MODEL responses|chat generate|stream|object STORE(true|false) PROMPT1 PROMPT2
// → prints {turns: [{text, reasoning, object, sent}], warnings} as JSON; `sent`: the types of the items (Responses)
// or the roles of the messages (chat) of the request the SDK sent.
import { createOpenAI } from "@ai-sdk/openai";
import { generateObject, generateText, streamText } from "ai";
import { z } from "zod";

const [baseURL, modelId, api, how, store, ...prompts] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey: "unused" });
const model = api === "chat" ? openai.chat(modelId) : openai(modelId);
const providerOptions = {
  openai: { reasoningSummary: "auto", ...(store === "false" ? { store: false } : {}) },
};
const messages = [];
const turns = [];
const warnings = [];

function sent(request) {
  const body = typeof request?.body === "string" ? JSON.parse(request.body) : request?.body;
  return (body?.input ?? body?.messages ?? []).map((item) => item.type ?? item.role);
}

for (const [index, prompt] of prompts.entries()) {
  messages.push({ role: "user", content: prompt });
  const options = { model, messages, providerOptions, maxRetries: 0 };
  if (how === "object" && index === prompts.length - 1) {
    const result = await generateObject({
      ...options,
      schema: z.object({ city: z.string(), celsius: z.number() }),
    });
    turns.push({ object: result.object, reasoning: result.reasoning ?? null, sent: sent(result.request) });
    warnings.push(...(result.warnings ?? []));
    break;
  }
  if (how === "stream") {
    const result = streamText(options);
    let text = "";
    for await (const delta of result.textStream) text += delta;
    const response = await result.response;
    messages.push(...response.messages);
    turns.push({ text, reasoning: await result.reasoningText, sent: sent(await result.request) });
    warnings.push(...((await result.warnings) ?? []));
  } else {
    const result = await generateText(options);
    messages.push(...result.response.messages);
    turns.push({ text: result.text, reasoning: result.reasoningText, sent: sent(result.request) });
    warnings.push(...(result.warnings ?? []));
  }
}

console.log(JSON.stringify({ turns, warnings }));
