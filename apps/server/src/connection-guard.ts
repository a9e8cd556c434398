import type { Server } from "node:http";
import type { Socket } from "node:net";

const guard = Symbol("aigw.connectionGuard");

interface GuardState {
  timer: NodeJS.Timeout | undefined;
  /** Requests whose headers are in and whose answer is not over yet. */
  open: number;
}

type GuardedSocket = Socket & { [guard]?: GuardState };

/**
 * Closes a connection whose next request's headers have not arrived in time: `firstMs` after
 * it opened, or `nextMs` after its last answer ended (a keep-alive wait included). Node's own
 * `headersTimeout` does not end a connection that sent part of its headers and stopped, nor
 * one that sends nothing. While a request is being answered nothing is timed here: Node's
 * `requestTimeout` bounds its body, and answers (slow models, long streams) are not bounded.
 */
export function closeSlowConnections(server: Server, firstMs: number, nextMs: number): void {
  const arm = (socket: GuardedSocket, state: GuardState, milliseconds: number) => {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => socket.destroy(), milliseconds).unref();
  };
  server.on("connection", (socket: GuardedSocket) => {
    const state: GuardState = { timer: undefined, open: 0 };
    socket[guard] = state;
    arm(socket, state, firstMs);
    socket.once("close", () => clearTimeout(state.timer));
  });
  server.on("request", (request, response) => {
    const socket = request.socket as GuardedSocket;
    const state = socket[guard];
    if (!state) return;
    state.open++;
    clearTimeout(state.timer);
    state.timer = undefined;
    response.once("close", () => {
      state.open--;
      if (state.open === 0 && !socket.destroyed) arm(socket, state, nextMs);
    });
  });
}
