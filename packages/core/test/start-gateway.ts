import { createServer } from "node:http";
import { closeServer, listen } from "@aigw/testing";
import OpenAI from "openai";
import { createGateway, type Gateway, type GatewayOptions } from "../src/index.js";
import { toNodeListener } from "../src/node.js";

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  client: OpenAI;
  close(): Promise<void>;
}

/** A gateway behind a real Node HTTP server, with an openai SDK client pointed at it. */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const gateway = createGateway(options);
  const server = createServer(toNodeListener(gateway));
  const { url } = await listen(server);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "sk-client-key", maxRetries: 0 });
  return {
    gateway,
    url,
    client,
    async close() {
      await closeServer(server);
      await gateway.close();
    },
  };
}
