import type { Readable } from "node:stream";
import type { Gateway } from "@aigw/core";
import { dispatchNodeRequest } from "@aigw/core/node";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";

export interface AigwFastifyOptions {
  gateway: Gateway;
}

/**
 * A Fastify plugin serving the gateway under its prefix:
 * `app.register(aigw, { gateway, prefix: "/ai" })` answers `/ai/v1/chat/completions`.
 * Inside its own encapsulated context it hands request bodies through unparsed, so the
 * gateway parses them once and its own body limit and OpenAI-shaped errors apply; the app's
 * other routes keep their parsers and limits.
 */
export const aigw: FastifyPluginAsync<AigwFastifyOptions> = async (fastify, { gateway }) => {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser("*", (_request, payload, done) => done(null, payload));
  const prefixLength = fastify.prefix.length;

  async function handler(request: FastifyRequest, reply: FastifyReply) {
    const response = await dispatchNodeRequest(gateway, request.raw, reply.raw, {
      path: request.url.slice(prefixLength) || "/",
      // Our parser's payload: the request stream after any preParsing hook (decompression).
      body: request.body as Readable | undefined,
    });
    return reply.code(response.status).headers(response.headers).send(response.body);
  }
  fastify.all("/", handler);
  fastify.all("/*", handler);
};
